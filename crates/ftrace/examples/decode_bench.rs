//! How fast kscope turns raw ftrace sub-buffers into records and text:
//! the benchmark that `bench/decode.sh` runs.
//!
//! ```text
//! decode_bench record CORPUS [--events N] [--buffer-kb KB]
//! decode_bench run CORPUS [--rounds R]
//! ```
//!
//! `record` (root) enables a mix of high-rate events (raw syscalls, the
//! getpid/read/openat syscall events, scheduler, kmem and timer events) in
//! a private tracefs instance with a large per-CPU buffer, runs a workload
//! (threads calling getpid, reading /dev/zero, opening /dev/null, and two
//! threads waking each other), and drains sub-buffers into memory until it
//! holds at least N records (default 1,000,000). Then it restores tracefs,
//! keeps the sub-buffers that start up to the N-th record in time, and
//! writes them to CORPUS. It reports what the kernel lost. Its own events
//! are filtered out: its reads of `trace_pipe_raw` are syscalls too.
//!
//! `run` needs no tracefs: it loads CORPUS and, R times (default 5),
//! measures (a) decoding alone, `SubBuffer::parse` and its records over
//! every sub-buffer, and (b) decoding, merging in time order across CPUs
//! (`merge`) and formatting every record's text with its print fmt
//! (`Renderer::render`, with kallsyms, BTF and the kernel variables that
//! print fmts read). It prints events per second of every round and the
//! median and minimum of each, with the machine and kscope's commit.
//!
//! # The corpus file (version 1)
//!
//! All integers are little-endian; a string is a `u32` byte length and
//! that many bytes of UTF-8.
//!
//! | what | encoding |
//! |---|---|
//! | magic | the 8 bytes `KSCORPUS` |
//! | version | `u32`, 1 |
//! | page layout | `u32` commit size, `u32` data offset (from `events/header_page`) |
//! | boot id | string, `/proc/sys/kernel/random/boot_id` when recorded |
//! | kernel release | string, `/proc/sys/kernel/osrelease` |
//! | kernel variables | `u32` count, then each: string name, `u64` value |
//! | event formats | `u32` count, then each: string system, string format-file text |
//! | sub-buffers | `u64` count, then each: `u32` cpu, `u32` length, the bytes |
//!
//! The sub-buffers of one CPU are in the order they were read, as
//! `trace_pipe_raw` handed them out. Kallsyms and BTF are not in the
//! corpus (megabytes): `run` reads the running kernel's, and warns when
//! the corpus comes from another boot, whose addresses they do not
//! resolve.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kscope_ftrace::{EventSelection, Item, KernelContext, RawPage, Session, SessionConfig, merge};
use kscope_traceevent::printfmt::Env;
use kscope_traceevent::{EventFormat, Missed, PageLayout, Renderer, SubBuffer};
use kscope_tracefs::StateGuard;

/// The events `record` enables, those this kernel has.
const EVENTS: &[(&str, &str)] = &[
    ("raw_syscalls", "sys_enter"),
    ("raw_syscalls", "sys_exit"),
    ("syscalls", "sys_enter_getpid"),
    ("syscalls", "sys_exit_getpid"),
    ("syscalls", "sys_enter_read"),
    ("syscalls", "sys_exit_read"),
    ("syscalls", "sys_enter_openat"),
    ("syscalls", "sys_exit_openat"),
    ("sched", "sched_switch"),
    ("sched", "sched_wakeup"),
    ("sched", "sched_waking"),
    ("kmem", "kmalloc"),
    ("kmem", "kfree"),
    ("kmem", "kmem_cache_alloc"),
    ("kmem", "kmem_cache_free"),
    ("kmem", "mm_page_alloc"),
    ("kmem", "mm_page_free"),
    ("timer", "hrtimer_start"),
    ("timer", "hrtimer_cancel"),
    ("timer", "hrtimer_expire_entry"),
    ("timer", "hrtimer_expire_exit"),
    ("timer", "timer_start"),
    ("timer", "timer_expire_entry"),
];

/// CONFIG_HZ for the print fmts' `jiffies_to_msecs`; none of the events
/// above calls it, so the value changes neither text nor speed.
const HZ: u64 = 250;

