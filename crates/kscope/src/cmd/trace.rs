//! `kscope trace`: ftrace. Today its `list` subcommand: events (with a
//! glob), tracers, options, and one event's fields, as `trace-cmd list`
//! shows them plus the field layout.

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

/// Runs `kscope trace`. `matches` are the parsed `trace` arguments, for
/// the order of `-e` and `-f` in `stream`.
pub fn run(args: &Args, matches: Option<&clap::ArgMatches>) -> anyhow::Result<ExitCode> {
    match &args.action {
        Action::List(list) => run_list(list),
        Action::Stream(stream) => {
            let stream_matches = matches.and_then(|m| m.subcommand_matches("stream"));
            let positions = |id: &str| -> Vec<usize> {
                stream_matches
                    .and_then(|m| m.indices_of(id))
                    .map(Iterator::collect)
                    .unwrap_or_default()
            };
            let (events, filters) = (positions("events"), positions("filters"));
            super::trace_stream::run(stream, (&events, &filters))
        }
    }
}

fn run_list(args: &ListArgs) -> anyhow::Result<ExitCode> {
    // Mounts tracefs for the look when it is absent, and unmounts it after.
    let guard = StateGuard::new();
    let fs = guard.tracefs().context("cannot reach tracefs")?;
    let everything =
        args.events.is_none() && !args.tracers && !args.options && args.fields.is_none();
    let mut listing = render::trace_list::Listing::default();
    if let Some(glob) = args.events.as_deref().or(everything.then_some("*")) {
        let pattern = glob::Pattern::new(glob).with_context(|| format!("bad glob {glob:?}"))?;
        listing.events = Some(
            fs.events()?
                .into_iter()
                .map(|(system, event)| format!("{system}:{event}"))
                .filter(|name| pattern.matches(name))
                .collect(),
        );
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
        [] => bail!("no event {name:?}; `kscope trace list -e '*{name}*'` shows similar names"),
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
