//! perf events: counters and samplers the kernel keeps for us, held as
//! fds. Closing the fd removes the event.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::error::{Error, Result};
use crate::sys::{self, PerfEventAttr};

/// Software events (`enum perf_sw_ids`), which every kernel with perf has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoftwareEvent {
    /// PERF_COUNT_SW_CPU_CLOCK: drives sampling on each CPU.
    CpuClock,
    /// PERF_COUNT_SW_TASK_CLOCK: time this task ran.
    TaskClock,
}

const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_TYPE_TRACEPOINT: u32 = 2;

/// An open perf event.
#[derive(Debug)]
pub struct PerfEvent {
    fd: OwnedFd,
}

impl PerfEvent {
    /// Opens a disabled software counter on this process, counting user
    /// space only, which even `perf_event_paranoid` 2 allows.
    pub fn software_counter(event: SoftwareEvent) -> Result<PerfEvent> {
        let config = match event {
            SoftwareEvent::CpuClock => 0,
            SoftwareEvent::TaskClock => 1,
        };
        let mut attr = PerfEventAttr {
            type_: PERF_TYPE_SOFTWARE,
            config,
            flags: sys::PERF_FLAG_DISABLED
                | sys::PERF_FLAG_EXCLUDE_KERNEL
                | sys::PERF_FLAG_EXCLUDE_HV,
            ..PerfEventAttr::default()
        };
        sys::perf_event_open(&mut attr, 0, -1)
            .map(|fd| PerfEvent { fd })
            .map_err(|source| Error::PerfOpen {
                what: format!("software event {event:?}"),
                source,
            })
    }
}

impl PerfEvent {
    /// Opens tracepoint `id` (its `events/SYSTEM/EVENT/id` in tracefs)
    /// for this process only, disabled, sampling every hit: a BPF program
    /// set on it runs on each.
    pub fn tracepoint_of_this_process(id: u64) -> Result<PerfEvent> {
        let mut attr = PerfEventAttr {
            type_: PERF_TYPE_TRACEPOINT,
            config: id,
            sample_period: 1,
            wakeup_events: 1,
            flags: sys::PERF_FLAG_DISABLED,
            ..PerfEventAttr::default()
        };
        sys::perf_event_open(&mut attr, 0, -1)
            .map(|fd| PerfEvent { fd })
            .map_err(|source| Error::PerfOpen {
                what: format!("tracepoint {id}"),
                source,
            })
    }

    /// Runs `program` on every hit of this event.
    pub fn attach(&self, program: &crate::Program) -> Result<()> {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&program.as_fd());
        sys::perf_ioctl(self.fd.as_fd(), sys::PERF_IOC_SET_BPF, fd).map_err(|source| {
            Error::PerfOpen {
                what: format!("attaching BPF program {}", program.name()),
                source,
            }
        })
    }

    /// Starts or stops counting (and running an attached program).
    pub fn enable(&self, on: bool) -> Result<()> {
        let request = if on {
            sys::PERF_IOC_ENABLE
        } else {
            sys::PERF_IOC_DISABLE
        };
        sys::perf_ioctl(self.fd.as_fd(), request, 0).map_err(|source| Error::PerfOpen {
            what: "enabling a perf event".into(),
            source,
        })
    }
}

impl AsFd for PerfEvent {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
