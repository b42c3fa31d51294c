//! `kscope trace stream`: trace events in a private instance and print
//! them as they come, in the layout of `trace-cmd report`, until the
//! command given after `--` exits or Ctrl-C.

use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use kscope_ftrace::{
    EventSelection, GatedCommand, Item, KernelContext, Session, SessionConfig, merge, read_btf,
    select_events,
};
use kscope_traceevent::printfmt::{Env, FieldValue, field_values};
use kscope_traceevent::{
    Cmdlines, EventFormat, Renderer, common_flags, common_pid, common_preempt_count, common_type,
};
use kscope_tracefs::{StateGuard, Tracefs, control};

use crate::render::trace_cmd;

/// The events to trace and how: the options `stream` and `record` share.
#[derive(Debug, clap::Args)]
pub struct EventArgs {
    /// An event to trace: SYSTEM:EVENT, SYSTEM (all its events) or EVENT;
    /// globs work (`-e 'syscalls:sys_enter_open*'`). Repeat for more.
    #[arg(short = 'e', long = "event", value_name = "EVENT", required = true)]
    pub events: Vec<String>,
    /// A kernel filter for the events of the -e just before it, e.g.
    /// `-e sched:sched_switch -f 'prev_pid != 0'`.
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
    /// Only events of these pids (repeat for more).
    #[arg(short = 'P', long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// The trace clock (see `cat /sys/kernel/tracing/trace_clock`).
    #[arg(long, value_name = "CLOCK")]
    pub clock: Option<String>,
    /// Per-CPU buffer size in KiB.
    #[arg(short = 'b', long = "buffer-kb", value_name = "KB")]
    pub buffer_kb: Option<u64>,
}

impl EventArgs {
    /// The events of `available` the -e options name, each with the -f
    /// that followed it (by their `positions` on the command line).
    pub fn selections(
        &self,
        available: &[(String, String)],
        positions: (&[usize], &[usize]),
    ) -> anyhow::Result<Vec<EventSelection>> {
        Ok(select_events(
            available,
            &self.events,
            &self.filters,
            positions,
        )?)
    }
}

/// Arguments of `kscope trace stream`.
#[derive(Debug, clap::Args)]
pub struct StreamArgs {
    #[command(flatten)]
    pub select: EventArgs,
    /// Write the lines to FILE instead of stdout. A symbolic link at FILE
    /// is refused, and so is another user's file (or one with other hard
    /// links) in a directory others can write to, such as /tmp.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,

    /// One JSON object per line instead of text, for scripts: cpu, ts (ns),
    /// comm, pid, flags, event, text and the event's fields; lost events
    /// as {"cpu", "ts", "lost"}.
    #[arg(long)]
    pub json: bool,

    /// Only the events of COMMAND and of the processes it starts
    /// (`set_event_pid` and the `event-fork` option). The command is held
    /// before its exec until tracing is on: none of it is missed.
    #[arg(short = 'F', long = "follow", requires = "command")]
    pub follow: bool,

    /// Run this command (exec'd as given, no shell), trace while it runs,
    /// and stop when it exits.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Where `-o FILE` sends output (stdout without it), opened as
/// kscope-outfile's streamed outputs are: a link or another user's file
/// in a shared directory is refused.
pub fn open_output(path: Option<&std::path::Path>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match path {
        Some(path) => Box::new(std::io::BufWriter::new(kscope_outfile::create_streamed(
            path,
        )?)),
        None => Box::new(std::io::stdout().lock()),
    })
}

