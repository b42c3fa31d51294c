//! `kscope trace report`: a trace.dat printed as `trace-cmd report`
//! prints it, or as JSON. The file is mapped, not read; the report engine
//! (`kscope_report`) merges its CPUs by time, selects and formats; this
//! module opens the file and renders.

use std::io::Write;
use std::process::ExitCode;

use kscope_report::{Damage, Report, TextOptions};

use crate::render::trace_cmd;

/// Arguments of `kscope trace report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub input: super::input::TraceDatInput,
    /// Only these CPUs (repeat for more).
    #[arg(long = "cpu", value_name = "N")]
    pub cpus: Vec<u32>,
    /// Only these events, as trace-cmd takes them: `SYSTEM/EVENT`, or a
    /// name that is a system or an event, comma-separated, globs allowed;
    /// then, after a colon, a filter on the fields (and `COMM`):
    /// `-F 'sched/sched_switch: prev_pid != 0 && next_comm == "bash"'`.
    #[arg(short = 'F', long = "filter", value_name = "EVENTS[: FILTER]")]
    pub filters: Vec<String>,
    /// Print each event's raw fields (`name=value`) instead of its text.
    #[arg(short = 'R', long = "raw")]
    pub raw: bool,
    /// Print per-CPU statistics and event counts instead of the events.
    #[arg(long)]
    pub stat: bool,
    /// One JSON object per event, for scripts.
    #[arg(long, conflicts_with = "stat")]
    pub json: bool,
}

/// Runs `kscope trace report`.
pub fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let file = args.input.open()?;
    super::input::check_start(&args.input.path, file.bytes(), &super::input::TRACE_DAT)?;
    let data = args.input.parse(&file)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let report = Report::new(&data, Some(&file));
    let selection = report.selection(&args.filters)?;
    let options = TextOptions {
        cpus: args.cpus.clone(),
        raw: args.raw,
    };
    let damage = if args.stat {
        let (statistics, damage) = report.statistics(&args.cpus);
        trace_cmd::statistics(&mut out, &statistics)?;
        damage
    } else if args.json {
        report.for_each_record(&options, &selection, |record| -> anyhow::Result<()> {
            serde_json::to_writer(&mut out, record)?;
            out.write_all(b"\n")?;
            Ok(())
        })?
    } else {
        writeln!(out, "cpus={}", data.cpus)?;
        report.write_text(&options, &selection, &trace_cmd::ReportLayout, &mut out)?
    };
    for Damage { buffer, cpu, error } in damage {
        eprintln!("kscope: a sub-buffer of CPU {cpu} in buffer {buffer:?} is damaged: {error}");
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
