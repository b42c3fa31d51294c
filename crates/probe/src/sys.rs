//! What the compiler reads from the running kernel, and the process
//! settings a session needs: tracefs's tracepoints and BTF for pass 2
//! ([`with_kernel`]), the clocks and `task_struct`'s layout for pass 3
//! ([`codegen_options`]), the open-file limit for pass 4, and kscope's own
//! process as host probes' built-ins see it ([`host_process`]). The passes
//! themselves decide over what these return and touch nothing; loading
//! and running are [`crate::runtime`]'s.

use kscope_tracefs::StateGuard;

use crate::catalog::{Catalog, CatalogError};
use crate::codegen::Options;
use crate::pipeline::Needs;
use crate::points::Kernel;

/// Why the kernel's side of pass 2 could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// tracefs could not be found or mounted.
    #[error("cannot reach tracefs, which syscall and tracepoint probes need")]
    Tracefs(#[source] kscope_tracefs::Error),
    /// `available_events` could not be read.
    #[error("cannot list the kernel's tracepoints")]
    Catalog(#[source] CatalogError),
    /// tracefs could not be left as it was.
    #[error("{0}")]
    Restore(#[source] kscope_tracefs::Error),
}

/// Runs `f` (pass 2) on the running kernel as `needs` asks for it: its
/// tracepoints (tracefs is reached, and mounted if it was not, only when
/// needed, and left as it was once `f` returns: perf events need no
/// tracefs once they are open), its BTF for kprobe points, whether it
/// has kprobes, and `hz` (CONFIG_HZ).
pub fn with_kernel<T>(
    needs: Needs,
    hz: u64,
    f: impl FnOnce(&Kernel<'_>) -> T,
) -> Result<T, KernelError> {
    let guard = StateGuard::new();
    let catalog = if needs.tracefs {
        let fs = guard.tracefs().map_err(KernelError::Tracefs)?;
        Catalog::load(&fs).map_err(KernelError::Catalog)?
    } else {
        Catalog::from_formats([]).map_err(KernelError::Catalog)?
    };
    let has_kprobes = kernel_has_kprobes();
    let blob = if needs.kprobe_btf && has_kprobes {
        kscope_ftrace::read_btf()
    } else {
        Vec::new()
    };
    let btf = kscope_btf::Btf::parse(&blob).ok();
    let kernel = Kernel {
        catalog: &catalog,
        hz,
        has_kprobes,
        btf: btf.as_ref(),
    };
    let out = f(&kernel);
    // The catalog reads formats from tracefs while `f` resolves; it is
    // done with it before tracefs is put back.
    drop(catalog);
    guard.restore().map_err(KernelError::Restore)?;
    Ok(out)
}

/// Whether perf's kprobe PMU exists.
fn kernel_has_kprobes() -> bool {
    std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists()
}

/// The CPU ids statistics are merged over when the possible CPUs cannot
/// be read: x86-64's largest NR_CPUS, so that none is left out (an id the
/// kernel does not have is skipped at run time).
const MAX_CPU_IDS: u32 = 8192;

/// What pass 3 needs from the running session: `target()` (the `-x` pid
/// or the `-c` command's), the clock offset for `gettimeofday_*()`, the
/// number of possible CPUs for reads of statistics, and from
/// `task_struct`'s layout what `needs` asks for (the kernel's BTF is read
/// once, only then).
pub fn codegen_options(target: i64, needs: Needs) -> Options {
    let blob = if needs.task_layout || needs.compat_status {
        kscope_ftrace::read_btf()
    } else {
        Vec::new()
    };
    let btf = kscope_btf::Btf::parse_lean(&blob).ok();
    let btf = btf.as_ref();
    Options {
        cpus: kscope_bpf::possible_cpu_ids_end().unwrap_or(MAX_CPU_IDS),
        own_pid: kernel_tgid().unwrap_or(0),
        target,
        realtime_offset_ns: realtime_offset_ns(),
        task_offsets: btf.filter(|_| needs.task_layout).and_then(task_offsets),
        compat_status: btf
            .filter(|_| needs.compat_status)
            .and_then(|btf| task_member(btf, "thread_info.status")),
    }
}

/// The offsets of `task_struct.real_parent` and `task_struct.tgid` in
/// the kernel's BTF, for `ppid()`.
fn task_offsets(btf: &kscope_btf::Btf<'_>) -> Option<(u32, u32)> {
    Some((task_member(btf, "real_parent")?, task_member(btf, "tgid")?))
}

/// The offset of a member (a dotted path) of `task_struct`.
fn task_member(btf: &kscope_btf::Btf<'_>, path: &str) -> Option<u32> {
    u32::try_from(btf.member_offset("struct task_struct", path)?).ok()
}

/// kscope's process id as BPF programs see it (bpf_get_current_pid_tgid:
/// the initial pid namespace's), which differs from getpid() in a
/// container: a one-instruction program run in this process says it.
fn kernel_tgid() -> Option<i64> {
    use kscope_bpf::{Alu, Insn, Program, ProgramType};
    let insns = [
        Insn::call(14), // bpf_get_current_pid_tgid
        Insn::alu64_imm(Alu::Rsh, 0, 32),
        Insn::exit(),
    ];
    let program = Program::load(ProgramType::RawTracepoint, "ks_tgid", &insns).ok()?;
    program.test_run(&[]).ok().map(i64::from)
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC (the clock of
/// bpf_ktime_get_ns), for `gettimeofday_*()`.
pub fn realtime_offset_ns() -> i64 {
    use rustix::time::{ClockId, clock_gettime};
    let ns = |t: rustix::time::Timespec| {
        t.tv_sec
            .saturating_mul(1_000_000_000)
            .saturating_add(t.tv_nsec)
    };
    ns(clock_gettime(ClockId::Realtime)) - ns(clock_gettime(ClockId::Monotonic))
}

/// Each probe point holds a program fd and a perf event fd (one per CPU
/// for timer.profile): `syscall.*` needs over 700. The soft limit on open
/// files is raised to the hard one, as bpftrace does.
pub fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        // A failure leaves the limit as it was; loading then says EMFILE.
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// kscope's own process as a host probe's built-ins see it: its ids, its
/// name (comm) and the CPU it runs on now.
pub fn host_process() -> crate::host::Process {
    use rustix::process;
    let raw = |pid: Option<process::Pid>| pid.map_or(0, |p| i64::from(p.as_raw_nonzero().get()));
    crate::host::Process {
        pid: raw(Some(process::getpid())),
        tid: raw(Some(rustix::thread::gettid())),
        ppid: raw(process::getppid()),
        uid: i64::from(process::getuid().as_raw()),
        gid: i64::from(process::getgid().as_raw()),
        cpu: rustix::thread::sched_getcpu() as i64,
        comm: rustix::thread::name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}