/// Give up recording when the events do not come in this time.
const RECORD_LIMIT: Duration = Duration::from_secs(120);

const MAGIC: &[u8; 8] = b"KSCORPUS";
const VERSION: u32 = 1;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = parse_args(&args).and_then(|command| match command {
        Command::Record {
            corpus,
            events,
            buffer_kb,
        } => record(&corpus, events, buffer_kb),
        Command::Run { corpus, rounds } => run(&corpus, rounds),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("decode_bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Record {
        corpus: PathBuf,
        events: u64,
        buffer_kb: u64,
    },
    Run {
        corpus: PathBuf,
        rounds: usize,
    },
}

const USAGE: &str = "usage: decode_bench record CORPUS [--events N] [--buffer-kb KB]\n       decode_bench run CORPUS [--rounds R]";

fn parse_args(args: &[String]) -> anyhow::Result<Command> {
    let (Some(verb), Some(corpus)) = (args.first(), args.get(1)) else {
        bail!("a command and a corpus path are needed\n{USAGE}");
    };
    let mut events = 1_000_000;
    let mut buffer_kb = 32 * 1024;
    let mut rounds = 5;
    let mut rest = args[2..].iter();
    while let Some(flag) = rest.next() {
        let value = rest
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = |what: &str| {
            value
                .parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .with_context(|| format!("{flag} {value:?}: expected a positive number of {what}"))
        };
        match (verb.as_str(), flag.as_str()) {
            ("record", "--events") => events = number("events")?,
            ("record", "--buffer-kb") => buffer_kb = number("KiB")?,
            ("run", "--rounds") => {
                rounds = usize::try_from(number("rounds")?).context("--rounds: too many")?;
            }
            _ => bail!("{verb}: unknown option {flag:?}\n{USAGE}"),
        }
    }
    let corpus = PathBuf::from(corpus);
    match verb.as_str() {
        "record" => Ok(Command::Record {
            corpus,
            events,
            buffer_kb,
        }),
        "run" => Ok(Command::Run { corpus, rounds }),
        _ => bail!("unknown command {verb:?}\n{USAGE}"),
    }
}

/// Raw sub-buffers and what is needed to decode and format them.
#[derive(Debug, PartialEq, Eq)]
struct Corpus {
    layout: PageLayout,
    boot_id: String,
    release: String,
    variables: Vec<(String, u64)>,
    /// (system, format-file text) of every enabled event.
    formats: Vec<(String, String)>,
    pages: Vec<RawPage>,
}

/// A corpus file that does not have the shape the module doc gives.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("corpus offset {offset}: expected {expected}")]
struct CorpusError {
    offset: usize,
    expected: &'static str,
}

/// Reads a corpus file front to back, borrowing it.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, expected: &'static str) -> Result<&'a [u8], CorpusError> {
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(CorpusError {
                offset: self.at,
                expected,
            })?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u32(&mut self, expected: &'static str) -> Result<u32, CorpusError> {
        let mut word = [0u8; 4];
        word.copy_from_slice(self.take(4, expected)?);
        Ok(u32::from_le_bytes(word))
    }

    fn u64(&mut self, expected: &'static str) -> Result<u64, CorpusError> {
        let mut word = [0u8; 8];
        word.copy_from_slice(self.take(8, expected)?);
        Ok(u64::from_le_bytes(word))
    }

    /// A length-prefixed byte string; the length is checked against what
    /// is left before anything is taken.
    fn bytes(&mut self, expected: &'static str) -> Result<&'a [u8], CorpusError> {
        let start = self.at;
        let len = self.u32(expected)? as usize;
        self.take(len, expected).map_err(|_| CorpusError {
            offset: start,
            expected,
        })
    }

    fn string(&mut self, expected: &'static str) -> Result<String, CorpusError> {
        let start = self.at;
        let bytes = self.bytes(expected)?;
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| CorpusError {
                offset: start,
                expected: "UTF-8 text",
            })
    }

    /// A count of items at least `min_size` bytes each, refused when the
    /// rest of the file cannot hold that many (so a hostile count cannot
    /// make the reader reserve memory the file does not back).
    fn count(&mut self, wide: bool, min_size: usize) -> Result<usize, CorpusError> {
        let start = self.at;
        let count = if wide {
            self.u64("a u64 count")?
        } else {
            u64::from(self.u32("a u32 count")?)
        };
        let left = (self.bytes.len() - self.at) as u64;
        if count.saturating_mul(min_size as u64) > left {
            return Err(CorpusError {
                offset: start,
                expected: "a count of items that the rest of the file can hold",
            });
        }
        Ok(count as usize)
    }
}

