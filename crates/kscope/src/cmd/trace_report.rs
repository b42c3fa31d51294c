//! `kscope trace report`: a trace.dat printed as `trace-cmd report`
//! prints it, or as JSON. The file is mapped, not read; each CPU's pages
//! are decoded as they are reached, and the CPUs (and buffers) are merged
//! by time through a heap, so memory does not grow with the trace.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use kscope_traceevent::printfmt::Env;
use kscope_traceevent::{
    Cmdlines, EventFormat, HeaderPage, Kallsyms, Missed, PageLayout, PrintkFormats, Renderer,
    SubBuffer,
};

use crate::render::{trace_cmd, trace_plugins};

/// The prefix of each buffer's lines: none when the file has only the top
/// buffer; else each instance's name right-aligned to the longest, and
/// blanks of that width for the top buffer (as trace-cmd prints them).
fn prefixes(data: &kscope_tracedat::TraceData<'_>) -> Vec<String> {
    let instances = data.buffers.iter().any(|b| !b.name.is_empty());
    let width = data.buffers.iter().map(|b| b.name.len()).max().unwrap_or(0);
    data.buffers
        .iter()
        .map(|b| match (instances, b.name.is_empty()) {
            (false, _) => String::new(),
            (true, true) => " ".repeat(width + 2),
            (true, false) => format!("{:>width$}: ", b.name),
        })
        .collect()
}

/// Task names: the file's saved cmdlines, then the names trace-cmd's
/// sched plugin learns from the events it prints (the first name a pid
/// gets is kept).
pub(crate) struct Comms<'c> {
    cmdlines: &'c Cmdlines,
    learned: std::collections::HashMap<i32, String>,
}

impl<'c> Comms<'c> {
    fn new(cmdlines: &'c Cmdlines) -> Comms<'c> {
        Comms {
            cmdlines,
            learned: Default::default(),
        }
    }

    /// The name of `pid`, `<idle>` for 0, `<...>` when unknown.
    pub(crate) fn comm(&self, pid: i32) -> &str {
        match self.cmdlines.comm(pid) {
            "<...>" => self.learned.get(&pid).map_or("<...>", String::as_str),
            known => known,
        }
    }

    /// Learns `comm` for `pid` unless the pid has a name.
    pub(crate) fn learn(&mut self, pid: i32, comm: &str) {
        if pid != 0 && self.cmdlines.comm(pid) == "<...>" {
            self.learned.entry(pid).or_insert_with(|| comm.to_string());
        }
    }
}

/// Arguments of `kscope trace report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The trace.dat to read.
    #[arg(
        short = 'i',
        long = "input",
        value_name = "FILE",
        default_value = "trace.dat"
    )]
    pub input: PathBuf,
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
    let file = kscope_tracedat::TraceFile::open(&args.input)
        .with_context(|| format!("cannot open {}", args.input.display()))?;
    super::input::check_start(&args.input, file.bytes(), &super::input::TRACE_DAT)?;
    let data = kscope_tracedat::parse(file.bytes()).with_context(|| {
        format!(
            "{} is not a trace.dat kscope can read",
            args.input.display()
        )
    })?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let header_page = std::str::from_utf8(&data.header_page).unwrap_or_default();
    let layout = HeaderPage::parse(header_page)
        .map(|h| PageLayout::from_header(&h))
        .unwrap_or(PageLayout::X86_64);
    // Each format with its system: the file keeps them per system.
    let texts: Vec<(&str, &str)> = data
        .ftrace_formats
        .iter()
        .map(|f| ("ftrace", f))
        .chain(
            data.event_formats
                .iter()
                .flat_map(|s| s.formats.iter().map(move |f| (s.name.as_str(), f))),
        )
        .filter_map(|(system, f)| Some((system, std::str::from_utf8(f).ok()?)))
        .collect();
    let (systems, formats): (Vec<&str>, Vec<EventFormat<'_>>) = texts
        .iter()
        .filter_map(|(system, t)| Some((*system, EventFormat::parse(t).ok()?)))
        .unzip();
    let context = Shared {
        formats: &formats,
        kallsyms: LazyKallsyms::new(&data.kallsyms),
        printk: PrintkFormats::parse(&String::from_utf8_lossy(&data.printk_formats)),
        raw: args.raw,
    };
    let cmdlines = Cmdlines::parse(&String::from_utf8_lossy(&data.cmdlines));
    let selection = Selection::parse(&args.filters, &formats, &systems)?;
    let renderer = Renderer::new(&formats);
    let mut merge = Merge::new(&data, &layout, &args.cpus, Some(&file));
    let mut comms = Comms::new(&cmdlines);
    if args.stat {
        stat(file.bytes(), &data, &mut merge, &renderer, &mut out)?;
    } else if args.json {
        json(
            &mut merge, &renderer, &selection, &context, &mut comms, &mut out,
        )?;
    } else {
        writeln!(out, "cpus={}", data.cpus)?;
        let prefixes = prefixes(&data);
        text(
            &mut merge, &renderer, &selection, &context, &mut comms, &prefixes, &mut out,
        )?;
    }
    for (buffer, cpu, err) in merge.errors() {
        eprintln!("kscope: a sub-buffer of CPU {cpu} in buffer {buffer:?} is damaged: {err}");
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// What formatting a record needs, shared by the formatting threads.
struct Shared<'a> {
    formats: &'a [EventFormat<'a>],
    kallsyms: LazyKallsyms<'a>,
    printk: PrintkFormats,
    raw: bool,
}

