//! One module per subcommand: its arguments and its `run`.

pub mod core;
pub mod crash;
pub mod doctor;
pub mod probe;
pub mod trace;
pub mod trace_record;
pub mod trace_report;
pub mod trace_stream;

use kscope_ftrace::CommandEnd;

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
