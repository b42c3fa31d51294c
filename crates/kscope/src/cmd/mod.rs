//! One module per subcommand: its arguments and its `run`.

pub mod core;
pub mod crash;
pub mod doctor;
mod input;
pub mod leftovers;
pub mod probe;
pub mod trace;
pub mod trace_record;
pub mod trace_report;
pub mod trace_stream;

/// `error`, with what kscope needs said first when tracefs refused a user
/// who is not root (EACCES or EPERM on one of its files): `needed` says
/// it in one sentence.
pub(crate) fn explain_tracefs_refusal(error: anyhow::Error, needed: &str) -> anyhow::Error {
    use kscope_probe::catalog::CatalogError;
    let from_tracefs = error.chain().any(|e| {
        e.is::<kscope_tracefs::Error>()
            || matches!(
                e.downcast_ref::<CatalogError>(),
                Some(CatalogError::Read(_))
            )
    });
    let refused = error.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied)
    });
    if from_tracefs && refused && !rustix::process::geteuid().is_root() {
        error.context(needed.to_string())
    } else {
        error
    }
}

use kscope_ftrace::{CommandEnd, GatedCommand};

/// The command of `-c`/`--`, when there is one, started and held before
/// its exec until tracing is on; it runs in the caller's mount namespace.
pub(crate) fn start_command(command: &[String]) -> anyhow::Result<Option<GatedCommand>> {
    if command.is_empty() {
        return Ok(None);
    }
    let gated = GatedCommand::start(command, kscope_tracefs::caller_mount_namespace())?;
    Ok(Some(gated))
}

/// Says on standard error how the command kscope ran (`-c`, `--`) ended,
/// when it failed by itself; kscope's own exit status stays its own.
pub(crate) fn report_command_end(end: Option<CommandEnd>) {
    match end {
        Some(CommandEnd::Exited(status)) if status != 0 => {
            eprintln!("kscope: the command exited with status {status}");
        }
        Some(CommandEnd::Killed {
            signal,
            core_dumped,
        }) => eprintln!(
            "kscope: the command was killed by {}{}",
            kscope_coredump::signal_name(signal),
            if core_dumped { " (core dumped)" } else { "" }
        ),
        _ => {}
    }
}