impl Corpus {
    fn parse(bytes: &[u8]) -> Result<Corpus, CorpusError> {
        let mut reader = Reader { bytes, at: 0 };
        if reader.take(8, "the magic KSCORPUS")? != MAGIC {
            return Err(CorpusError {
                offset: 0,
                expected: "the magic KSCORPUS",
            });
        }
        if reader.u32("the version")? != VERSION {
            return Err(CorpusError {
                offset: 8,
                expected: "version 1",
            });
        }
        let layout = PageLayout {
            commit_size: reader.u32("the commit size")? as usize,
            data_offset: reader.u32("the data offset")? as usize,
        };
        let boot_id = reader.string("the boot id")?;
        let release = reader.string("the kernel release")?;
        let count = reader.count(false, 12)?;
        let mut variables = Vec::with_capacity(count);
        for _ in 0..count {
            let name = reader.string("a variable name")?;
            variables.push((name, reader.u64("a variable value")?));
        }
        let count = reader.count(false, 8)?;
        let mut formats = Vec::with_capacity(count);
        for _ in 0..count {
            let system = reader.string("an event system")?;
            formats.push((system, reader.string("a format file")?));
        }
        let count = reader.count(true, 8)?;
        let mut pages = Vec::with_capacity(count);
        for _ in 0..count {
            let cpu = reader.u32("a sub-buffer's cpu")?;
            let bytes = reader.bytes("a sub-buffer")?.to_vec();
            pages.push(RawPage { cpu, bytes });
        }
        if reader.at != bytes.len() {
            return Err(CorpusError {
                offset: reader.at,
                expected: "the end of the file after the last sub-buffer",
            });
        }
        Ok(Corpus {
            layout,
            boot_id,
            release,
            variables,
            formats,
            pages,
        })
    }

    fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        fn len(n: usize) -> io::Result<u32> {
            u32::try_from(n).map_err(|_| io::Error::other("an item of 4 GiB or more"))
        }
        fn bytes(out: &mut impl Write, b: &[u8]) -> io::Result<()> {
            out.write_all(&len(b.len())?.to_le_bytes())?;
            out.write_all(b)
        }
        out.write_all(MAGIC)?;
        out.write_all(&VERSION.to_le_bytes())?;
        out.write_all(&len(self.layout.commit_size)?.to_le_bytes())?;
        out.write_all(&len(self.layout.data_offset)?.to_le_bytes())?;
        bytes(out, self.boot_id.as_bytes())?;
        bytes(out, self.release.as_bytes())?;
        out.write_all(&len(self.variables.len())?.to_le_bytes())?;
        for (name, value) in &self.variables {
            bytes(out, name.as_bytes())?;
            out.write_all(&value.to_le_bytes())?;
        }
        out.write_all(&len(self.formats.len())?.to_le_bytes())?;
        for (system, text) in &self.formats {
            bytes(out, system.as_bytes())?;
            bytes(out, text.as_bytes())?;
        }
        out.write_all(&(self.pages.len() as u64).to_le_bytes())?;
        for page in &self.pages {
            out.write_all(&page.cpu.to_le_bytes())?;
            bytes(out, &page.bytes)?;
        }
        Ok(())
    }

    fn bytes(&self) -> usize {
        self.pages.iter().map(|p| p.bytes.len()).sum()
    }
}

/// What decoding a set of sub-buffers found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    records: u64,
    /// Events the kernel said it dropped.
    lost: u64,
    /// Sub-buffers after which the kernel dropped an unknown number.
    lost_unknown: u64,
    /// Sub-buffers that did not decode whole.
    damaged: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.records += other.records;
        self.lost += other.lost;
        self.lost_unknown += other.lost_unknown;
        self.damaged += other.damaged;
    }
}