impl Shared<'_> {
    fn env(&self) -> Env<'_> {
        Env {
            symbols: &self.kallsyms,
            hz: 250,
            types: None,
            variables: &[],
            strings: Some(&self.printk),
            dialect: kscope_traceevent::printfmt::Dialect::Libtraceevent,
        }
    }
}

/// The file's kallsyms, parsed the first time a symbol is needed (a few
/// events print symbols; parsing megabytes of text for the others would
/// be most of a small report's time).
struct LazyKallsyms<'a> {
    text: &'a [u8],
    parsed: std::sync::OnceLock<Kallsyms>,
}

impl<'a> LazyKallsyms<'a> {
    fn new(text: &'a [u8]) -> LazyKallsyms<'a> {
        LazyKallsyms {
            text,
            parsed: std::sync::OnceLock::new(),
        }
    }
}

impl kscope_traceevent::printfmt::SymbolResolver for LazyKallsyms<'_> {
    fn symbol(&self, address: u64) -> Option<kscope_traceevent::printfmt::Symbol<'_>> {
        self.parsed
            .get_or_init(|| Kallsyms::parse(&String::from_utf8_lossy(self.text)))
            .symbol(address)
    }
}

/// The pid of a record (`common_pid`).
fn pid_of(record: &[u8]) -> i32 {
    record
        .get(4..8)
        .map_or(0, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// `--json`: one object per record, formatted as they come.
fn json(
    merge: &mut Merge<'_>,
    renderer: &Renderer<'_>,
    selection: &Selection<'_>,
    context: &Shared<'_>,
    comms: &mut Comms<'_>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let env = context.env();
    let mut text = String::new();
    while let Some(event) = merge.next() {
        let Some(format) = renderer.event_of(event.data) else {
            continue;
        };
        if !selection.accepts(format, event.data, comms) {
            continue;
        }
        let pid = pid_of(event.data);
        let comm = comms.comm(pid).to_string();
        trace_plugins::learn(format, event.data, comms);
        text.clear();
        render_text(context.raw, format, event.data, &env, renderer, &mut text);
        let object = serde_json::json!({
            "buffer": merge.buffer_name(event.buffer),
            "cpu": event.cpu,
            "ts": event.ts,
            "comm": comm,
            "pid": pid,
            "event": format.name,
            "text": text,
            "lost_before": event.lost.map(|n| n.unwrap_or(0)),
        });
        writeln!(out, "{object}")?;
    }
    Ok(())
}

/// A record to format, with everything the order of records decides
/// (its task's name as known at that point) already settled.
struct Job<'a> {
    buffer: usize,
    lost: Option<Option<u64>>,
    cpu: u32,
    ts: u64,
    pid: i32,
    /// The task's name, copied: task names are at most 16 bytes.
    comm: ([u8; 24], u8),
    format: &'a EventFormat<'a>,
    data: &'a [u8],
}

/// How many records go to a formatting thread at a time.
const BATCH: usize = 8192;

/// The text report. The merge, the filters and the task names (which the
/// sched plugin learns in record order) are settled here, in order;
/// batches of records are formatted on other threads, each with its own
/// renderer, and written back in order.
fn text<'a>(
    merge: &mut Merge<'a>,
    renderer: &Renderer<'a>,
    selection: &Selection<'_>,
    context: &Shared<'a>,
    comms: &mut Comms<'_>,
    prefixes: &[String],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    use std::sync::mpsc;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4));
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (job_tx, job_rx) = mpsc::sync_channel::<(usize, Vec<Job<'a>>)>(threads * 2);
        let job_rx = std::sync::Arc::new(std::sync::Mutex::new(job_rx));
        let (done_tx, done_rx) = mpsc::channel::<(usize, String)>();
        for _ in 0..threads {
            let (job_rx, done_tx) = (job_rx.clone(), done_tx.clone());
            scope.spawn(move || {
                let renderer = Renderer::new(context.formats);
                let env = context.env();
                loop {
                    let next = job_rx.lock().ok().and_then(|rx| rx.recv().ok());
                    let Some((index, jobs)) = next else { break };
                    let mut text = String::with_capacity(jobs.len() * 128);
                    for job in &jobs {
                        format_job(job, prefixes, context.raw, &env, &renderer, &mut text);
                    }
                    if done_tx.send((index, text)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let mut pending = std::collections::BTreeMap::new();
        let mut next_out = 0;
        let write_ready = |pending: &mut std::collections::BTreeMap<usize, String>,
                           next_out: &mut usize,
                           out: &mut dyn Write|
         -> std::io::Result<()> {
            while let Some(text) = pending.remove(next_out) {
                out.write_all(text.as_bytes())?;
                *next_out += 1;
            }
            Ok(())
        };
        let mut batch = Vec::with_capacity(BATCH);
        let mut sent = 0;
        let mut finished = false;
        while !finished {
            match merge.next() {
                Some(event) => {
                    let Some(format) = renderer.event_of(event.data) else {
                        continue;
                    };
                    if !selection.accepts(format, event.data, comms) {
                        continue;
                    }
                    let pid = pid_of(event.data);
                    // trace-cmd prints the task before the event's text: a
                    // name learned from this record counts from the next.
                    let name = comms.comm(pid).as_bytes();
                    let mut comm = ([0u8; 24], name.len().min(24) as u8);
                    comm.0[..comm.1 as usize].copy_from_slice(&name[..comm.1 as usize]);
                    trace_plugins::learn(format, event.data, comms);
                    batch.push(Job {
                        buffer: event.buffer,
                        lost: event.lost,
                        cpu: event.cpu,
                        ts: event.ts,
                        pid,
                        comm,
                        format,
                        data: event.data,
                    });
                    if batch.len() < BATCH {
                        continue;
                    }
                }
                None => finished = true,
            }
            if !batch.is_empty() {
                let jobs = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if job_tx.send((sent, jobs)).is_err() {
                    break;
                }
                sent += 1;
            }
            while let Ok((index, text)) = done_rx.try_recv() {
                pending.insert(index, text);
            }
            write_ready(&mut pending, &mut next_out, out)?;
        }
        drop(job_tx);
        for (index, text) in done_rx {
            pending.insert(index, text);
            write_ready(&mut pending, &mut next_out, out)?;
        }
        write_ready(&mut pending, &mut next_out, out)?;
        Ok(())
    })
}

/// Appends one record's line (and a lost-events line before it).
fn format_job(
    job: &Job<'_>,
    prefixes: &[String],
    raw: bool,
    env: &Env<'_>,
    renderer: &Renderer<'_>,
    out: &mut String,
) {
    out.push_str(&prefixes[job.buffer]);
    if let Some(count) = job.lost {
        // trace-cmd puts the mark after the prefix, on its own line, and
        // the record's line then has no prefix.
        trace_cmd::lost_line(out, job.cpu, count);
        out.push('\n');
    }
    let comm = std::str::from_utf8(&job.comm.0[..job.comm.1 as usize]).unwrap_or("<...>");
    trace_cmd::report_columns(out, comm, job.pid, job.cpu, job.ts, job.format.name);
    render_text(raw, job.format, job.data, env, renderer, out);
    out.push('\n');
}

/// The event's text: its raw fields (`-R`), a plugin's text, or its print
/// fmt's; one trailing newline is dropped, as trace-cmd drops it.
fn render_text(
    raw: bool,
    format: &EventFormat<'_>,
    record: &[u8],
    env: &Env<'_>,
    renderer: &Renderer<'_>,
    out: &mut String,
) {
    if raw {
        raw_fields(format, record, out);
    } else if !trace_plugins::render(format, record, env, out) {
        renderer.render(record, env, out);
    }
    if out.ends_with('\n') {
        out.pop();
    }
}

/// The fields of a record as trace-cmd's `-R` prints them (libtraceevent's
/// rules): ` name=value` each; a field the print fmt prints alone (perhaps
/// cast) with that conversion, `0x` first when the format's text before
/// it ends so; else char arrays as text, other arrays as `ARRAY[..]` of
/// hex bytes, pointers as `0x%llx`, signed fields as `%d`/`%2d`/`%1d`/
/// `%lld` by size (a 4-byte `long` as `0x%x`), unsigned ones as `%llu`
/// (a `long` as `0x%llx`).
fn raw_fields(format: &EventFormat<'_>, record: &[u8], out: &mut String) {
    use kscope_traceevent::printfmt::FieldValue;
    use std::fmt::Write as _;
    let specs = raw_specs(format);
    for (name, value) in kscope_traceevent::printfmt::field_values(format, record) {
        let Some(field) = format.field(name) else {
            continue;
        };
        let _ = write!(out, " {name}=");
        let bits = match &value {
            FieldValue::Signed(n) => Some(*n as u64),
            FieldValue::Unsigned(n) => Some(*n),
            _ => None,
        };
        if field.array.is_none()
            && let Some(bits) = bits
            && let Some((_, spec, has_0x)) = specs.iter().find(|(n, _, _)| n == name)
            && "diuxXoc".contains(spec.conversion)
        {
            if *has_0x {
                out.push_str("0x");
            }
            spec.integer(out, bits);
            continue;
        }
        let long = matches!(
            field.type_name.trim(),
            "long" | "unsigned long" | "long int" | "unsigned long int"
        );
        let _ = match value {
            FieldValue::Text(t) => write!(out, "{t}"),
            FieldValue::Bytes(b) => {
                // A char or u8 array whose bytes up to the first NUL are
                // printable is text, as libtraceevent decides.
                let stringy = field.type_name.contains("char") || field.type_name.contains("u8");
                let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                if stringy && b[..end].iter().all(|c| (0x20..0x7f).contains(c)) {
                    write!(out, "{}", String::from_utf8_lossy(&b[..end]))
                } else {
                    let items: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
                    write!(out, "ARRAY[{}]", items.join(", "))
                }
            }
            FieldValue::Numbers(n) => {
                // Every byte of the array, as libtraceevent dumps it.
                let raw = record
                    .get(field.offset as usize..(field.offset + field.size) as usize)
                    .filter(|_| field.location == kscope_traceevent::Location::Inline);
                let items: Vec<String> = match raw {
                    Some(bytes) => bytes.iter().map(|x| format!("{x:02x}")).collect(),
                    None => n.iter().map(|x| format!("{x:x}")).collect(),
                };
                write!(out, "ARRAY[{}]", items.join(", "))
            }
            _ if field.type_name.contains('*') => write!(out, "0x{:x}", bits.unwrap_or(0)),
            FieldValue::Signed(n) => match field.size {
                4 if long => write!(out, "0x{:x}", n as i32),
                4 => write!(out, "{}", n as i32),
                2 => write!(out, "{:2}", n as i16),
                1 => write!(out, "{}", n as i8),
                _ => write!(out, "{n}"),
            },
            FieldValue::Unsigned(n) if long => write!(out, "0x{n:x}"),
            FieldValue::Unsigned(n) => write!(out, "{n}"),
            FieldValue::Unreadable => write!(out, "?"),
        };
    }
}

/// The fields the print fmt of `format` prints alone (`REC->f`, perhaps
/// cast): each with its conversion and whether the text before it ends in
/// `0x`. Cached per thread and event.
fn raw_specs(format: &EventFormat<'_>) -> std::rc::Rc<RawSpecs> {
    use kscope_traceevent::printfmt::{Expr, Piece, PrintFmt, pieces};
    thread_local! {
        static CACHE: std::cell::RefCell<std::collections::HashMap<u32, std::rc::Rc<RawSpecs>>> =
            Default::default();
    }
    CACHE.with(|cache| {
        cache
            .borrow_mut()
            .entry(format.id)
            .or_insert_with(|| {
                let mut specs = Vec::new();
                if let Ok(fmt) = PrintFmt::parse(format.print_fmt) {
                    let mut args = fmt.args.iter();
                    let mut has_0x = false;
                    for piece in pieces(&fmt.format) {
                        match piece {
                            Piece::Text(text) => has_0x = text.len() > 1 && text.ends_with("0x"),
                            Piece::Spec(spec) => {
                                let Some(mut arg) = args.next() else { break };
                                while let Expr::Cast(_, inner) = arg {
                                    arg = inner;
                                }
                                if let Expr::Field(name) = arg {
                                    specs.push((name.to_string(), spec, has_0x));
                                }
                                has_0x = false;
                            }
                        }
                    }
                }
                std::rc::Rc::new(specs)
            })
            .clone()
    })
}

/// Per field printed alone by a print fmt: its name, conversion, and
/// whether `0x` precedes it.
type RawSpecs = Vec<(String, kscope_traceevent::printfmt::Spec, bool)>;

/// What `-F` selects.
struct Selection<'f> {
    /// (event, filter) pairs; empty selects everything.
    rules: Vec<(&'f EventFormat<'f>, Option<filter::Filter>)>,
}

impl<'f> Selection<'f> {
    fn parse(
        specs: &[String],
        formats: &'f [EventFormat<'f>],
        systems: &[&str],
    ) -> anyhow::Result<Selection<'f>> {
        let mut rules = Vec::new();
        for spec in specs {
            // trace-cmd's form: `SYSTEM/EVENT[,EVENT...][: FILTER]`; each
            // name is a glob on the system or the event.
            let (events, filter) = match spec.split_once(':') {
                Some((e, f)) => (e.trim(), Some(f.trim()).filter(|f| !f.is_empty())),
                None => (spec.trim(), None),
            };
            let glob =
                |text: &str| glob::Pattern::new(text).with_context(|| format!("bad glob {text:?}"));
            let mut matched: Vec<&EventFormat<'_>> = Vec::new();
            for item in events.split(',').map(str::trim) {
                let (system, event) = match item.split_once('/') {
                    Some((s, e)) => (Some(glob(s)?), glob(e)?),
                    None => (None, glob(item)?),
                };
                for (format, sys) in formats.iter().zip(systems) {
                    let hit = match &system {
                        Some(sg) => sg.matches(sys) && event.matches(format.name),
                        None => event.matches(format.name) || event.matches(sys),
                    };
                    if hit && !matched.iter().any(|m| m.id == format.id) {
                        matched.push(format);
                    }
                }
            }
            if matched.is_empty() {
                bail!("-F {spec:?}: no event of the file matches {events:?}");
            }
            for format in matched {
                let parsed = match filter {
                    Some(text) => Some(
                        filter::Filter::parse(text, format)
                            .with_context(|| format!("-F {spec:?}"))?,
                    ),
                    None => None,
                };
                rules.push((format, parsed));
            }
        }
        Ok(Selection { rules })
    }

    fn accepts(&self, format: &EventFormat<'_>, record: &[u8], comms: &Comms<'_>) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        self.rules.iter().any(|(f, filter)| {
            f.id == format.id
                && filter
                    .as_ref()
                    .is_none_or(|filter| filter.matches(format, record, comms))
        })
    }
}

