//! Setting up a private instance and reading its per-CPU raw buffers.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use kscope_traceevent::PageLayout;
use kscope_tracefs::{Instance, StateGuard, Tracefs};

/// An event to enable, with its optional kernel filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSelection {
    /// The event's system (`sched`).
    pub system: String,
    /// The event (`sched_switch`).
    pub event: String,
    /// A filter in the kernel's syntax (`prev_pid != 0`).
    pub filter: Option<String>,
}

impl EventSelection {
    /// SYSTEM:EVENT with no filter.
    pub fn new(system: &str, event: &str) -> EventSelection {
        EventSelection {
            system: system.to_string(),
            event: event.to_string(),
            filter: None,
        }
    }
}

/// What a session traces.
#[derive(Debug, Clone, Default)]
pub struct SessionConfig {
    /// Events to enable.
    pub events: Vec<EventSelection>,
    /// Only these pids' events (`set_event_pid`).
    pub pids: Vec<u32>,
    /// Also the children those pids fork (the `event-fork` option).
    pub follow_forks: bool,
    /// The trace clock (`local`, `global`, `mono`, ...).
    pub clock: Option<String>,
    /// Per-CPU buffer size.
    pub buffer_kb: Option<u64>,
    /// How full (percent) a CPU's buffer is before its readers wake:
    /// 0 (the default) wakes them for every event, which a stream wants;
    /// a recording that moves whole sub-buffers wants more.
    pub wake_percent: u32,
}

/// What went wrong in a session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// tracefs refused a change (the message names the file and the
    /// kernel's error_log line).
    #[error(transparent)]
    Tracefs(#[from] kscope_tracefs::Error),
    /// Reading or polling a per-CPU buffer failed.
    #[error("{path}: {source}")]
    Read {
        /// The trace_pipe_raw file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Nothing to trace.
    #[error("no event selected")]
    NoEvents,
}

/// One sub-buffer as read from a CPU's trace_pipe_raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPage {
    /// The CPU whose buffer it is.
    pub cpu: u32,
    /// The sub-buffer's bytes.
    pub bytes: Vec<u8>,
}

/// The size of one sub-buffer of `instance`'s ring buffer: its
/// `buffer_subbuf_size_kb`, or 4096 bytes on kernels without that file
/// (before 6.8, a sub-buffer is a page).
pub(crate) fn subbuf_size(instance: &Instance) -> usize {
    instance
        .read("buffer_subbuf_size_kb")
        .ok()
        .and_then(|t| t.trim().parse::<usize>().ok())
        .map_or(4096, |kb| kb * 1024)
}

/// Sub-buffers read from one CPU per [`Session::drain`].
pub const PAGES_PER_CPU: usize = 256;

pub(crate) struct CpuBuffer {
    cpu: u32,
    path: PathBuf,
    file: File,
}

/// Opens every CPU's `trace_pipe_raw` of `instance`, non-blocking, in CPU
/// order.
pub(crate) fn open_cpu_buffers(instance: &Instance) -> Result<Vec<CpuBuffer>, SessionError> {
    let per_cpu = instance.file("per_cpu");
    let entries = std::fs::read_dir(&per_cpu).map_err(|source| SessionError::Read {
        path: per_cpu.clone(),
        source,
    })?;
    let mut cpus = Vec::new();
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(cpu) = name.strip_prefix("cpu").and_then(|n| n.parse().ok()) else {
            continue;
        };
        let path = entry.path().join("trace_pipe_raw");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .map_err(|source| SessionError::Read {
                path: path.clone(),
                source,
            })?;
        cpus.push(CpuBuffer { cpu, path, file });
    }
    cpus.sort_by_key(|c| c.cpu);
    Ok(cpus)
}