/// Decodes every sub-buffer and counts. Nothing here allocates: the
/// decoder yields borrowed records.
fn decode(pages: &[RawPage], layout: &PageLayout) -> Counts {
    let mut counts = Counts::default();
    for page in pages {
        let Ok(sub) = SubBuffer::parse(&page.bytes, layout) else {
            counts.damaged += 1;
            continue;
        };
        match sub.missed {
            Missed::None => {}
            Missed::Count(n) => counts.lost += n,
            Missed::Unknown => counts.lost_unknown += 1,
        }
        for record in sub.records() {
            if record.is_ok() {
                counts.records += 1;
            } else {
                counts.damaged += 1;
            }
        }
    }
    counts
}

/// Threads that make the recorded events fire until dropped.
struct Workload {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Workload {
    fn start() -> anyhow::Result<Workload> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut workload = Workload {
            stop: Arc::clone(&stop),
            threads: Vec::new(),
        };
        let mut spawn = |name: &str, body: Box<dyn FnOnce() + Send>| -> anyhow::Result<()> {
            let handle = std::thread::Builder::new()
                .name(name.to_string())
                .spawn(body)
                .with_context(|| format!("cannot start the {name} thread"))?;
            workload.threads.push(handle);
            Ok(())
        };
        let running = |stop: &Arc<AtomicBool>| {
            let stop = Arc::clone(stop);
            move || !stop.load(Ordering::Relaxed)
        };
        let go = running(&stop);
        spawn(
            "getpid",
            Box::new(move || {
                while go() {
                    std::hint::black_box(std::process::id());
                }
            }),
        )?;
        let mut zero = File::open("/dev/zero").context("cannot open /dev/zero")?;
        let go = running(&stop);
        spawn(
            "read",
            Box::new(move || {
                let mut buf = [0u8; 64];
                while go() && zero.read(&mut buf).is_ok() {}
            }),
        )?;
        let go = running(&stop);
        spawn(
            "openat",
            Box::new(move || while go() && File::open("/dev/null").is_ok() {}),
        )?;
        // Two threads that wake each other: sched_waking/wakeup/switch, and
        // now and then a short sleep for the hrtimer events.
        let (ping, pinged) = std::sync::mpsc::sync_channel::<()>(0);
        let (pong, ponged) = std::sync::mpsc::sync_channel::<()>(0);
        let go = running(&stop);
        spawn(
            "ping",
            Box::new(move || {
                let mut round = 0u32;
                while go() && ping.send(()).is_ok() && ponged.recv().is_ok() {
                    round = round.wrapping_add(1);
                    if round.is_multiple_of(256) {
                        std::thread::sleep(Duration::from_micros(20));
                    }
                }
            }),
        )?;
        spawn(
            "pong",
            Box::new(move || while pinged.recv().is_ok() && pong.send(()).is_ok() {}),
        )?;
        Ok(workload)
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            // A workload thread that panicked has nothing left to stop.
            let _ = thread.join();
        }
    }
}