/// One record of the merged trace.
struct Event<'a> {
    buffer: usize,
    cpu: u32,
    ts: u64,
    data: &'a [u8],
    /// The kernel dropped events on this CPU before this record (the
    /// sub-buffer it starts says so), and how many when it counted them.
    lost: Option<Option<u64>>,
}

/// One CPU of one buffer: its pages, decoded as they are reached.
struct Cursor<'a> {
    buffer: usize,
    cpu: u32,
    pages: std::slice::ChunksExact<'a, u8>,
    /// The CPU's data, and how much of its start was released.
    all: &'a [u8],
    released: usize,
    records: Option<kscope_traceevent::Records<'a>>,
    /// A lost-events mark for the next record.
    lost: Option<Option<u64>>,
    /// The next item, already decoded.
    next: Option<Event<'a>>,
}

/// The k-way merge of every CPU of every buffer, by (time, buffer, CPU).
struct Merge<'a> {
    /// The mapped file, whose pages behind the cursors are released.
    file: Option<&'a kscope_tracedat::TraceFile>,
    names: Vec<String>,
    cursors: Vec<Cursor<'a>>,
    heap: BinaryHeap<Reverse<(u64, usize, u32, usize)>>,
    layout: &'a PageLayout,
    errors: Vec<(String, u32, kscope_traceevent::PageError)>,
}

