//! A command started held at a gate, so that tracing can be set up for its
//! pid (and its children) before it runs: `trace stream -- CMD`,
//! `trace record -- CMD` and `probe -c CMD`. The child is forked by this
//! crate's `sys` module and waits in poll(2) on a pipe until the gate
//! opens, then execs the program itself: the pid the caller traces is the
//! command's from its first instruction, with nothing of ours (no shell,
//! no FIFO) in between.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::sys::{self, ExecImage, Stage};

/// $PATH when the environment has none (glibc's execvp uses the same).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// How long [`GatedCommand::finish`] lets a command end before SIGKILL.
const FINISH_GRACE: Duration = Duration::from_secs(2);

/// Why a command could not be started or run.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// No command was given.
    #[error("no command to run")]
    Empty,
    /// An argument or the environment holds a NUL byte.
    #[error("cannot run {program}: an argument or environment variable holds a NUL byte")]
    Nul {
        /// The program as given.
        program: String,
    },
    /// The program was not found, or the kernel refused to exec it.
    #[error("cannot run {program}: {}", describe(*.errno))]
    Run {
        /// The program as given.
        program: String,
        /// errno of the lookup or of execve(2).
        errno: i32,
    },
    /// The child could not enter the caller's mount namespace or return
    /// to the working directory there.
    #[error("cannot run {program}: {action}: {}", describe(*.errno))]
    Setup {
        /// The program as given.
        program: String,
        /// What failed.
        action: &'static str,
        /// errno of that call.
        errno: i32,
    },
    /// A pipe, fork, write or wait of ours failed.
    #[error("cannot run {program}: {action}: {source}")]
    System {
        /// The program as given.
        program: String,
        /// What failed.
        action: &'static str,
        /// The error.
        source: io::Error,
    },
}