fn record(path: &Path, wanted: u64, buffer_kb: u64) -> anyhow::Result<()> {
    kscope_tracefs::restore_on_signals().context("cannot catch signals to restore tracefs")?;
    // The first Ctrl-C only stops the loop below, which restores with the
    // per-CPU files closed; a second one restores at once.
    kscope_tracefs::handle_interrupt_gracefully();
    let guard = StateGuard::new();
    let fs = guard
        .tracefs()
        .context("cannot reach tracefs (record needs root)")?;
    let available = fs.events()?;
    let (present, absent): (Vec<_>, Vec<_>) = EVENTS.iter().partition(|(system, event)| {
        available
            .iter()
            .any(|(s, e)| s.as_str() == *system && e.as_str() == *event)
    });
    for (system, event) in &absent {
        eprintln!("decode_bench: this kernel has no {system}:{event}; recording without it");
    }
    if present.is_empty() {
        bail!("this kernel has none of the benchmark's events");
    }
    let mut formats = Vec::new();
    for (system, event) in &present {
        formats.push((system.to_string(), fs.event_format(system, event)?));
    }
    let mut kernel = KernelContext::load(HZ);
    // The kmem page events print struct page addresses.
    kernel.resolve(&fs, &["vmemmap_base"]);
    // The reads of trace_pipe_raw below are syscalls too: traced, each
    // would leave a sub-buffer with its own two events, and the drain
    // would never find the buffers empty.
    let not_the_reader = format!("common_pid != {}", std::process::id());
    let config = SessionConfig {
        events: present
            .iter()
            .map(|(system, event)| EventSelection {
                filter: Some(not_the_reader.clone()),
                ..EventSelection::new(system, event)
            })
            .collect(),
        buffer_kb: Some(buffer_kb),
        wake_percent: 0,
        ..SessionConfig::default()
    };

    let started = Instant::now();
    let mut session = Session::start(&guard, &fs, &config)?;
    let layout = *session.layout();
    let workload = Workload::start()?;
    let mut pages = Vec::new();
    let mut counts = Counts::default();
    while counts.records < wanted
        && !kscope_tracefs::interrupted()
        && started.elapsed() < RECORD_LIMIT
    {
        session.wait(Duration::from_millis(100))?;
        let batch = session.drain()?;
        counts.add(decode(&batch, &layout));
        pages.extend(batch);
    }
    drop(workload);
    session.stop(&guard)?;
    pages.extend(session.drain_all()?);
    let elapsed = started.elapsed();
    // The per-CPU files must be closed before the instance can go.
    drop(session);
    guard.restore()?;
    if kscope_tracefs::interrupted() {
        bail!("interrupted: tracefs is restored and no corpus was written");
    }
    if counts.records < wanted {
        bail!(
            "only {} of {wanted} events came in {} s; nothing written",
            counts.records,
            RECORD_LIMIT.as_secs()
        );
    }
    let drained = pages.len();
    let pages = trim(pages, &layout, wanted);
    let counts = decode(&pages, &layout);

    let corpus = Corpus {
        layout,
        boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
        release: read_trimmed("/proc/sys/kernel/osrelease"),
        variables: kernel.variables.clone(),
        formats,
        pages,
    };
    write_corpus(path, &corpus)?;
    println!(
        "recorded {} events in {} sub-buffers ({} bytes) into {}; {drained} sub-buffers drained in {:.1} s",
        counts.records,
        corpus.pages.len(),
        corpus.bytes(),
        path.display(),
        elapsed.as_secs_f64(),
    );
    println!(
        "lost in the corpus: {} events counted by the kernel, and {} sub-buffers after an uncounted loss; {} sub-buffers damaged",
        counts.lost, counts.lost_unknown, counts.damaged
    );
    Ok(())
}

/// Keeps the sub-buffers that start no later than the `wanted`-th record
/// in time order, so that the corpus holds at least `wanted` records and
/// every CPU's sub-buffers cover the same span. (A drain reads all that
/// is ready, so at a high event rate the recording overshoots.)
fn trim(pages: Vec<RawPage>, layout: &PageLayout, wanted: u64) -> Vec<RawPage> {
    let merged = merge(&pages, layout);
    let cut = usize::try_from(wanted.saturating_sub(1))
        .ok()
        .and_then(|nth| {
            merged
                .items
                .iter()
                .filter_map(|item| match *item {
                    Item::Record { ts, .. } => Some(ts),
                    Item::Lost { .. } => None,
                })
                .nth(nth)
        });
    let Some(cut) = cut else {
        return pages;
    };
    pages
        .into_iter()
        .filter(|page| {
            // A damaged sub-buffer stays, to be counted as such.
            SubBuffer::parse(&page.bytes, layout).map_or(true, |s| s.timestamp <= cut)
        })
        .collect()
}

/// Writes through a temporary file, so that an interrupted write leaves
/// no corpus that looks whole.
fn write_corpus(path: &Path, corpus: &Corpus) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let partial = path.with_extension("partial");
    let mut out = BufWriter::new(
        File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?,
    );
    corpus
        .write_to(&mut out)
        .and_then(|()| out.flush())
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()))
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_string())
        .unwrap_or_default()
}

