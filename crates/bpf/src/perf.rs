//! perf events: counters and samplers the kernel keeps for us, held as
//! fds. Closing the fd removes the event. Also the CPU lists of sysfs
//! that say which CPUs to open per-CPU events on and how many slots a
//! per-CPU map value has.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

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
const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;

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
            SoftwareEvent::CpuClock => PERF_COUNT_SW_CPU_CLOCK,
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

    /// Opens tracepoint `id` (its `events/SYSTEM/EVENT/id` in tracefs) on
    /// one CPU for every process (pid -1), disabled, with sample_period 1,
    /// so that an attached program runs on every hit.
    ///
    /// The kernel keeps the BPF programs of a tracepoint per tracepoint,
    /// not per event: a program attached to this event runs on every hit
    /// on every CPU, so a probe opens one event per tracepoint, on any
    /// CPU (libbpf uses CPU 0). Attaching the same program to a second
    /// event of the same tracepoint fails with EEXIST. The program runs
    /// from [`attach`](PerfEvent::attach) on, whether the event is enabled
    /// or not (seen on 6.18): closing the event is what stops it.
    pub fn tracepoint_on_cpu(id: u64, cpu: u32) -> Result<PerfEvent> {
        let mut attr = PerfEventAttr {
            type_: PERF_TYPE_TRACEPOINT,
            config: id,
            sample_period: 1,
            wakeup_events: 1,
            flags: sys::PERF_FLAG_DISABLED,
            ..PerfEventAttr::default()
        };
        open_on_cpu(&mut attr, cpu, || format!("tracepoint {id} on CPU {cpu}"))
    }

    /// Opens a kprobe (or, with `retprobe`, a kretprobe) on the kernel
    /// function `function` through perf's kprobe PMU, for every process,
    /// on `cpu`; like a tracepoint's, a program attached to it runs on
    /// every CPU. Nothing is written to tracefs, and closing the event
    /// removes the probe. Fails with ENOENT-like errors when the kernel
    /// has no kprobe PMU (no CONFIG_KPROBES) or cannot probe the function.
    pub fn kprobe(function: &str, retprobe: bool, cpu: u32) -> Result<PerfEvent> {
        let what = || {
            let kind = if retprobe { "kretprobe" } else { "kprobe" };
            format!("a {kind} on {function}")
        };
        let error = |source| Error::PerfOpen {
            what: what(),
            source,
        };
        let pmu = Path::new("/sys/bus/event_source/devices/kprobe");
        let type_ = std::fs::read_to_string(pmu.join("type"))
            .map_err(error)?
            .trim()
            .parse::<u32>()
            .map_err(|_| {
                error(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the kprobe PMU's type is not a number",
                ))
            })?;
        let mut config = 0;
        if retprobe {
            // "config:N": the bit that asks for a return probe.
            let format = std::fs::read_to_string(pmu.join("format/retprobe")).map_err(error)?;
            let bit = format
                .trim()
                .strip_prefix("config:")
                .and_then(|b| b.parse::<u32>().ok())
                .filter(|&b| b < 64)
                .ok_or_else(|| {
                    error(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the kprobe PMU's retprobe format is {format:?}"),
                    ))
                })?;
            config = 1u64 << bit;
        }
        let name = std::ffi::CString::new(function)
            .map_err(|_| error(io::Error::from_raw_os_error(libc::EINVAL)))?;
        let mut attr = PerfEventAttr {
            type_,
            config,
            sample_period: 1,
            wakeup_events: 1,
            flags: sys::PERF_FLAG_DISABLED,
            config1: name.as_ptr() as u64,
            config2: 0,
            ..PerfEventAttr::default()
        };
        // The kernel copies the name during the call; `name` outlives it.
        open_on_cpu(&mut attr, cpu, what)
    }

    /// Opens a software cpu-clock sampler on one CPU for every process
    /// (pid -1), firing every `period_ns` nanoseconds of that CPU's clock
    /// (idle time included), disabled; an attached
    /// [`ProgramType::PerfEvent`](crate::ProgramType::PerfEvent) program
    /// runs at each sample. `timer.ms(N)` opens one on one CPU,
    /// `timer.profile` one on every CPU.
    pub fn cpu_clock_on_cpu(cpu: u32, period_ns: u64) -> Result<PerfEvent> {
        let what = || format!("a cpu-clock sampler every {period_ns} ns on CPU {cpu}");
        if period_ns == 0 {
            return Err(Error::PerfOpen {
                what: what(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the period must be at least 1 ns (0 would never sample)",
                ),
            });
        }
        let mut attr = PerfEventAttr {
            type_: PERF_TYPE_SOFTWARE,
            config: PERF_COUNT_SW_CPU_CLOCK,
            sample_period: period_ns,
            flags: sys::PERF_FLAG_DISABLED,
            ..PerfEventAttr::default()
        };
        open_on_cpu(&mut attr, cpu, what)
    }

    /// Runs `program` on every hit of this event (for a tracepoint, of
    /// the tracepoint on any CPU: see
    /// [`tracepoint_on_cpu`](PerfEvent::tracepoint_on_cpu)).
    pub fn attach(&self, program: &crate::Program) -> Result<()> {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&program.as_fd());
        sys::perf_ioctl(self.fd.as_fd(), sys::PERF_IOC_SET_BPF, fd).map_err(|source| {
            let hint = if source.raw_os_error() == Some(libc::EEXIST) {
                " (it already runs on this tracepoint through another perf event, \
                 on every CPU: one event per tracepoint is enough)"
            } else {
                ""
            };
            Error::PerfOpen {
                what: format!("attaching BPF program {}{hint}", program.name()),
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

/// Opens `attr` for every process on `cpu`.
fn open_on_cpu(attr: &mut PerfEventAttr, cpu: u32, what: impl Fn() -> String) -> Result<PerfEvent> {
    let error = |source| Error::PerfOpen {
        what: what(),
        source,
    };
    let cpu = i32::try_from(cpu).map_err(|_| error(io::Error::from_raw_os_error(libc::EINVAL)))?;
    sys::perf_event_open(attr, -1, cpu)
        .map(|fd| PerfEvent { fd })
        .map_err(error)
}

const ONLINE_CPUS: &str = "/sys/devices/system/cpu/online";
const POSSIBLE_CPUS: &str = "/sys/devices/system/cpu/possible";

/// The online CPUs, from /sys/devices/system/cpu/online (a list like
/// "0-1,4"): the CPUs to open per-CPU perf events on.
pub fn online_cpus() -> Result<Vec<u32>> {
    read_cpu_list(Path::new(ONLINE_CPUS))
}

/// The number of possible CPUs, from /sys/devices/system/cpu/possible:
/// what per-CPU map values are sized by (one slot each).
pub fn possible_cpus() -> Result<u32> {
    // At most MAX_CPUS entries, so the count fits.
    read_cpu_list(Path::new(POSSIBLE_CPUS)).map(|cpus| cpus.len() as u32)
}

/// One past the highest possible CPU id (the kernel's nr_cpu_ids): the
/// bound of a walk over CPU ids, such as bpf_map_lookup_percpu_elem's,
/// which a sparse possible mask ("0-3,8-11") makes larger than the count.
pub fn possible_cpu_ids_end() -> Result<u32> {
    read_cpu_list(Path::new(POSSIBLE_CPUS)).map(|cpus| cpus.iter().max().map_or(0, |&c| c + 1))
}

fn read_cpu_list(path: &Path) -> Result<Vec<u32>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::CpuListRead {
        path: path.to_path_buf(),
        source,
    })?;
    let text = text.trim();
    parse_cpu_list(text).map_err(|(offset, expected)| Error::CpuList {
        path: path.to_path_buf(),
        text: text.to_string(),
        offset,
        expected,
    })
}

/// CPU numbers at or above this are refused: no kernel has that many
/// (x86-64's NR_CPUS tops out at 8192), and a bad "0-4000000000" must not
/// allocate gigabytes.
const MAX_CPUS: u32 = 1 << 20;

/// Parses the kernel's CPU list notation ("0", "0-1", "0-3,8-9"): the
/// CPUs in the order listed; on error, the byte offset and what was
/// expected there.
fn parse_cpu_list(text: &str) -> std::result::Result<Vec<u32>, (usize, &'static str)> {
    let mut cpus = Vec::new();
    let mut offset = 0;
    for item in text.split(',') {
        let (first, last) = match item.split_once('-') {
            Some((a, b)) => (cpu_number(a, offset)?, cpu_number(b, offset + a.len() + 1)?),
            None => {
                let n = cpu_number(item, offset)?;
                (n, n)
            }
        };
        if last < first {
            return Err((offset, "a range whose end is not below its start"));
        }
        cpus.extend(first..=last);
        offset += item.len() + 1;
    }
    Ok(cpus)
}

fn cpu_number(text: &str, offset: usize) -> std::result::Result<u32, (usize, &'static str)> {
    const EXPECTED: &str = "a CPU number (decimal digits, below 1048576)";
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err((offset, EXPECTED));
    }
    text.parse::<u32>()
        .ok()
        .filter(|&n| n < MAX_CPUS)
        .ok_or((offset, EXPECTED))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{HELPER_RINGBUF_OUTPUT, bpf_works};
    use crate::{Insn, Jmp, Map, MapType, Program, ProgramType, RingBuf, Size};
    use std::time::{Duration, Instant};

    use crate::sys::fake::{self, Call};

    #[test]
    fn a_second_attach_to_a_tracepoint_says_one_event_is_enough() {
        let err = fake::with_kernel(
            |call| match call {
                Call::PerfEventOpen | Call::Bpf(_) => Ok(fake::new_fd()),
                Call::PerfIoctl(sys::PERF_IOC_SET_BPF) => Err(libc::EEXIST),
                Call::PerfIoctl(other) => panic!("unexpected ioctl {other:#x}"),
            },
            || {
                let event = PerfEvent::tracepoint_on_cpu(1, 0).expect("open");
                let program = Program::load(
                    ProgramType::Tracepoint,
                    "kscope_t_twice",
                    &[Insn::mov64_imm(0, 0), Insn::exit()],
                )
                .expect("load");
                event.attach(&program)
            },
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("attaching BPF program kscope_t_twice")
                && text.contains("one event per tracepoint is enough"),
            "{text}"
        );
    }

    #[test]
    fn a_refused_counter_keeps_the_kernels_errno() {
        let err = fake::with_kernel(
            |_| Err(libc::EACCES),
            || PerfEvent::software_counter(SoftwareEvent::TaskClock),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::PerfOpen { source, .. } if source.raw_os_error() == Some(libc::EACCES)),
            "{err}"
        );
        assert!(
            err.to_string().contains("software event TaskClock"),
            "{err}"
        );
    }

    #[test]
    fn cpu_lists_parse_as_the_kernel_prints_them() {
        assert_eq!(parse_cpu_list("0"), Ok(vec![0]));
        assert_eq!(parse_cpu_list("0-1"), Ok(vec![0, 1]));
        assert_eq!(parse_cpu_list("0-3,8-9"), Ok(vec![0, 1, 2, 3, 8, 9]));
        assert_eq!(parse_cpu_list("2,4-5,7"), Ok(vec![2, 4, 5, 7]));
    }

    #[test]
    fn bad_cpu_lists_say_where_and_what_was_expected() {
        for (text, offset) in [
            ("", 0),
            ("0-", 2),
            ("0-3,", 4),
            ("0-3,x", 4),
            ("1,-2", 2),
            ("0-3,8-9a", 6),
            ("99999999999", 0),
            ("0-1048576", 2),
        ] {
            let (at, expected) = parse_cpu_list(text).unwrap_err();
            assert_eq!(at, offset, "{text:?}");
            assert!(expected.starts_with("a CPU number"), "{text:?}");
        }
        assert_eq!(
            parse_cpu_list("0,3-1"),
            Err((2, "a range whose end is not below its start"))
        );
    }

    #[test]
    fn a_missing_or_bad_cpu_list_file_is_a_clear_error() {
        let err = read_cpu_list(Path::new("/nonexistent/cpu/online")).unwrap_err();
        assert!(matches!(err, Error::CpuListRead { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/cpu/online"), "{err}");
        let holder = tempfile::tempdir().expect("a temp dir");
        let dir = holder.path().join("online");
        std::fs::write(&dir, "0-x\n").expect("write");
        let err = read_cpu_list(&dir).unwrap_err();
        assert!(
            matches!(&err, Error::CpuList { offset: 2, text, .. } if text == "0-x"),
            "{err}"
        );
    }

    #[test]
    fn this_machine_has_cpus() {
        let online = online_cpus().expect("online CPUs");
        assert!(!online.is_empty());
        let possible = possible_cpus().expect("possible CPUs");
        assert!(possible as usize >= online.len(), "{possible} < {online:?}");
    }

    #[test]
    fn a_kprobe_without_the_kprobe_pmu_is_a_clear_error() {
        if Path::new("/sys/bus/event_source/devices/kprobe").exists() {
            // Covered live by the guest lab's probe tests.
            return;
        }
        let err = PerfEvent::kprobe("vfs_read", true, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("a kretprobe on vfs_read"), "{err}");
    }

    #[test]
    fn a_zero_sampling_period_is_refused() {
        let err = PerfEvent::cpu_clock_on_cpu(0, 0).unwrap_err();
        assert!(err.to_string().contains("at least 1 ns"), "{err}");
    }

    /// The id of syscalls/sys_enter_getpid, read from tracefs (mounted for
    /// the read when it is not, and unmounted again), or None to skip.
    fn getpid_tracepoint_id() -> Option<u64> {
        let _lock = kscope_testkit::TracefsLock::acquire();
        let guard = kscope_tracefs::StateGuard::new();
        let fs = match guard.tracefs() {
            Ok(fs) => fs,
            Err(err) => {
                kscope_testkit::live("a tracepoint perf event", Some(err.to_string()));
                return None;
            }
        };
        let path = fs.root().join("events/syscalls/sys_enter_getpid/id");
        let id = kscope_tracefs::control::read(&path)
            .map(|text| text.trim().parse().expect("a tracepoint id is a number"));
        guard.restore().expect("restore tracefs");
        match id {
            Ok(id) => Some(id),
            Err(err) => {
                kscope_testkit::live("a tracepoint perf event", Some(err.to_string()));
                None
            }
        }
    }

    /// The variable that turns this test binary into a child of
    /// `one_tracepoint_event_runs_its_program_on_every_cpu`, which calls
    /// getpid five times.
    const GETPID_CHILD: &str = "KSCOPE_BPF_TEST_GETPID_CHILD";

    #[test]
    fn one_tracepoint_event_runs_its_program_on_every_cpu() {
        if std::env::var_os(GETPID_CHILD).is_some() {
            for _ in 0..5 {
                // std::process::id() is getpid(2); glibc does not cache it.
                let _ = std::process::id();
            }
            return;
        }
        if !bpf_works("BPF on a tracepoint perf event") {
            return;
        }
        let Some(id) = getpid_tracepoint_id() else {
            return;
        };
        let mut ring = RingBuf::create("kscope_t_getpid", 1 << 16).expect("ring");
        // *(u64 *)(r10 - 8) = bpf_get_current_pid_tgid(); output it.
        let mut insns = vec![Insn::call(14), Insn::stx(Size::DW, 10, -8, 0)];
        insns.extend(Insn::ld_map_fd(1, ring.map().raw_fd()));
        insns.extend([
            Insn::mov64_reg(2, 10),
            Insn::add64_imm(2, -8),
            Insn::mov64_imm(3, 8),
            Insn::mov64_imm(4, 0),
            Insn::call(HELPER_RINGBUF_OUTPUT),
            Insn::mov64_imm(0, 0),
            Insn::exit(),
        ]);
        let program =
            Program::load(ProgramType::Tracepoint, "kscope_t_getpid", &insns).expect("load");
        let cpus = online_cpus().expect("online CPUs");
        let event = PerfEvent::tracepoint_on_cpu(id, cpus[0]).expect("perf_event_open");
        event.attach(&program).expect("attach");
        event.enable(true).expect("enable");
        // The program is the tracepoint's now: a second event refuses it.
        let second = PerfEvent::tracepoint_on_cpu(id, cpus[cpus.len() - 1]).expect("open");
        let err = second.attach(&program).unwrap_err();
        assert!(
            matches!(&err, Error::PerfOpen { source, .. } if source.raw_os_error() == Some(libc::EEXIST)),
            "{err}"
        );
        assert!(
            err.to_string().contains("one event per tracepoint"),
            "{err}"
        );
        // A child pinned to each CPU in turn calls getpid.
        let exe = std::env::current_exe().expect("test binary");
        let mut children = Vec::new();
        for cpu in &cpus {
            let status = std::process::Command::new("taskset")
                .args(["-c", &cpu.to_string()])
                .arg(&exe)
                .args([
                    "--exact",
                    "perf::tests::one_tracepoint_event_runs_its_program_on_every_cpu",
                    "--test-threads=1",
                ])
                .env(GETPID_CHILD, "1")
                .stdout(std::process::Stdio::null())
                .spawn()
                .and_then(|mut child| Ok((child.id(), child.wait()?)));
            match status {
                Ok((pid, status)) => {
                    assert!(status.success(), "child on CPU {cpu}: {status}");
                    children.push((*cpu, u64::from(pid)));
                }
                Err(err) => {
                    kscope_testkit::live(
                        "pinning a process to a CPU",
                        Some(format!("taskset: {err}")),
                    );
                    return;
                }
            }
        }
        event.enable(false).expect("disable");
        let mut seen = vec![0; children.len()];
        let deadline = Instant::now() + Duration::from_secs(5);
        while seen.iter().any(|&n| n < 5) && Instant::now() < deadline {
            ring.poll(Duration::from_millis(100), |record| {
                let pid_tgid = u64::from_ne_bytes(record.try_into().expect("8 bytes"));
                if let Some(i) = children.iter().position(|&(_, pid)| pid == pid_tgid >> 32) {
                    seen[i] += 1;
                }
            })
            .expect("poll");
        }
        for ((cpu, pid), n) in children.iter().zip(&seen) {
            assert!(*n >= 5, "{n} getpid records from child {pid} on CPU {cpu}");
        }
    }

    #[test]
    fn a_cpu_clock_sampler_runs_its_program_every_period() {
        if !bpf_works("BPF on a cpu-clock perf event") {
            return;
        }
        let map = Map::create(MapType::Array, "kscope_t_ticks", 4, 8, 1).expect("map");
        // map[0] += 1, atomically.
        let mut insns = vec![Insn::st(Size::W, 10, -4, 0)];
        insns.extend(Insn::ld_map_fd(1, map.raw_fd()));
        insns.extend([
            Insn::mov64_reg(2, 10),
            Insn::add64_imm(2, -4),
            Insn::call(1),
            Insn::jmp_imm(Jmp::Eq, 0, 0, 2),
            Insn::mov64_imm(1, 1),
            Insn::atomic_add64(0, 0, 1),
            Insn::mov64_imm(0, 0),
            Insn::exit(),
        ]);
        let program =
            Program::load(ProgramType::PerfEvent, "kscope_t_ticks", &insns).expect("load");
        let cpu = online_cpus().expect("online CPUs")[0];
        let event = PerfEvent::cpu_clock_on_cpu(cpu, 10_000_000).expect("perf_event_open");
        event.attach(&program).expect("attach");
        event.enable(true).expect("enable");
        std::thread::sleep(Duration::from_millis(100));
        event.enable(false).expect("disable");
        let mut value = [0u8; 8];
        map.lookup(&0u32.to_ne_bytes(), &mut value).expect("lookup");
        let ticks = u64::from_ne_bytes(value);
        // About 10; only a loose lower bound, as timing on a shared
        // machine is not exact.
        assert!(ticks > 3, "{ticks} samples in 100 ms at 10 ms");
    }
}
