//! The `kscope` binary: parses arguments, calls the library crates, and
//! renders their results. No kernel logic lives here.

mod cmd;
mod render;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use kscope_tracefs::KernelFs;

/// kscope: one tool for debugging the Linux kernel.
///
/// kscope needs no kernel module, no debuginfo package and no compiler on
/// the target, and leaves the kernel as it found it. Start with `kscope
/// doctor` to see what this kernel lets a debugger do.
#[derive(Debug, Parser)]
#[command(name = "kscope", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read a user-space core dump: the process, the signal, and a
    /// symbolized backtrace of every thread.
    ///
    /// The stacks are unwound with the .eh_frame call-frame information of
    /// the executable and libraries on disk (the frame-pointer chain where
    /// there is none), and symbolized with their DWARF or symbol tables;
    /// a frame whose file is missing keeps its address and module.
    Core(cmd::core::Args),

    /// Read a kernel crash dump (vmcore) with nothing but the dump.
    ///
    /// The dump's own VMCOREINFO, kallsyms and BTF give the kernel's
    /// symbols and types, so no vmlinux or debuginfo package is needed (a
    /// System.map can be given with -s). With a command, runs it and exits
    /// (--json for scripts); without one, opens a shell.
    Crash(cmd::crash::Args),

    /// Tell what this kernel lets a debugger do, and why not.
    ///
    /// One line per capability (tracefs, tracepoints, uprobes, kprobes, the
    /// function tracer, BPF, BTF, perf events, kallsyms, kernel config,
    /// lockdown, core dumps, kdump, /proc/kcore, modules, debuginfo) with a
    /// verdict (available, missing, denied, unknown), the evidence, and for
    /// what is not available the kernel option or permission that would
    /// provide it and the nearest thing that works.
    ///
    /// It changes nothing. If tracefs or securityfs is not mounted, kscope
    /// mounts it for the look in a private mount namespace of its own
    /// (nobody else sees it; it vanishes when doctor exits); the BPF and
    /// perf probes create one object each and close it at once. The
    /// `leftovers` line lists what kscope sessions killed before they
    /// could clean up left in the kernel: any tracing command (`kscope
    /// trace list -t`, for one) undoes it.
    Doctor(cmd::doctor::Args),

    /// Run a SystemTap-style probe script, compiled straight to eBPF.
    ///
    /// No compiler, no kernel module, no debuginfo: kscope compiles the
    /// script itself, loads it with bpf(2), attaches it with
    /// perf_event_open(2), and removes everything when it ends (exit(),
    /// Ctrl-C, SIGTERM, or the -c command exiting).
    Probe(cmd::probe::Args),

    /// ftrace: list events; stream them; record, extract, report and
    /// convert trace.dat files (trace-cmd's format).
    ///
    /// Every change to tracefs is journaled in /run/kscope before it is
    /// made and undone when kscope ends. What a kscope killed by SIGKILL
    /// (or a crash) left, the next tracing command (`list`, `stream`,
    /// `record`, `extract`, or `kscope probe`) undoes first, saying so;
    /// `kscope doctor` lists it without changing anything.
    Trace(cmd::trace::Args),
}

impl Command {
    /// The kernel filesystems the command reads, and whether it changes
    /// tracefs (and so first undoes what killed sessions left; doctor only
    /// lists that).
    fn kernel_filesystems(&self) -> (&'static [KernelFs], bool) {
        match self {
            Command::Doctor(_) => (&[KernelFs::Tracefs, KernelFs::Securityfs], false),
            Command::Probe(_) => (&[KernelFs::Tracefs], true),
            Command::Trace(args) if args.uses_tracefs() => (&[KernelFs::Tracefs], true),
            Command::Trace(_) | Command::Core(_) | Command::Crash(_) => (&[], false),
        }
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    // Before any thread starts: when tracefs is mounted nowhere, kscope
    // mounts it in a private mount namespace of its own, which
    // unshare(CLONE_NEWNS) gives only to the calling thread. A failure is
    // reported by the command when it reaches tracefs.
    let (mounts, changes_tracefs) = cli.command.kernel_filesystems();
    if !mounts.is_empty() {
        let _ = kscope_tracefs::mount_privately(mounts);
    }
    if changes_tracefs {
        cmd::leftovers::clean();
    }
    // Every command that changes tracefs does it through a StateGuard;
    // this makes Ctrl-C, SIGTERM, SIGHUP and SIGQUIT undo those changes.
    if let Err(err) = kscope_tracefs::restore_on_signals() {
        eprintln!(
            "kscope: warning: cannot watch for signals ({err}); Ctrl-C may leave tracefs changed"
        );
    }
    let outcome = match cli.command {
        Command::Core(args) => cmd::core::run(&args),
        Command::Crash(args) => cmd::crash::run(&args),
        Command::Doctor(args) => cmd::doctor::run(&args),
        Command::Probe(args) => cmd::probe::run(&args),
        Command::Trace(args) => cmd::trace::run(&args, matches.subcommand_matches("trace")),
    };
    match outcome {
        Ok(code) => code,
        // `kscope ... | head` closes the pipe early: that is not an error.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        // A diagnostic about the user's input (a script) is already in
        // the compiler's `file:line:col: error: ...` form.
        Err(err) if err.downcast_ref::<Diagnosed>().is_some() => {
            eprintln!("{}", error_text(&err).trim_end());
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("kscope: error: {}", error_text(&err));
            ExitCode::FAILURE
        }
    }
}

/// An error already rendered for the user as `file:line:col: error: ...`
/// with the source line and carets.
#[derive(Debug)]
pub struct Diagnosed(pub String);

impl std::fmt::Display for Diagnosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Diagnosed {}

/// The error and its causes joined by ": ", leaving out a cause whose
/// text the message before it already ends with (the library errors put
/// their source in their own message, and also give it as the source).
fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from_raw_os_error(1);
        let err = anyhow::Error::new(io)
            .context("creating it failed: Operation not permitted (os error 1)");
        let err = err.context("cannot load the probes");
        assert_eq!(
            error_text(&err),
            "cannot load the probes: creating it failed: Operation not permitted (os error 1)"
        );
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_closed_pipe_is_recognised_through_context() {
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let err = anyhow::Error::new(pipe).context("writing the report");
        assert!(is_broken_pipe(&err));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