impl<'a> Merge<'a> {
    fn new(
        data: &'a kscope_tracedat::TraceData<'a>,
        layout: &'a PageLayout,
        only: &[u32],
        file: Option<&'a kscope_tracedat::TraceFile>,
    ) -> Merge<'a> {
        let mut merge = Merge {
            file,
            names: data.buffers.iter().map(|b| b.name.clone()).collect(),
            cursors: Vec::new(),
            heap: BinaryHeap::new(),
            layout,
            errors: Vec::new(),
        };
        for (index, buffer) in data.buffers.iter().enumerate() {
            let page_size = (buffer.page_size as usize).max(1);
            for cpu in &buffer.cpus {
                if !only.is_empty() && !only.contains(&cpu.cpu) {
                    continue;
                }
                merge.cursors.push(Cursor {
                    buffer: index,
                    cpu: cpu.cpu,
                    pages: cpu.data.chunks_exact(page_size),
                    all: &cpu.data,
                    released: 0,
                    records: None,
                    lost: None,
                    next: None,
                });
            }
        }
        for i in 0..merge.cursors.len() {
            merge.advance(i);
        }
        merge
    }

    fn buffer_name(&self, index: usize) -> &str {
        self.names.get(index).map_or("", String::as_str)
    }

    fn errors(&self) -> &[(String, u32, kscope_traceevent::PageError)] {
        &self.errors
    }

    /// Decodes cursor `i`'s next item and queues it.
    fn advance(&mut self, i: usize) {
        let layout = self.layout;
        let cursor = &mut self.cursors[i];
        loop {
            if let Some(records) = cursor.records.as_mut() {
                if let Some(record) = records.next() {
                    match record {
                        Ok(r) => {
                            cursor.next = Some(Event {
                                buffer: cursor.buffer,
                                cpu: cursor.cpu,
                                ts: r.timestamp,
                                data: r.data,
                                lost: cursor.lost.take(),
                            });
                            break;
                        }
                        Err(err) => {
                            self.errors
                                .push((self.names[cursor.buffer].clone(), cursor.cpu, err));
                            cursor.records = None;
                            continue;
                        }
                    }
                }
                cursor.records = None;
            }
            let Some(page) = cursor.pages.next() else {
                cursor.next = None;
                return;
            };
            // Keep the pages read in the last 8 MiB resident (records in
            // batches being formatted point into them); give back older
            // ones, so that memory does not grow with the file.
            const KEEP: usize = 8 << 20;
            if let Some(file) = self.file {
                let at = (page.as_ptr() as usize).saturating_sub(cursor.all.as_ptr() as usize);
                if at > cursor.released + 2 * KEEP {
                    let upto = (at - KEEP).min(cursor.all.len());
                    file.release(&cursor.all[cursor.released..upto]);
                    cursor.released = upto;
                }
            }
            match SubBuffer::parse(page, layout) {
                Ok(sub) => {
                    let lost = match sub.missed {
                        Missed::None => None,
                        Missed::Count(n) => Some(Some(n)),
                        Missed::Unknown => Some(None),
                    };
                    cursor.records = Some(sub.records());
                    if lost.is_some() {
                        cursor.lost = lost;
                    }
                }
                Err(err) => self
                    .errors
                    .push((self.names[cursor.buffer].clone(), cursor.cpu, err)),
            }
        }
        if let Some(event) = &cursor.next {
            // Ties go to the earlier buffer, then the lower CPU, as in
            // trace-cmd.
            self.heap
                .push(Reverse((event.ts, cursor.buffer, cursor.cpu, i)));
        }
    }
}

