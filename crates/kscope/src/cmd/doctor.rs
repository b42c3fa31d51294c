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

    /// Print the facts the verdicts rest on as JSON, not the verdicts
    /// (how the test data in crates/doctor/tests/facts is recorded).
    #[arg(long, hide = true, conflicts_with_all = ["json", "brief"])]
    facts: bool,
}

/// Runs every check and prints the report. The exit status is 0 whatever
/// the verdicts: the report is the answer.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let facts = kscope_doctor::Facts::gather();
    if args.facts {
        render::json::print(&facts)?;
        return Ok(ExitCode::SUCCESS);
    }
    let report = facts.judge();
    if args.json {
        render::json::print(&report)?;
    } else {
        render::doctor::print(&report, args.brief, render::text::Style::detect())?;
    }
    Ok(ExitCode::SUCCESS)
}