/// Runs `kscope trace stream`.
pub fn run(args: &StreamArgs, positions: (&[usize], &[usize])) -> anyhow::Result<ExitCode> {
    // Before tracing starts, so that a refused output changes nothing.
    let mut out = open_output(args.output.as_deref())?;
    kscope_tracefs::handle_interrupt_gracefully();
    let guard = StateGuard::new();
    let fs = guard.tracefs().context("cannot reach tracefs")?;
    let available = fs.events()?;
    let selections = args.select.selections(&available, positions)?;
    let texts: Vec<String> = selections
        .iter()
        .map(|s| fs.event_format(&s.system, &s.event))
        .collect::<Result<_, _>>()?;
    let formats: Vec<EventFormat<'_>> = texts
        .iter()
        .zip(&selections)
        .map(|(t, s)| {
            EventFormat::parse(t).with_context(|| format!("the format of {}:{}", s.system, s.event))
        })
        .collect::<anyhow::Result<_>>()?;
    let renderer = Renderer::new(&formats);
    let mut kernel = KernelContext::load(kscope_doctor::running_kernel_hz());
    let btf_blob = read_btf();
    let btf = kscope_btf::Btf::parse(&btf_blob).ok();
    let unresolved: Vec<&str> = renderer
        .unresolved(&kernel.env(btf.as_ref()))
        .into_iter()
        .flat_map(|(_, names)| names)
        .collect();
    kernel.resolve(&fs, &unresolved);
    kernel.read_strings(&fs);
    let gated = super::start_command(&args.command)?;
    let mut pids = args.select.pids.clone();
    if args.follow
        && let Some(gated) = &gated
    {
        pids.push(gated.id());
    }
    let config = SessionConfig {
        events: selections,
        pids,
        follow_forks: args.follow,
        clock: args.select.clock.clone(),
        buffer_kb: args.select.buffer_kb,
        wake_percent: 0,
    };
    // Tracing could not start: the gated command is killed unrun (drop).
    let mut session = Session::start(&guard, &fs, &config)?;
    let mut child = match gated {
        Some(gated) => Some(gated.open()?),
        None => None,
    };
    loop {
        session.wait(Duration::from_millis(200))?;
        let child_done = match child.as_mut() {
            Some(c) => c.try_wait()?.is_some(),
            None => false,
        };
        let last = child_done || kscope_tracefs::interrupted();
        if last {
            // Stop recording first, so that the last drain takes everything.
            session.stop(&guard)?;
        }
        let pages = if last {
            session.drain_all()?
        } else {
            session.drain()?
        };
        kernel.refresh_jiffies();
        let printer = Printer {
            renderer: &renderer,
            env: &kernel.env(btf.as_ref()),
            fs: &fs,
            json: args.json,
        };
        printer.print(&pages, &session, &mut out)?;
        if last {
            break;
        }
    }
    out.flush()?;
    drop(out);
    // The per-CPU files must be closed before the instance can go.
    drop(session);
    if let Some(c) = child {
        // Stopped by a signal while the command still runs: with Ctrl-C it
        // got the same SIGINT and ends by itself; otherwise stop it.
        super::report_command_end(GatedCommand::finish(c, false)?);
    }
    guard.restore()?;
    Ok(ExitCode::SUCCESS)
}

struct Printer<'a, 'f> {
    renderer: &'a Renderer<'f>,
    env: &'a Env<'a>,
    fs: &'a Tracefs,
    json: bool,
}

impl Printer<'_, '_> {
    fn print(
        &self,
        pages: &[kscope_ftrace::RawPage],
        session: &Session,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        if pages.is_empty() {
            return Ok(());
        }
        let merged = merge(pages, session.layout());
        let cmdlines = Cmdlines::parse(
            &control::read(&self.fs.root().join("saved_cmdlines")).unwrap_or_default(),
        );
        // The batch's lines are built in one String and written at once.
        let (mut lines, mut text) = (String::new(), String::new());
        for item in &merged.items {
            match *item {
                Item::Lost { cpu, count, ts } if self.json => {
                    let lost = serde_json::json!({"cpu": cpu, "ts": ts, "lost": count});
                    lines.push_str(&lost.to_string());
                }
                Item::Lost { cpu, count, .. } => trace_cmd::lost_line(&mut lines, cpu, count),
                Item::Record {
                    ts,
                    cpu,
                    page,
                    start,
                    len,
                } => {
                    let data = &pages[page].bytes[start..start + len];
                    self.record(&mut lines, &mut text, data, cpu, ts, &cmdlines);
                }
            }
            lines.push('\n');
        }
        out.write_all(lines.as_bytes())?;
        for (cpu, err) in &merged.errors {
            eprintln!("kscope: a sub-buffer of CPU {cpu} is damaged: {err}");
        }
        Ok(())
    }

    /// Appends one record's line (without its newline); `text` is
    /// scratch space for the event's text, reused from record to record.
    fn record(
        &self,
        line: &mut String,
        text: &mut String,
        data: &[u8],
        cpu: u32,
        ts: u64,
        cmdlines: &Cmdlines,
    ) {
        let pid = common_pid(data);
        let latency = trace_cmd::latency_flags(common_flags(data), common_preempt_count(data));
        text.clear();
        let name = match self.renderer.render(data, self.env, text) {
            Some(format) => format.name,
            None => {
                let id = common_type(data).unwrap_or(0);
                let _ = write!(text, "[unknown event id {id}]");
                "UNKNOWN"
            }
        };
        if self.json {
            let fields: serde_json::Map<String, serde_json::Value> = self
                .renderer
                .event_of(data)
                .map(|format| {
                    field_values(format, data)
                        .into_iter()
                        .map(|(name, value)| (name.to_string(), field_json(value)))
                        .collect()
                })
                .unwrap_or_default();
            let record = serde_json::json!({
                "cpu": cpu,
                "ts": ts,
                "comm": cmdlines.comm(pid),
                "pid": pid,
                "flags": latency,
                "event": name,
                "text": text.as_str(),
                "fields": fields,
            });
            line.push_str(&record.to_string());
            return;
        }
        trace_cmd::record_line(line, cmdlines.comm(pid), pid, cpu, &latency, ts, name, text);
    }
}

fn field_json(value: FieldValue) -> serde_json::Value {
    match value {
        FieldValue::Signed(v) => v.into(),
        FieldValue::Unsigned(v) => v.into(),
        FieldValue::Text(text) => text.into(),
        FieldValue::Bytes(bytes) => bytes.into(),
        FieldValue::Numbers(numbers) => numbers.into(),
        FieldValue::Unreadable => serde_json::Value::Null,
    }
}