/// An errno in words, without io::Error's "(os error N)".
fn describe(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandEnd {
    /// It called exit with this status.
    Exited(i32),
    /// A signal ended it.
    Killed {
        /// The signal's number.
        signal: i32,
        /// Whether it dumped core.
        core_dumped: bool,
    },
}

impl CommandEnd {
    fn from_wait(status: rustix::process::WaitStatus) -> CommandEnd {
        match status.terminating_signal() {
            Some(signal) => CommandEnd::Killed {
                signal,
                // WCOREDUMP: the 0x80 bit of the raw status.
                core_dumped: status.as_raw() & 0x80 != 0,
            },
            None => CommandEnd::Exited(status.exit_status().unwrap_or(0)),
        }
    }

    /// Exit status 0.
    pub fn success(self) -> bool {
        self == CommandEnd::Exited(0)
    }
}

/// A command started behind a gate: forked, waiting until
/// [`GatedCommand::open`] lets it exec, so that tracing can be set up for
/// its pid (and its children) before it runs. A command dropped at its
/// gate is killed without having run.
pub struct GatedCommand {
    program: String,
    pid: Pid,
    /// Taken by `open`.
    held: Option<Held>,
}

struct Held {
    gate: File,
    errors: File,
}

impl GatedCommand {
    /// Starts `command` (program and arguments, exec'd as they are: no
    /// shell) held at its gate. The program is looked up on $PATH now, so
    /// that one that does not exist is an error before anything else.
    /// With `mount_ns`, the command enters that mount namespace (and the
    /// current directory's path there) before it execs, so that it runs
    /// in the caller's namespace and not in one of kscope's own.
    pub fn start(
        command: &[String],
        mount_ns: Option<BorrowedFd<'_>>,
    ) -> Result<GatedCommand, CommandError> {
        let (name, _) = command.split_first().ok_or(CommandError::Empty)?;
        let program = name.clone();
        let path_var = std::env::var_os("PATH");
        let resolved =
            resolve_program(name, path_var.as_deref()).map_err(|errno| CommandError::Run {
                program: program.clone(),
                errno,
            })?;
        let nul = || CommandError::Nul {
            program: program.clone(),
        };
        let c_string = |bytes: Vec<u8>| CString::new(bytes).map_err(|_| nul());
        let args = command
            .iter()
            .map(|a| c_string(a.clone().into_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let env = std::env::vars_os()
            .map(|(k, v)| {
                let mut pair = k.into_vec();
                pair.push(b'=');
                pair.extend(v.into_vec());
                c_string(pair)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cwd = match mount_ns {
            Some(_) => Some(
                std::env::current_dir()
                    .map_err(|source| CommandError::System {
                        program: program.clone(),
                        action: "the current directory",
                        source,
                    })
                    .and_then(|d| c_string(d.into_os_string().into_vec()))?,
            ),
            None => None,
        };
        let image = ExecImage::new(
            c_string(resolved.into_os_string().into_vec())?,
            args,
            env,
            cwd,
        );
        let child = sys::fork_held(&image, mount_ns).map_err(|source| CommandError::System {
            program: program.clone(),
            action: "fork",
            source,
        })?;
        Ok(GatedCommand {
            program,
            pid: child.pid,
            held: Some(Held {
                gate: File::from(child.gate),
                errors: File::from(child.errors),
            }),
        })
    }

    /// The pid the command has now and will keep when it runs.
    pub fn id(&self) -> u32 {
        self.pid.as_raw_nonzero().get().unsigned_abs()
    }

    /// Lets the command run; returns once it has exec'd, or the error
    /// that kept it from running (it is reaped then).
    pub fn open(mut self) -> Result<Child, CommandError> {
        let held = self.held.take();
        let system = |action, source| CommandError::System {
            program: self.program.clone(),
            action,
            source,
        };
        let Some(Held {
            mut gate,
            mut errors,
        }) = held
        else {
            return Err(system("open the gate", io::Error::other("opened twice")));
        };
        let mut child = Child {
            pid: self.pid,
            end: None,
        };
        if let Err(source) = gate.write_all(b"g") {
            drop(gate);
            let _ = child.kill_and_reap();
            return Err(system("open the gate", source));
        }
        drop(gate);
        let mut report = Vec::with_capacity(sys::REPORT_LEN);
        // End of file: execve closed the pipe (close-on-exec), or the
        // child died before it could write.
        let read = errors.read_to_end(&mut report);
        if report.is_empty() && read.is_ok() {
            return Ok(child);
        }
        let _ = child.wait();
        let program = self.program.clone();
        match sys::parse_report(&report) {
            Some((Stage::Exec, errno)) => Err(CommandError::Run { program, errno }),
            Some((Stage::Namespace, errno)) => Err(CommandError::Setup {
                program,
                action: "cannot enter the caller's mount namespace",
                errno,
            }),
            Some((Stage::Directory, errno)) => Err(CommandError::Setup {
                program,
                action: "cannot return to the working directory",
                errno,
            }),
            None => Err(system(
                "read its exec report",
                read.err()
                    .unwrap_or_else(|| io::Error::other("a short report")),
            )),
        }
    }

    /// Lets a command that was let through the gate end: if `terminate`
    /// and it still runs, it gets SIGTERM at once; if it still runs 2 s
    /// later, SIGKILL. Returns once it is reaped, with how it ended when it
    /// ended by itself (None when it had to be sent a signal by us).
    pub fn finish(mut child: Child, terminate: bool) -> io::Result<Option<CommandEnd>> {
        if let Some(end) = child.try_wait()? {
            return Ok(Some(end));
        }
        if terminate {
            let _ = sys::send_signal(child.pid, Signal::TERM);
        }
        let deadline = Instant::now() + FINISH_GRACE;
        while Instant::now() < deadline {
            if let Some(end) = child.try_wait()? {
                return Ok((!terminate).then_some(end));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill_and_reap()?;
        Ok(None)
    }
}

impl Drop for GatedCommand {
    fn drop(&mut self) {
        if self.held.take().is_some() {
            // Closing the gate unopened already makes it exit unrun; the
            // kill also ends one stopped by a job-control signal.
            let _ = Child {
                pid: self.pid,
                end: None,
            }
            .kill_and_reap();
        }
    }
}

/// A command let through its gate: running, or ended and reaped.
#[derive(Debug)]
pub struct Child {
    pid: Pid,
    end: Option<CommandEnd>,
}

impl Child {
    /// Its pid.
    pub fn id(&self) -> u32 {
        self.pid.as_raw_nonzero().get().unsigned_abs()
    }

    /// How it ended, reaping it, or None while it runs.
    pub fn try_wait(&mut self) -> io::Result<Option<CommandEnd>> {
        if self.end.is_none() {
            self.end = sys::try_reap(self.pid)?.map(CommandEnd::from_wait);
        }
        Ok(self.end)
    }

    /// Waits for it to end and reaps it.
    pub fn wait(&mut self) -> io::Result<CommandEnd> {
        if let Some(end) = self.end {
            return Ok(end);
        }
        let end = CommandEnd::from_wait(sys::reap(self.pid)?);
        self.end = Some(end);
        Ok(end)
    }

    fn kill_and_reap(&mut self) -> io::Result<CommandEnd> {
        if self.end.is_none() {
            let _ = sys::send_signal(self.pid, Signal::KILL);
        }
        self.wait()
    }
}

/// A command line given as one string (`probe -c COMMAND`) as the argument
/// vector for [`GatedCommand::start`], as stap runs it: split on blanks
/// and exec'd directly when it has no shell syntax (then the traced pid is
/// the program's); through `sh -c` when it has (quotes, `$`, `|`, `;`,
/// `&`, `<`, `>`, globs, backquotes, parentheses...), and then the pid is
/// the shell's. A single simple command there is written `exec COMMAND`,
/// so that the shell becomes the command and the pid stays its.
pub fn command_words(command: &str) -> Vec<String> {
    // `=` is plain in `dd if=x`, and shell syntax only in a leading
    // `VAR=value` word.
    let assignment = command
        .split_whitespace()
        .next()
        .is_some_and(|w| w.contains('='));
    let shell_syntax = assignment
        || command
            .chars()
            .any(|c| "|&;<>()$`\\\"'*?[]{}~#\n".contains(c));
    // One simple command (quotes, variables and globs, but no pipes,
    // lists or redirections) is exec'd by the shell, so that target() is
    // the command's own pid.
    let simple = !assignment && !command.chars().any(|c| "|&;<>()\n".contains(c));
    if shell_syntax && simple {
        vec!["sh".into(), "-c".into(), format!("exec {command}")]
    } else if shell_syntax {
        vec!["sh".into(), "-c".into(), command.into()]
    } else {
        command.split_whitespace().map(String::from).collect()
    }
}

/// The file execve(2) gets for `name`, as execvp(3) finds it: a name with
/// a `/` is taken as it is; any other is looked for in each directory of
/// `path_var` (an empty entry is the current directory). Err is errno:
/// ENOENT when there is no such file, EACCES when the only ones found are
/// not executable.
fn resolve_program(name: &str, path_var: Option<&OsStr>) -> Result<PathBuf, i32> {
    if name.is_empty() {
        return Err(libc::ENOENT);
    }
    if name.contains('/') {
        return match executable(Path::new(name)) {
            Ok(()) => Ok(PathBuf::from(name)),
            Err(errno) => Err(errno),
        };
    }
    let default = OsString::from(DEFAULT_PATH);
    let mut denied = false;
    for dir in path_var
        .unwrap_or(&default)
        .as_bytes()
        .split(|&b| b == b':')
    {
        let dir = match dir {
            b"" => Path::new("."),
            dir => Path::new(OsStr::from_bytes(dir)),
        };
        let candidate = dir.join(name);
        match executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(errno) => denied |= errno == libc::EACCES,
        }
    }
    Err(if denied { libc::EACCES } else { libc::ENOENT })
}

/// Ok when `path` is a file with an execute bit; otherwise the errno
/// execve(2) would give (ENOENT, or EACCES for a directory or a file
/// nobody may execute). execve still decides: this only finds it.
fn executable(path: &Path) -> Result<(), i32> {
    let meta = std::fs::metadata(path).map_err(|e| e.raw_os_error().unwrap_or(libc::ENOENT))?;
    if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
        Ok(())
    } else {
        Err(libc::EACCES)
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    fn words(command: &[&str]) -> Vec<String> {
        command.iter().map(|w| w.to_string()).collect()
    }

    /// The value of a field of /proc/PID/status.
    fn status_field(pid: u32, field: &str) -> Option<String> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    }

    #[test]
    fn the_command_runs_only_once_the_gate_opens_and_dies_if_it_never_does() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let touch = words(&["touch", marker.to_str().unwrap()]);
        let gated = GatedCommand::start(&touch, None).unwrap();
        assert!(gated.id() > 0);
        std::thread::sleep(Duration::from_millis(200));
        assert!(!marker.exists(), "the command ran before the gate opened");
        let mut child = gated.open().unwrap();
        assert_eq!(child.wait().unwrap(), CommandEnd::Exited(0));
        assert!(marker.exists());
        std::fs::remove_file(&marker).unwrap();
        let gated = GatedCommand::start(&touch, None).unwrap();
        let pid = gated.id();
        drop(gated);
        std::thread::sleep(Duration::from_millis(100));
        assert!(!marker.exists(), "a command dropped at its gate ran");
        // Reaped, not left a zombie.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn the_pid_given_before_the_gate_opens_is_the_program_itself() {
        let gated = GatedCommand::start(&words(&["sleep", "5"]), None).unwrap();
        let pid = gated.id();
        // Held: still a copy of this test process, asleep in poll(2).
        assert_ne!(status_field(pid, "Name").as_deref(), Some("sleep"));
        let child = gated.open().unwrap();
        assert_eq!(child.id(), pid);
        assert_eq!(status_field(pid, "Name").as_deref(), Some("sleep"));
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        assert_eq!(exe.file_name().and_then(OsStr::to_str), Some("sleep"));
        // Exec'd directly: its parent is us, not a shell.
        assert_eq!(
            status_field(pid, "PPid"),
            Some(std::process::id().to_string())
        );
        assert_eq!(GatedCommand::finish(child, true).unwrap(), None);
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn a_missing_program_is_an_error_naming_it_before_anything_runs() {
        let err = GatedCommand::start(&words(&["/nonexistent/cmd"]), None)
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "cannot run /nonexistent/cmd: No such file or directory"
        );
        let err = GatedCommand::start(&words(&["kscope-no-such-program-here"]), None)
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "cannot run kscope-no-such-program-here: No such file or directory"
        );
        assert!(matches!(
            GatedCommand::start(&[], None),
            Err(CommandError::Empty)
        ));
    }

    #[test]
    fn an_exec_failure_in_the_child_is_reported_through_the_pipe() {
        // An executable file the kernel cannot exec: no #! and no ELF.
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("not-a-program");
        std::fs::write(&script, "just text\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let gated = GatedCommand::start(&words(&[script.to_str().unwrap()]), None).unwrap();
        let pid = gated.id();
        let err = gated.open().err().unwrap();
        assert!(
            matches!(err, CommandError::Run { errno, .. } if errno == libc::ENOEXEC),
            "{err}"
        );
        assert!(err.to_string().starts_with("cannot run /"), "{err}");
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "not reaped");
    }

    #[test]
    fn how_a_command_ended_is_told() {
        let run = |command: &[&str]| {
            let mut child = GatedCommand::start(&words(command), None)
                .unwrap()
                .open()
                .unwrap();
            child.wait().unwrap()
        };
        assert_eq!(run(&["sh", "-c", "exit 3"]), CommandEnd::Exited(3));
        assert!(run(&["true"]).success());
        assert!(
            matches!(
                run(&["sh", "-c", "kill -SEGV $$"]),
                CommandEnd::Killed { signal, .. } if signal == libc::SIGSEGV
            ),
            "not killed by SIGSEGV"
        );
        // SIGPIPE, which the Rust runtime ignores, is the command's own
        // again: `yes | head` ends `yes` by it.
        assert!(
            matches!(
                run(&["sh", "-c", "kill -PIPE $$"]),
                CommandEnd::Killed { signal, .. } if signal == libc::SIGPIPE
            ),
            "SIGPIPE stayed ignored"
        );
        // finish reports an end the command came to by itself.
        let child = GatedCommand::start(&words(&["sh", "-c", "exit 3"]), None)
            .unwrap()
            .open()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            GatedCommand::finish(child, true).unwrap(),
            Some(CommandEnd::Exited(3))
        );
    }

    #[test]
    fn a_command_given_a_mount_namespace_enters_it_and_keeps_its_directory() {
        if !kscope_testkit::live(
            "setns(CLONE_NEWNS) of a gated command",
            kscope_testkit::missing_root(),
        ) {
            return;
        }
        // This process's own namespace: entering it moves to its root, and
        // the child must come back to this directory (the crate's).
        let ns = File::open("/proc/self/ns/mnt").unwrap();
        let in_this_directory = words(&["sh", "-c", "test -f Cargo.toml && test -d src"]);
        let mut child = GatedCommand::start(&in_this_directory, Some(ns.as_fd()))
            .unwrap()
            .open()
            .unwrap();
        assert_eq!(child.wait().unwrap(), CommandEnd::Exited(0));
        // A file that is no namespace is refused in the child, and said.
        let not_ns = File::open("Cargo.toml").unwrap();
        let err = GatedCommand::start(&words(&["true"]), Some(not_ns.as_fd()))
            .unwrap()
            .open()
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "cannot run true: cannot enter the caller's mount namespace: Invalid argument"
        );
    }

    #[test]
    fn a_command_line_is_exec_d_directly_unless_it_has_shell_syntax() {
        let sh = |line: &str| words(&["sh", "-c", line]);
        assert_eq!(command_words("sleep 0.2"), words(&["sleep", "0.2"]));
        assert_eq!(
            command_words("dd if=/dev/zero of=/dev/null  count=1"),
            words(&["dd", "if=/dev/zero", "of=/dev/null", "count=1"])
        );
        assert_eq!(command_words("cat 'a b'"), sh("exec cat 'a b'"));
        assert_eq!(command_words("ls *.rs"), sh("exec ls *.rs"));
        assert_eq!(command_words("echo $HOME"), sh("exec echo $HOME"));
        for line in ["a | b", "a; b", "a && b", "a > f", "(a)", "X=1 a", "a &"] {
            assert_eq!(command_words(line), sh(line), "{line}");
        }
    }

    #[test]
    fn a_pipeline_runs_under_sh_whose_pid_is_the_one_given() {
        let gated = GatedCommand::start(&command_words("sleep 5 | cat"), None).unwrap();
        let pid = gated.id();
        let child = gated.open().unwrap();
        assert_eq!(status_field(pid, "Name").as_deref(), Some("sh"));
        assert_eq!(GatedCommand::finish(child, true).unwrap(), None);
    }

    #[test]
    fn programs_are_found_on_path_as_execvp_finds_them() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let runnable = dir.path().join("runnable");
        std::fs::write(&runnable, "").unwrap();
        std::fs::set_permissions(&runnable, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = OsString::from(format!("/nonexistent:{}", dir.path().display()));
        assert_eq!(resolve_program("runnable", Some(&path)), Ok(runnable));
        assert_eq!(resolve_program("plain", Some(&path)), Err(libc::EACCES));
        assert_eq!(resolve_program("absent", Some(&path)), Err(libc::ENOENT));
        assert_eq!(
            resolve_program(plain.to_str().unwrap(), None),
            Err(libc::EACCES)
        );
        assert_eq!(
            resolve_program(dir.path().to_str().unwrap(), None),
            Err(libc::EACCES)
        );
        assert_eq!(resolve_program("", Some(&path)), Err(libc::ENOENT));
        assert_eq!(
            resolve_program("sh", None).map(|p| p.is_absolute()),
            Ok(true)
        );
    }
}