/// What formatting a merged batch produced.
#[derive(Debug, Default, PartialEq, Eq)]
struct Formatted {
    records: u64,
    /// Records of no event in the corpus (not rendered).
    unknown: u64,
    /// Bytes of text, so the work has a result that is used.
    text_bytes: u64,
}

/// Formats every record of `merged` into `line`, one after another. The
/// String is cleared, never dropped, so once it has grown to the longest
/// text this loop allocates nothing per event; what the print fmt
/// evaluation does inside `Renderer::render` is the renderer's own cost.
fn format_all(
    pages: &[RawPage],
    items: &[Item],
    renderer: &Renderer<'_>,
    env: &Env<'_>,
    line: &mut String,
) -> Formatted {
    let mut formatted = Formatted::default();
    for item in items {
        let Item::Record {
            page, start, len, ..
        } = *item
        else {
            continue;
        };
        let Some(data) = pages
            .get(page)
            .and_then(|p| p.bytes.get(start..start + len))
        else {
            continue;
        };
        line.clear();
        formatted.records += 1;
        if renderer.render(data, env, line).is_none() {
            formatted.unknown += 1;
        }
        formatted.text_bytes += line.len() as u64;
    }
    formatted
}

/// One round's figures.
struct Round {
    decode: Duration,
    merge: Duration,
    total: Duration,
}

fn run(path: &Path, rounds: usize) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "cannot read {} (make one with `decode_bench record`)",
            path.display()
        )
    })?;
    let corpus = Corpus::parse(&bytes)
        .with_context(|| format!("{} is not a decode_bench corpus", path.display()))?;
    drop(bytes);
    let formats: Vec<EventFormat<'_>> = corpus
        .formats
        .iter()
        .map(|(system, text)| {
            EventFormat::parse(text)
                .with_context(|| format!("a format of system {system} in the corpus"))
        })
        .collect::<anyhow::Result<_>>()?;
    let renderer = Renderer::new(&formats);
    // Kallsyms and BTF come from the running kernel; the variables come
    // from the corpus, which was recorded with them.
    let mut kernel = KernelContext::load(HZ);
    kernel.variables = corpus.variables.clone();
    let btf_blob = kscope_ftrace::read_btf();
    let btf = kscope_btf::Btf::parse(&btf_blob).ok();
    let env = kernel.env(btf.as_ref());
    if corpus.boot_id != read_trimmed("/proc/sys/kernel/random/boot_id") {
        eprintln!(
            "decode_bench: the corpus comes from another boot ({}): kallsyms does not resolve its addresses, so the figures are not comparable",
            corpus.release
        );
    }

    print_machine();
    let counts = decode(&corpus.pages, &corpus.layout);
    println!(
        "corpus: {}: {} events in {} sub-buffers ({:.1} MB), kernel {}; lost {} (+{} sub-buffers with uncounted losses), {} damaged",
        path.display(),
        counts.records,
        corpus.pages.len(),
        corpus.bytes() as f64 / 1e6,
        corpus.release,
        counts.lost,
        counts.lost_unknown,
        counts.damaged
    );
    if counts.records == 0 {
        bail!("the corpus holds no records");
    }
    print_mix(&corpus, &renderer, &formats, counts.records);
    for (event, names) in renderer.unresolved(&env) {
        println!("note: {event} reads {names:?}, which this kernel context lacks: it renders raw");
    }

    let mut line = String::new();
    let mut figures = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        let started = Instant::now();
        let decoded = decode(&corpus.pages, &corpus.layout);
        let decode_time = started.elapsed();

        let started = Instant::now();
        let merged = merge(&corpus.pages, &corpus.layout);
        let merge_time = started.elapsed();
        let formatted = format_all(&corpus.pages, &merged.items, &renderer, &env, &mut line);
        drop(merged);
        let total = started.elapsed();

        if decoded.records != counts.records || formatted.records != counts.records {
            bail!(
                "round {round}: {} records decoded and {} formatted, {} expected",
                decoded.records,
                formatted.records,
                counts.records
            );
        }
        let figure = Round {
            decode: decode_time,
            merge: merge_time,
            total,
        };
        println!(
            "round {round}: decode {:.2} M events/s; decode+merge+format {:.3} M events/s ({:.0}% of it merging); {} MB of text, {} records of unknown events",
            rate(counts.records, figure.decode) / 1e6,
            rate(counts.records, figure.total) / 1e6,
            100.0 * figure.merge.as_secs_f64() / figure.total.as_secs_f64(),
            formatted.text_bytes / 1_000_000,
            formatted.unknown
        );
        figures.push(figure);
    }
    let summary = |name: &str, time: fn(&Round) -> Duration| {
        let mut rates: Vec<f64> = figures
            .iter()
            .map(|f| rate(counts.records, time(f)))
            .collect();
        rates.sort_by(f64::total_cmp);
        println!(
            "{name}: median {:.3} M events/s, min {:.3}, max {:.3} over {} rounds",
            median(&rates) / 1e6,
            rates.first().copied().unwrap_or(0.0) / 1e6,
            rates.last().copied().unwrap_or(0.0) / 1e6,
            rates.len()
        );
    };
    summary("decode only", |f| f.decode);
    summary("decode+merge+format", |f| f.total);
    Ok(())
}