impl<'a> Iterator for Merge<'a> {
    type Item = Event<'a>;

    fn next(&mut self) -> Option<Event<'a>> {
        let Reverse((_, _, _, i)) = self.heap.pop()?;
        let event = self.cursors[i].next.take()?;
        self.advance(i);
        Some(event)
    }
}

/// `--stat`: what trace-cmd prints (the kernel's per-CPU statistics saved
/// in the file as CPUSTAT options, then where each CPU's data of the top
/// buffer sits in the file), then how many records of each event the
/// file holds (per buffer with `--cpu` applied) and the lost events it
/// marks.
fn stat(
    file: &[u8],
    data: &kscope_tracedat::TraceData<'_>,
    merge: &mut Merge<'_>,
    renderer: &Renderer<'_>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    writeln!(out, "cpus={}", data.cpus)?;
    out.write_all(
        b"\nKernel buffer statistics:\n  Note: \"entries\" are the entries left in the kernel ring buffer and are not\n        recorded in the trace data. They should all be zero.\n\n",
    )?;
    let stats = data.cpu_stats();
    if stats.is_empty() {
        out.write_all(b" No stats in this file\n")?;
    } else {
        for text in stats {
            writeln!(out, "{text}")?;
        }
        writeln!(out)?;
    }
    let top = data.buffers.iter().find(|b| b.name.is_empty());
    if top.is_none() && data.version == 6 {
        // A version 6 file always has the top buffer's CPU table; trace-cmd
        // shows its empty entries.
        for cpu in 0..data.cpus {
            writeln!(
                out,
                "CPU{cpu} data recorded at offset=0x0\n    0 bytes in size"
            )?;
        }
    }
    if let Some(top) = top {
        let base = file.as_ptr() as usize;
        for cpu in &top.cpus {
            // Borrowed data lies in the file, at its offset; data that was
            // decompressed has none.
            let at = cpu.data.as_ptr() as usize;
            let offset = if (base..base + file.len()).contains(&at) {
                at - base
            } else {
                0
            };
            writeln!(
                out,
                "CPU{} data recorded at offset=0x{offset:x}\n    {} bytes in size",
                cpu.cpu,
                cpu.data.len()
            )?;
        }
    }
    let mut counts: std::collections::BTreeMap<&str, u64> = Default::default();
    let (mut lost, mut unknown_lost) = (0u64, 0u64);
    for event in merge {
        let name = renderer
            .event_of(event.data)
            .map_or("(unknown event)", |f| f.name);
        *counts.entry(name).or_default() += 1;
        match event.lost {
            Some(Some(n)) => lost += n,
            Some(None) => unknown_lost += 1,
            None => {}
        }
    }
    writeln!(out, "\nEvents in the file:")?;
    for (name, n) in &counts {
        writeln!(out, "  {name:<32} {n:>12}")?;
    }
    writeln!(
        out,
        "  {:<32} {:>12}",
        "total",
        counts.values().sum::<u64>()
    )?;
    writeln!(
        out,
        "Events the kernel dropped: {lost} counted, in {unknown_lost} more places uncounted"
    )?;
    Ok(())
}

