//! `kscope trace`: ftrace. `list` (events, tracers, options, one event's
//! fields, as `trace-cmd list` shows them plus the field layout) lives
//! here; `stream`, `record`/`extract`/`convert` and `report` have modules
//! of their own.

use std::process::ExitCode;

use anyhow::{Context, bail};
use kscope_traceevent::EventFormat;
use kscope_tracefs::{StateGuard, Tracefs};

use crate::render;

/// Arguments of `kscope trace`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// List trace events, tracers and options, or one event's fields.
    ///
    /// With no flag, lists events, tracers and options. Events are shown
    /// as SYSTEM:EVENT; a glob selects some (`-e 'sched:*'`, `-e '*open*'`).
    List(ListArgs),

    /// Trace events in a private instance and print them as they come.
    ///
    /// Lines look like `trace-cmd report`'s. Runs COMMAND (after `--`) and
    /// stops when it exits, or stops on Ctrl-C; either way every change to
    /// tracefs is undone. Works where `trace-cmd record` cannot (no
    /// function tracer needed).
    Stream(super::trace_stream::StreamArgs),

    /// Record events to a trace.dat that trace-cmd and KernelShark read.
    ///
    /// Traces in a private instance (tracefs is left as it was), one
    /// splice(2) reader per CPU moving whole sub-buffers to disk; stops
    /// when COMMAND (after `--`) exits, or on Ctrl-C, and writes the file
    /// either way. Shows progress on a terminal. Works where `trace-cmd
    /// record` cannot (no function tracer needed).
    Record(super::trace_record::RecordArgs),

    /// Write what a ring buffer holds now to a trace.dat.
    ///
    /// The top-level buffer, or an instance's with -B; nothing else is
    /// changed. Reading consumes what is read, as trace-cmd extract does.
    Extract(super::trace_record::ExtractArgs),

    /// Print a trace.dat as `trace-cmd report` does, or as JSON.
    Report(super::trace_report::ReportArgs),

    /// Rewrite a trace.dat in another version or compression, as
    /// `trace-cmd convert` does.
    Convert(super::trace_record::ConvertArgs),
}

/// Arguments of `kscope trace list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// List events, all or those matching a glob on SYSTEM:EVENT.
    #[arg(short = 'e', long = "events", value_name = "GLOB", num_args = 0..=1, default_missing_value = "*")]
    events: Option<String>,

    /// List the tracers this kernel offers.
    #[arg(short = 't', long = "tracers")]
    tracers: bool,

    /// List the trace options and whether each is on.
    #[arg(short = 'o', long = "options")]
    options: bool,

    /// Show one event's fields (offset, size, sign, type) and print format;
    /// SYSTEM:EVENT, or EVENT alone when its name is unique.
    #[arg(short = 'F', long = "fields", value_name = "EVENT")]
    fields: Option<String>,

    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl Args {
    /// True for the actions that use tracefs (`report` and `convert` only
    /// read files).
    pub fn uses_tracefs(&self) -> bool {
        !matches!(self.action, Action::Report(_) | Action::Convert(_))
    }
}

/// Runs `kscope trace`. `matches` are the parsed `trace` arguments, for
/// the order of `-e` and `-f` in `stream`.
pub fn run(args: &Args, matches: Option<&clap::ArgMatches>) -> anyhow::Result<ExitCode> {
    run_action(args, matches).map_err(|e| {
        super::explain_tracefs_refusal(
            e,
            "kscope trace needs root (tracefs, /sys/kernel/tracing, refused this user); run it with sudo",
        )
    })
}

fn run_action(args: &Args, matches: Option<&clap::ArgMatches>) -> anyhow::Result<ExitCode> {
    match &args.action {
        Action::List(list) => run_list(list),
        Action::Stream(stream) => {
            let (events, filters) = event_positions(matches, "stream");
            super::trace_stream::run(stream, (&events, &filters))
        }
        Action::Record(record) => {
            let (events, filters) = event_positions(matches, "record");
            super::trace_record::record(record, (&events, &filters))
        }
        Action::Extract(extract) => super::trace_record::extract(extract),
        Action::Report(report) => super::trace_report::run(report),
        Action::Convert(convert) => super::trace_record::convert(convert),
    }
}

/// Where each -e and -f of subcommand `name` sat on the command line, so
/// that a filter goes with the event before it.
fn event_positions(matches: Option<&clap::ArgMatches>, name: &str) -> (Vec<usize>, Vec<usize>) {
    let sub = matches.and_then(|m| m.subcommand_matches(name));
    let positions = |id: &str| -> Vec<usize> {
        sub.and_then(|m| m.indices_of(id))
            .map(Iterator::collect)
            .unwrap_or_default()
    };
    (positions("events"), positions("filters"))
}

fn run_list(args: &ListArgs) -> anyhow::Result<ExitCode> {
    let guard = StateGuard::new();
    let fs = guard.tracefs().context("cannot reach tracefs")?;
    let everything =
        args.events.is_none() && !args.tracers && !args.options && args.fields.is_none();
    let mut listing = render::trace_list::Listing::default();
    if let Some(glob) = args.events.as_deref().or(everything.then_some("*")) {
        let pattern = glob::Pattern::new(glob).with_context(|| format!("bad glob {glob:?}"))?;
        let available = fs.events()?;
        let events: Vec<String> = available
            .iter()
            .map(|(system, event)| format!("{system}:{event}"))
            .filter(|name| pattern.matches(name))
            .collect();
        if events.is_empty() {
            bail!(
                "no event matches {glob:?}{}",
                kscope_ftrace::no_event_hint(glob, &available)
            );
        }
        listing.events = Some(events);
    }
    if args.tracers || everything {
        listing.tracers = Some(fs.tracers()?);
    }
    if args.options || everything {
        listing.options = Some(fs.options()?);
    }
    let format_text = match &args.fields {
        Some(name) => Some(find_format(&fs, name)?),
        None => None,
    };
    let format = match &format_text {
        Some((system, text)) => Some((
            system.as_str(),
            EventFormat::parse(text).with_context(|| format!("the format of {system}"))?,
        )),
        None => None,
    };
    listing.format = format;
    if args.json {
        render::json::print(&listing.to_json())?;
    } else {
        render::trace_list::print(&listing)?;
    }
    guard.restore()?;
    Ok(ExitCode::SUCCESS)
}

/// The system and format text of `name` (SYSTEM:EVENT or a unique EVENT).
fn find_format(fs: &Tracefs, name: &str) -> anyhow::Result<(String, String)> {
    let events = fs.events()?;
    let candidates: Vec<&(String, String)> = match name.split_once(':') {
        Some((system, event)) => events
            .iter()
            .filter(|(s, e)| s == system && e == event)
            .collect(),
        None => events.iter().filter(|(_, e)| e == name).collect(),
    };
    match candidates.as_slice() {
        [(system, event)] => Ok((system.clone(), fs.event_format(system, event)?)),
        [] => bail!(
            "no event {name:?}{}",
            kscope_ftrace::no_event_hint(name, &events)
        ),
        many => bail!(
            "{name:?} names {} events: {}; say which with SYSTEM:EVENT",
            many.len(),
            many.iter()
                .map(|(s, e)| format!("{s}:{e}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