fn rate(events: u64, time: Duration) -> f64 {
    events as f64 / time.as_secs_f64().max(1e-9)
}

/// The median of sorted values; 0 when there are none.
fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The CPUs, their model and kscope's commit, for quoting the figures.
fn print_machine() {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, m)| m.trim());
    let commit = std::process::Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR")])
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".to_string(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_string(),
        );
    println!("machine: {cpus} CPUs, {model}; kscope {commit}");
}

/// The share of each event in the corpus, most frequent first.
fn print_mix(corpus: &Corpus, renderer: &Renderer<'_>, formats: &[EventFormat<'_>], total: u64) {
    let mut by_event: HashMap<&str, u64> = HashMap::new();
    for page in &corpus.pages {
        let Ok(sub) = SubBuffer::parse(&page.bytes, &corpus.layout) else {
            continue;
        };
        for record in sub.records().flatten() {
            let name = renderer.event_of(record.data).map_or("unknown", |f| f.name);
            *by_event.entry(name).or_default() += 1;
        }
    }
    let systems: HashMap<&str, &str> = formats
        .iter()
        .zip(&corpus.formats)
        .map(|(format, (system, _))| (format.name, system.as_str()))
        .collect();
    let mut mix: Vec<(&str, u64)> = by_event.into_iter().collect();
    mix.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let shares: Vec<String> = mix
        .iter()
        .map(|(name, n)| {
            let system = systems.get(name).copied().unwrap_or("?");
            format!("{system}:{name} {:.1}%", 100.0 * *n as f64 / total as f64)
        })
        .collect();
    println!("mix: {}", shares.join(", "));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    /// A sub-buffer with `n` records of 4 bytes each, event id 7.
    fn page(cpu: u32, n: u32) -> RawPage {
        page_at(cpu, 1_000, n)
    }

    /// A sub-buffer starting at `ts` whose `n` records come 5 apart.
    fn page_at(cpu: u32, ts: u64, n: u32) -> RawPage {
        let mut bytes = vec![0u8; 4096];
        bytes[..8].copy_from_slice(&ts.to_le_bytes());
        bytes[8..16].copy_from_slice(&u64::from(n * 8).to_le_bytes());
        for i in 0..n as usize {
            let at = 16 + i * 8;
            bytes[at..at + 4].copy_from_slice(&(1u32 | 5 << 5).to_le_bytes());
            bytes[at + 4] = 7;
        }
        RawPage { cpu, bytes }
    }

    fn corpus() -> Corpus {
        Corpus {
            layout: PageLayout::X86_64,
            boot_id: "b00t".to_string(),
            release: "6.18.0".to_string(),
            variables: vec![("vmemmap_base".to_string(), 0xffff_ea00_0000_0000)],
            formats: vec![("sched".to_string(), "name: tick\nID: 7\n".to_string())],
            pages: vec![page(0, 3), page(1, 2)],
        }
    }

    fn written(corpus: &Corpus) -> Vec<u8> {
        let mut bytes = Vec::new();
        corpus.write_to(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn commands_take_their_options_and_refuse_others() {
        assert_eq!(
            parse_args(&args("record c --events 5")).unwrap(),
            Command::Record {
                corpus: "c".into(),
                events: 5,
                buffer_kb: 32 * 1024
            }
        );
        assert_eq!(
            parse_args(&args("run c")).unwrap(),
            Command::Run {
                corpus: "c".into(),
                rounds: 5
            }
        );
        for bad in [
            "",
            "run",
            "run c --events 5",
            "run c --rounds",
            "run c --rounds 0",
            "record c --events many",
            "play c",
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_written_corpus_reads_back_whole() {
        let corpus = corpus();
        assert_eq!(Corpus::parse(&written(&corpus)).unwrap(), corpus);
        let counts = decode(&corpus.pages, &corpus.layout);
        assert_eq!(counts.records, 5);
        assert_eq!(counts.damaged, 0);
    }

    #[test]
    fn a_truncated_corpus_says_where_it_ends() {
        let bytes = written(&corpus());
        for cut in [0, 7, 12, 30, bytes.len() - 1] {
            let err = Corpus::parse(&bytes[..cut]).unwrap_err();
            assert!(err.offset <= cut, "cut at {cut}: {err}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            Corpus::parse(&longer).unwrap_err().offset,
            bytes.len(),
            "trailing bytes"
        );
    }

    #[test]
    fn bad_magic_version_text_and_counts_are_refused() {
        let bytes = written(&corpus());
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert_eq!(Corpus::parse(&bad).unwrap_err().offset, 0);
        let mut bad = bytes.clone();
        bad[8] = 2;
        assert_eq!(Corpus::parse(&bad).unwrap_err().expected, "version 1");
        // The boot id's first byte, after magic, version, layout and its length.
        let mut bad = bytes.clone();
        bad[24] = 0xff;
        assert_eq!(Corpus::parse(&bad).unwrap_err().expected, "UTF-8 text");
        // A page count far beyond what the file holds is refused before
        // anything is reserved.
        let at = bytes.len() - 2 * (8 + 4096) - 8;
        let mut bad = bytes.clone();
        bad[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(Corpus::parse(&bad).unwrap_err().offset, at);
    }

    #[test]
    fn damaged_and_lossy_sub_buffers_are_counted() {
        let mut lossy = page(0, 1);
        lossy.bytes[8..16].copy_from_slice(&(8u64 | 1 << 31 | 1 << 30).to_le_bytes());
        lossy.bytes[24..32].copy_from_slice(&42u64.to_le_bytes());
        let mut uncounted = page(0, 1);
        uncounted.bytes[8..16].copy_from_slice(&(8u64 | 1 << 31).to_le_bytes());
        let damaged = RawPage {
            cpu: 1,
            bytes: vec![0; 10],
        };
        let counts = decode(&[lossy, uncounted, damaged], &PageLayout::X86_64);
        assert_eq!(
            counts,
            Counts {
                records: 2,
                lost: 42,
                lost_unknown: 1,
                damaged: 1
            }
        );
    }

    #[test]
    fn trimming_keeps_the_sub_buffers_up_to_the_wanted_record_on_every_cpu() {
        let pages = vec![
            page_at(0, 1000, 2),
            page_at(0, 2000, 2),
            page_at(0, 3000, 2),
            page_at(1, 1500, 2),
            page_at(1, 2500, 2),
            RawPage {
                cpu: 1,
                bytes: vec![0; 10],
            },
        ];
        // The 3rd record in time is CPU 1's first, at 1505.
        let kept = trim(pages.clone(), &PageLayout::X86_64, 3);
        assert_eq!(kept, [&pages[0], &pages[3], &pages[5]].map(Clone::clone));
        assert_eq!(decode(&kept, &PageLayout::X86_64).records, 4);
        // More records than there are: everything stays.
        assert_eq!(trim(pages.clone(), &PageLayout::X86_64, 99), pages);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), 3.0);
    }
}