mod filter {
    //! The event filters of `-F`: comparisons of a record's fields with
    //! numbers or strings, joined by `&&` and `||`, with `!` and
    //! parentheses — the part of the kernel's (and trace-cmd's) filter
    //! language that reports use.

    use anyhow::bail;
    use kscope_traceevent::EventFormat;

    use super::Comms;
    use kscope_traceevent::printfmt::{FieldValue, field_values};

    /// How deeply a filter may nest: each parenthesis and `!`, and each
    /// `&&` or `||` of a chain, is one level (parser, evaluation and drop
    /// all recurse).
    pub const MAX_DEPTH: usize = 128;

    /// A parsed filter.
    pub struct Filter(Node);

    enum Node {
        And(Box<Node>, Box<Node>),
        Or(Box<Node>, Box<Node>),
        Not(Box<Node>),
        Compare { field: String, op: Op, value: Value },
    }

    #[derive(Clone, Copy)]
    enum Op {
        Eq,
        Ne,
        Lt,
        Le,
        Gt,
        Ge,
        Glob,
        And,
    }

    enum Value {
        Number(i128),
        Text(String),
    }

    impl Filter {
        /// Parses `text` for `format`, whose fields it may name.
        pub fn parse(text: &str, format: &EventFormat<'_>) -> anyhow::Result<Filter> {
            let tokens = tokenize(text)?;
            let mut parser = Parser {
                tokens,
                at: 0,
                end: text.len(),
                depth: 0,
                format,
            };
            let node = parser.or()?;
            if let Some((_, token)) = parser.tokens.get(parser.at) {
                bail!("unexpected {token:?} in the filter");
            }
            Ok(Filter(node))
        }

