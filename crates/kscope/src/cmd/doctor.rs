//! `kscope doctor`: what this kernel lets a debugger do, and why not.

use std::process::ExitCode;

use crate::render;

/// Arguments of `kscope doctor`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the report as one JSON document (schema in docs/DOCTOR.md).
    #[arg(long)]
    json: bool,

    /// One line per capability, without the evidence.
    #[arg(long, short, conflicts_with = "json")]
    brief: bool,
}

/// Runs every check and prints the report. The exit status is 0 whatever
/// the verdicts: the report is the answer.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let report = kscope_doctor::diagnose();
    if args.json {
        render::json::print(&report)?;
    } else {
        render::doctor::print(&report, args.brief, render::text::Style::detect())?;
    }
    Ok(ExitCode::SUCCESS)
}
