//! The crate's contact with the system, so that the modules that decide
//! (when to wait, how much to move, what a command's end means, what a
//! trace file holds) do not make calls themselves: poll(2) on per-CPU
//! buffers, splice(2) through a pipe, waitpid(2) and kill(2) of a
//! command, uname(2), the reads of /proc and /sys that describe the
//! running kernel, and fork(2) of a command held at a gate.
//!
//! The fork is the only unsafe code of this crate: everything its child
//! needs is prepared by the parent before the fork, so that the child only
//! makes async-signal-safe calls (close, poll, signal, sigprocmask, setns,
//! chdir, execve, write, _exit): the parent may have other threads, whose
//! locks a forked child must never take.

#![allow(unsafe_code)]

use std::ffi::{CString, c_char};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use rustix::pipe::{PipeFlags, SpliceFlags, pipe, pipe_with, splice};
use rustix::process::{Pid, Signal, WaitOptions, WaitStatus, kill_process, waitpid};

/// Waits until one of `fds` is readable or `timeout` passes. A signal
/// that ends the wait early is no error: the caller looks again.
pub(crate) fn wait_readable(fds: &[BorrowedFd<'_>], timeout: Duration) -> io::Result<()> {
    let mut polled: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(fd, PollFlags::IN))
        .collect();
    let timeout = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    match poll(&mut polled, Some(&timeout)) {
        Ok(_) | Err(Errno::INTR) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// A pipe through which splice(2) moves pages from a file to another
/// without their bytes passing through user space.
pub(crate) struct SplicePipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl SplicePipe {
    pub(crate) fn new() -> io::Result<SplicePipe> {
        let (read, write) = pipe()?;
        Ok(SplicePipe { read, write })
    }

    /// Moves up to `max` bytes from `source` into the pipe without
    /// waiting; 0 when `source` has nothing to hand out now (from
    /// `trace_pipe_raw`: no whole sub-buffer yet).
    pub(crate) fn fill(&self, source: BorrowedFd<'_>, max: usize) -> io::Result<usize> {
        let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
        loop {
            match splice(source, None, &self.write, None, max, flags) {
                Ok(n) => return Ok(n),
                Err(Errno::AGAIN) => return Ok(0),
                Err(Errno::INTR) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Moves `len` bytes, put in the pipe by [`SplicePipe::fill`], to
    /// `file` at its offset.
    pub(crate) fn drain_into(&self, file: BorrowedFd<'_>, len: usize) -> io::Result<()> {
        let mut left = len;
        while left > 0 {
            match splice(&self.read, None, file, None, left, SpliceFlags::MOVE) {
                Ok(0) => break,
                Ok(moved) => left -= moved,
                Err(Errno::INTR) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }
}

/// How child `pid` ended, reaping it; None while it runs.
pub(crate) fn try_reap(pid: Pid) -> io::Result<Option<WaitStatus>> {
    Ok(waitpid(Some(pid), WaitOptions::NOHANG)?.map(|(_, status)| status))
}

/// Waits for child `pid` to end and reaps it.
pub(crate) fn reap(pid: Pid) -> io::Result<WaitStatus> {
    loop {
        match waitpid(Some(pid), WaitOptions::empty()) {
            Ok(Some((_, status))) => return Ok(status),
            Ok(None) | Err(Errno::INTR) => {}
            Err(err) => return Err(err.into()),
        }
    }
}

/// Sends `signal` to `pid`.
pub(crate) fn send_signal(pid: Pid, signal: Signal) -> io::Result<()> {
    Ok(kill_process(pid, signal)?)
}

/// The machine as `uname -snrv` prints it: system, node, release and
/// version.
pub(crate) fn uname() -> String {
    let uname = rustix::system::uname();
    format!(
        "{} {} {} {}",
        uname.sysname().to_string_lossy(),
        uname.nodename().to_string_lossy(),
        uname.release().to_string_lossy(),
        uname.version().to_string_lossy()
    )
}

/// /proc/kallsyms (addresses are zeros for a caller without
/// CAP_SYSLOG).
pub(crate) fn kallsyms() -> io::Result<Vec<u8>> {
    std::fs::read("/proc/kallsyms")
}

/// /proc/timer_list, which says `jiffies` now.
pub(crate) fn timer_list() -> io::Result<String> {
    std::fs::read_to_string("/proc/timer_list")
}

/// The running kernel's BTF, /sys/kernel/btf/vmlinux.
pub(crate) fn vmlinux_btf() -> io::Result<Vec<u8>> {
    std::fs::read("/sys/kernel/btf/vmlinux")
}

/// Where a held child failed before its command ran: the first byte of
/// its report on the error pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// setns(2) into the caller's mount namespace.
    Namespace = 1,
    /// chdir(2) back to the working directory, inside that namespace.
    Directory = 2,
    /// execve(2) of the program.
    Exec = 3,
}

impl Stage {
    fn from_byte(byte: u8) -> Option<Stage> {
        match byte {
            1 => Some(Stage::Namespace),
            2 => Some(Stage::Directory),
            3 => Some(Stage::Exec),
            _ => None,
        }
    }
}

/// The length of a failure report: the stage, then errno in native order.
pub(crate) const REPORT_LEN: usize = 5;

/// Reads a failure report the child wrote before `_exit(127)`.
pub(crate) fn parse_report(report: &[u8]) -> Option<(Stage, i32)> {
    let (&stage, errno) = report.split_first()?;
    let errno: [u8; 4] = errno.try_into().ok()?;
    Some((Stage::from_byte(stage)?, i32::from_ne_bytes(errno)))
}

/// The exit status of a child that could not run its command, as a shell's.
const NOT_RUN: libc::c_int = 127;

/// Everything the child needs after the fork, built before it: the
/// program's path, the NULL-terminated argv and envp arrays (pointing into
/// the strings kept here) and the working directory to return to after
/// entering another mount namespace.
pub(crate) struct ExecImage {
    program: CString,
    _strings: Vec<CString>,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
    cwd: Option<CString>,
}

impl ExecImage {
    /// `args` is argv (argv[0] included); `env` is `NAME=value` strings.
    pub(crate) fn new(
        program: CString,
        args: Vec<CString>,
        env: Vec<CString>,
        cwd: Option<CString>,
    ) -> ExecImage {
        let terminated = |strings: &[CString]| {
            strings
                .iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect::<Vec<_>>()
        };
        let argv = terminated(&args);
        let envp = terminated(&env);
        let mut strings = args;
        strings.extend(env);
        ExecImage {
            program,
            _strings: strings,
            argv,
            envp,
            cwd,
        }
    }
}

/// A forked child held at its gate, as the parent sees it.
pub(crate) struct HeldChild {
    pub(crate) pid: Pid,
    /// Writing one byte here lets the child go on; closing it unwritten
    /// makes the child `_exit(127)` without running anything.
    pub(crate) gate: OwnedFd,
    /// Reaches end of file when execve succeeds (close-on-exec), or holds
    /// a failure report first.
    pub(crate) errors: OwnedFd,
}

/// Forks a child that waits at a gate, then (if `mount_ns` is given)
/// enters that mount namespace and returns to the working directory, then
/// execs `image`.
pub(crate) fn fork_held(
    image: &ExecImage,
    mount_ns: Option<BorrowedFd<'_>>,
) -> io::Result<HeldChild> {
    let (gate_read, gate_write) = pipe_with(PipeFlags::CLOEXEC)?;
    let (errors_read, errors_write) = pipe_with(PipeFlags::CLOEXEC)?;
    let child_fds = ChildFds {
        gate_read: gate_read.as_raw_fd(),
        gate_write: gate_write.as_raw_fd(),
        errors_read: errors_read.as_raw_fd(),
        errors_write: errors_write.as_raw_fd(),
        mount_ns: mount_ns.map(|fd| fd.as_raw_fd()),
    };
    // SAFETY: fork has no preconditions. The child runs only `held_child`,
    // which makes async-signal-safe calls on memory prepared before the
    // fork and never returns, so no lock another thread held is touched.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        held_child(image, &child_fds);
    }
    drop(gate_read);
    drop(errors_write);
    Ok(HeldChild {
        pid: Pid::from_raw(pid).ok_or_else(|| io::Error::other("fork returned pid 0"))?,
        gate: gate_write,
        errors: errors_read,
    })
}

/// The raw descriptors the child uses (plain integers: the child must not
/// run the parent's destructors).
struct ChildFds {
    gate_read: RawFd,
    gate_write: RawFd,
    errors_read: RawFd,
    errors_write: RawFd,
    mount_ns: Option<RawFd>,
}

/// The child between fork and exec.
fn held_child(image: &ExecImage, fds: &ChildFds) -> ! {
    // SAFETY: closing the parent's ends of both pipes in this process
    // only; without it, a parent that dies would leave the gate open for
    // writing and the read below would wait forever.
    unsafe {
        libc::close(fds.gate_write);
        libc::close(fds.errors_read);
    }
    // The wait is a poll(2), not a read(2): a probe on read's return
    // (`syscall.read.return`, `kernel.function("vfs_read").return`) with
    // `pid() == target()` must not see a byte of ours. The go byte stays
    // unread; the pipe is close-on-exec.
    loop {
        let mut gate = libc::pollfd {
            fd: fds.gate_read,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: polls one live, initialised pollfd; async-signal-safe.
        let n = unsafe { libc::poll(&raw mut gate, 1, -1) };
        if n == 1 && gate.revents & libc::POLLIN != 0 {
            break;
        }
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        // The gate was closed unopened (the command was dropped, or the
        // parent died): the command must not run.
        // SAFETY: _exit ends this process without running anything of
        // the parent's (no atexit handlers, no destructors).
        unsafe { libc::_exit(NOT_RUN) };
    }
    // What std's Command does too: the Rust runtime ignores SIGPIPE, and
    // an ignored signal stays ignored across exec, so the command would get
    // EPIPE where it expects to die by SIGPIPE (`yes | head`). The mask is
    // emptied for the same reason.
    // SAFETY: sigaction and sigprocmask with a signal number and a live,
    // initialised set; both are async-signal-safe.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
    if let Some(ns) = fds.mount_ns {
        // SAFETY: `ns` is an open namespace fd inherited from the parent;
        // setns only reads it.
        if unsafe { libc::setns(ns, libc::CLONE_NEWNS) } != 0 {
            fail(fds.errors_write, Stage::Namespace);
        }
        // Entering a mount namespace moves to its root directory.
        if let Some(cwd) = &image.cwd {
            // SAFETY: `cwd` is a NUL-terminated string built before fork.
            if unsafe { libc::chdir(cwd.as_ptr()) } != 0 {
                fail(fds.errors_write, Stage::Directory);
            }
        }
    }
    // SAFETY: the program, argv and envp are NUL-terminated strings and
    // NULL-terminated arrays built before fork and alive until exec.
    unsafe {
        libc::execve(
            image.program.as_ptr(),
            image.argv.as_ptr(),
            image.envp.as_ptr(),
        )
    };
    fail(fds.errors_write, Stage::Exec)
}

/// Reports errno and where it happened to the parent, and ends the child.
fn fail(errors: RawFd, stage: Stage) -> ! {
    let errno = errno().to_ne_bytes();
    let report: [u8; REPORT_LEN] = [stage as u8, errno[0], errno[1], errno[2], errno[3]];
    // SAFETY: writes the 5 bytes of a live local array (less than
    // PIPE_BUF, so in one piece); a failed write leaves the parent with
    // end of file and the child's status 127, which it reports too.
    unsafe {
        libc::write(errors, report.as_ptr().cast(), REPORT_LEN);
        libc::_exit(NOT_RUN)
    }
}

fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno, always valid.
    unsafe { *libc::__errno_location() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_report_is_read_back_and_a_bad_one_refused() {
        let errno = libc::ENOENT.to_ne_bytes();
        let report = [Stage::Exec as u8, errno[0], errno[1], errno[2], errno[3]];
        assert_eq!(parse_report(&report), Some((Stage::Exec, libc::ENOENT)));
        assert_eq!(parse_report(&report[..4]), None);
        assert_eq!(parse_report(&[9, 0, 0, 0, 0]), None);
        assert_eq!(parse_report(&[]), None);
    }
}