        /// Whether `record` passes.
        pub fn matches(&self, format: &EventFormat<'_>, record: &[u8], comms: &Comms<'_>) -> bool {
            let mut values = field_values(format, record);
            let pid = record
                .get(4..8)
                .map_or(0, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            values.push(("common_pid", FieldValue::Signed(i64::from(pid))));
            values.push(("COMM", FieldValue::Text(comms.comm(pid).to_string())));
            eval(&self.0, &values)
        }
    }

    fn eval(node: &Node, values: &[(&str, FieldValue)]) -> bool {
        match node {
            Node::And(a, b) => eval(a, values) && eval(b, values),
            Node::Or(a, b) => eval(a, values) || eval(b, values),
            Node::Not(a) => !eval(a, values),
            Node::Compare { field, op, value } => {
                let Some((_, have)) = values.iter().find(|(n, _)| *n == field) else {
                    return false;
                };
                let number = match have {
                    FieldValue::Signed(n) => Some(i128::from(*n)),
                    FieldValue::Unsigned(n) => Some(i128::from(*n)),
                    _ => None,
                };
                match (number, have, value) {
                    (Some(n), _, Value::Number(v)) => match op {
                        Op::Eq => n == *v,
                        Op::Ne => n != *v,
                        Op::Lt => n < *v,
                        Op::Le => n <= *v,
                        Op::Gt => n > *v,
                        Op::Ge => n >= *v,
                        Op::And => n & *v != 0,
                        Op::Glob => false,
                    },
                    (_, FieldValue::Text(t), Value::Text(v)) => match op {
                        Op::Eq => t == v,
                        Op::Ne => t != v,
                        Op::Glob => glob::Pattern::new(v).is_ok_and(|p| p.matches(t)),
                        Op::Lt => t.as_str() < v.as_str(),
                        Op::Le => t.as_str() <= v.as_str(),
                        Op::Gt => t.as_str() > v.as_str(),
                        Op::Ge => t.as_str() >= v.as_str(),
                        Op::And => false,
                    },
                    _ => false,
                }
            }
        }
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Token {
        Word(String),
        Str(String),
        Op(&'static str),
    }

    /// The tokens of `text`, each with its byte offset.
    fn tokenize(text: &str) -> anyhow::Result<Vec<(usize, Token)>> {
        const OPS: [&str; 13] = [
            "&&", "||", "==", "!=", "<=", ">=", "~", "<", ">", "!", "(", ")", "&",
        ];
        let mut tokens = Vec::new();
        let mut rest = text.trim_start();
        while !rest.is_empty() {
            let offset = text.len() - rest.len();
            if let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) {
                tokens.push((offset, Token::Op(op)));
                rest = &rest[op.len()..];
            } else if let Some(body) = rest.strip_prefix('"') {
                let Some(end) = body.find('"') else {
                    bail!("a string in the filter has no closing quote");
                };
                tokens.push((offset, Token::Str(body[..end].to_string())));
                rest = &body[end + 1..];
            } else {
                let end = rest
                    .find(|c: char| c.is_whitespace() || "&|=!<>~()\"".contains(c))
                    .unwrap_or(rest.len());
                if end == 0 {
                    bail!("unexpected {:?} in the filter", &rest[..1]);
                }
                tokens.push((offset, Token::Word(rest[..end].to_string())));
                rest = &rest[end..];
            }
            rest = rest.trim_start();
        }
        Ok(tokens)
    }

    struct Parser<'t, 'f> {
        tokens: Vec<(usize, Token)>,
        at: usize,
        /// The text's length: the offset of its end.
        end: usize,
        /// Levels of nesting entered and not yet left (see [`MAX_DEPTH`]).
        depth: usize,
        format: &'t EventFormat<'f>,
    }

    impl Parser<'_, '_> {
        fn peek(&self) -> Option<&Token> {
            self.tokens.get(self.at).map(|(_, token)| token)
        }

        /// One level deeper, or the error when that passes [`MAX_DEPTH`];
        /// the caller leaves it by restoring `depth`.
        fn enter(&mut self) -> anyhow::Result<()> {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                let offset = self.tokens.get(self.at).map_or(self.end, |(o, _)| *o);
                bail!("filter, byte {offset}: expression nested deeper than {MAX_DEPTH}");
            }
            Ok(())
        }

        fn eat(&mut self, op: &str) -> bool {
            if self.peek()
                == Some(&Token::Op(match op {
                    "&&" => "&&",
                    "||" => "||",
                    "!" => "!",
                    "(" => "(",
                    _ => ")",
                }))
            {
                self.at += 1;
                return true;
            }
            false
        }

        fn or(&mut self) -> anyhow::Result<Node> {
            let depth = self.depth;
            let mut node = self.and()?;
            while self.eat("||") {
                // Each operator of a chain puts the left side one level down.
                self.enter()?;
                node = Node::Or(Box::new(node), Box::new(self.and()?));
            }
            self.depth = depth;
            Ok(node)
        }

        fn and(&mut self) -> anyhow::Result<Node> {
            let depth = self.depth;
            let mut node = self.unary()?;
            while self.eat("&&") {
                self.enter()?;
                node = Node::And(Box::new(node), Box::new(self.unary()?));
            }
            self.depth = depth;
            Ok(node)
        }

        fn unary(&mut self) -> anyhow::Result<Node> {
            let depth = self.depth;
            if self.eat("!") {
                self.enter()?;
                let node = Node::Not(Box::new(self.unary()?));
                self.depth = depth;
                return Ok(node);
            }
            if self.eat("(") {
                self.enter()?;
                let node = self.or()?;
                if !self.eat(")") {
                    bail!("a '(' in the filter is not closed");
                }
                self.depth = depth;
                return Ok(node);
            }
            let Some(Token::Word(field)) = self.peek().cloned() else {
                bail!("expected a field name in the filter");
            };
            self.at += 1;
            if self.format.field(&field).is_none() && field != "COMM" {
                let names: Vec<&str> = self.format.fields.iter().map(|f| f.name).collect();
                bail!(
                    "{} has no field {field:?} (it has {})",
                    self.format.name,
                    names.join(", ")
                );
            }
            let op = match self.peek() {
                Some(Token::Op("==")) => Op::Eq,
                Some(Token::Op("!=")) => Op::Ne,
                Some(Token::Op("<")) => Op::Lt,
                Some(Token::Op("<=")) => Op::Le,
                Some(Token::Op(">")) => Op::Gt,
                Some(Token::Op(">=")) => Op::Ge,
                Some(Token::Op("~")) => Op::Glob,
                Some(Token::Op("&")) => Op::And,
                _ => bail!("expected a comparison after {field:?} in the filter"),
            };
            self.at += 1;
            let value = match self.peek().cloned() {
                Some(Token::Str(s)) => Value::Text(s),
                Some(Token::Word(w)) => match parse_number(&w) {
                    Some(n) => Value::Number(n),
                    None => Value::Text(w),
                },
                _ => bail!("expected a value after the comparison on {field:?}"),
            };
            self.at += 1;
            Ok(Node::Compare { field, op, value })
        }
    }