impl CpuBuffer {
    /// Reads up to `max` sub-buffers that are ready into `pages`, without
    /// waiting.
    pub(crate) fn read_pages(
        &mut self,
        subbuf_size: usize,
        max: usize,
        pages: &mut Vec<RawPage>,
    ) -> Result<(), SessionError> {
        for _ in 0..max {
            let mut bytes = vec![0u8; subbuf_size];
            match self.file.read(&mut bytes) {
                Ok(0) => break,
                Ok(n) => {
                    bytes.truncate(n);
                    pages.push(RawPage {
                        cpu: self.cpu,
                        bytes,
                    });
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(SessionError::Read {
                        path: self.path.clone(),
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

/// A tracing session in a private instance. It holds the per-CPU
/// `trace_pipe_raw` files open: drop it before the guard restores, or the
/// kernel refuses to remove the instance (EBUSY).
pub struct Session {
    instance: Instance,
    cpus: Vec<CpuBuffer>,
    layout: PageLayout,
    subbuf_size: usize,
}

impl Session {
    /// Creates the private instance, applies `config` through `guard`
    /// (everything is undone when the guard restores), and starts
    /// recording.
    pub fn start(
        guard: &StateGuard,
        fs: &Tracefs,
        config: &SessionConfig,
    ) -> Result<Session, SessionError> {
        if config.events.is_empty() {
            return Err(SessionError::NoEvents);
        }
        let instance = guard.private_instance(fs)?;
        guard.set_tracing_on(&instance, false)?;
        if let Some(kb) = config.buffer_kb {
            guard.set_buffer_size_kb(&instance, kb)?;
        }
        if let Some(clock) = &config.clock {
            guard.set(&instance, "trace_clock", clock)?;
        }
        if instance.file("buffer_percent").exists() {
            guard.set(
                &instance,
                "buffer_percent",
                &config.wake_percent.to_string(),
            )?;
        }
        // kscope's own syscalls and switches (writing what it traced) would
        // feed back into the trace.
        if instance.file("set_event_notrace_pid").exists() {
            guard.set(
                &instance,
                "set_event_notrace_pid",
                &std::process::id().to_string(),
            )?;
        }
        if !config.pids.is_empty() {
            let pids: Vec<String> = config.pids.iter().map(u32::to_string).collect();
            guard.set(&instance, "set_event_pid", &pids.join(" "))?;
            if config.follow_forks {
                guard.set(&instance, "options/event-fork", "1")?;
            }
        }
        for selection in &config.events {
            if let Some(filter) = &selection.filter {
                guard.set_filter(&instance, &selection.system, &selection.event, filter)?;
            }
            guard.enable_event(&instance, &selection.system, &selection.event)?;
        }
        let layout = kscope_tracefs::control::read(&fs.root().join("events/header_page"))
            .ok()
            .and_then(|text| {
                kscope_traceevent::HeaderPage::parse(&text)
                    .ok()
                    .map(|p| PageLayout::from_header(&p))
            })
            .unwrap_or(PageLayout::X86_64);
        let subbuf_size = subbuf_size(&instance);
        let cpus = open_cpu_buffers(&instance)?;
        guard.set_tracing_on(&instance, true)?;
        Ok(Session {
            instance,
            cpus,
            layout,
            subbuf_size,
        })
    }

    /// The private instance.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// How to read this kernel's sub-buffers.
    pub fn layout(&self) -> &PageLayout {
        &self.layout
    }

    /// Waits until some CPU has data, or `timeout` passes, or a signal
    /// interrupts the wait.
    pub fn wait(&self, timeout: Duration) -> Result<(), SessionError> {
        let fds: Vec<BorrowedFd<'_>> = self.fds().collect();
        crate::sys::wait_readable(&fds, timeout).map_err(|source| SessionError::Read {
            path: self.instance.file("per_cpu"),
            source,
        })
    }

    /// Reads the sub-buffers that are ready, up to [`PAGES_PER_CPU`] per
    /// CPU per call, in CPU order; call again (after `wait`) for more. The
    /// cap keeps one busy CPU from starving the others' buffers.
    pub fn drain(&mut self) -> Result<Vec<RawPage>, SessionError> {
        let mut pages = Vec::new();
        for cpu in &mut self.cpus {
            cpu.read_pages(self.subbuf_size, PAGES_PER_CPU, &mut pages)?;
        }
        Ok(pages)
    }

    /// Reads everything left, whatever its size: for after [`Session::stop`].
    pub fn drain_all(&mut self) -> Result<Vec<RawPage>, SessionError> {
        let mut pages = Vec::new();
        loop {
            let more = self.drain()?;
            if more.is_empty() {
                return Ok(pages);
            }
            pages.extend(more);
        }
    }

    /// Stops recording (what is in the buffers can still be drained).
    pub fn stop(&self, guard: &StateGuard) -> Result<(), SessionError> {
        guard.set_tracing_on(&self.instance, false)?;
        Ok(())
    }

    /// The per-CPU fds, for a caller that polls them with other fds.
    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.cpus.iter().map(|c| c.file.as_fd())
    }

    /// Each CPU with its `trace_pipe_raw` fd (non-blocking).
    pub fn cpu_fds(&self) -> impl Iterator<Item = (u32, BorrowedFd<'_>)> {
        self.cpus.iter().map(|c| (c.cpu, c.file.as_fd()))
    }

    /// The size of one sub-buffer.
    pub fn subbuf_size(&self) -> usize {
        self.subbuf_size
    }
}
