//! One module per subcommand: its arguments and its `run`.

pub mod core;
pub mod crash;
pub mod doctor;
mod input;
pub mod probe;
pub mod trace;
pub mod trace_record;
pub mod trace_report;
pub mod trace_stream;