    fn parse_number(word: &str) -> Option<i128> {
        let (negative, digits) = match word.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, word),
        };
        let value = match digits
            .strip_prefix("0x")
            .or_else(|| digits.strip_prefix("0X"))
        {
            Some(hex) => i128::from_str_radix(hex, 16).ok()?,
            None => digits.parse::<i128>().ok()?,
        };
        Some(if negative { -value } else { value })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn deep_nesting_is_an_error_never_a_stack_overflow() {
            let text = [
                "name: demo\nID: 7\nformat:",
                "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;",
                "\tfield:int prio;\toffset:8;\tsize:4;\tsigned:1;",
                "\nprint fmt: \"prio=%d\", REC->prio\n",
            ]
            .join("\n");
            let format = EventFormat::parse(&text).unwrap();
            let deep = 100_000;
            let opened = "(".repeat(deep);
            let negated = format!("{}prio == 1", "!".repeat(deep));
            let joined = format!("prio == 1{}", " && prio == 1".repeat(deep));
            let either = format!("prio == 1{}", " || prio == 1".repeat(deep));
            for text in [&opened, &negated, &joined, &either] {
                let err = Filter::parse(text, &format).err().expect("an error");
                let message = err.to_string();
                let offset: usize = message
                    .strip_prefix("filter, byte ")
                    .and_then(|rest| rest.split(':').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{message}"));
                assert_eq!(
                    message,
                    format!("filter, byte {offset}: expression nested deeper than {MAX_DEPTH}")
                );
                assert!(offset > 0 && offset < text.len(), "{offset}");
            }
            let fits = format!(
                "{}prio == 1{}",
                "(".repeat(MAX_DEPTH - 1),
                ")".repeat(MAX_DEPTH - 1)
            );
            assert!(Filter::parse(&fits, &format).is_ok());
        }
    }
}
