//! `kscope trace record` and `kscope trace extract`: ftrace data written
//! to a trace.dat that trace-cmd and KernelShark read. `record` traces in
//! a private instance with one splice(2) reader per CPU; `extract` takes
//! what a buffer holds now.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kscope_ftrace::{
    GatedCommand, Metadata, RawPage, Recorder, Session, SessionConfig, read_buffer,
};
use kscope_tracedat::{
    Buffer, Compression, CpuData, EventSystem, RawOption, TraceData, WriteOptions, option_id,
};
use kscope_tracefs::{Instance, StateGuard};

/// The file format options shared by `record` and `extract`.
#[derive(Debug, clap::Args)]
pub struct FileArgs {
    /// The trace.dat to write.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        default_value = "trace.dat"
    )]
    pub output: PathBuf,

    /// trace.dat version: 6 (every reader knows it, KernelShark 1 too) or
    /// 7 (sections, optional compression; what trace-cmd 3.1 writes by
    /// default, with zstd).
    #[arg(long = "file-version", value_name = "N", default_value_t = 6,
          value_parser = clap::value_parser!(u32).range(6..=7))]
    pub file_version: u32,

    /// Compression of a version 7 file: zstd, zlib or none.
    #[arg(long, value_name = "ALGORITHM", default_value = "none",
          value_parser = ["zstd", "zlib", "none"])]
    pub compression: String,
}

impl FileArgs {
    fn write_options(&self) -> anyhow::Result<WriteOptions> {
        let compression = match self.compression.as_str() {
            "zstd" => Compression::Zstd,
            "zlib" => Compression::Zlib,
            _ => Compression::None,
        };
        if self.file_version == 6 && compression != Compression::None {
            bail!("--compression needs --file-version 7: version 6 files are not compressed");
        }
        Ok(WriteOptions {
            version: self.file_version,
            compression,
        })
    }
}

/// Arguments of `kscope trace record`.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    #[command(flatten)]
    pub select: super::trace_stream::EventArgs,
    #[command(flatten)]
    pub file: FileArgs,
    /// Run this command, record while it runs, and stop when it exits;
    /// without it, record until Ctrl-C.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Arguments of `kscope trace extract`.
#[derive(Debug, clap::Args)]
pub struct ExtractArgs {
    /// The instance whose buffer to take; the top-level buffer without it.
    #[arg(short = 'B', long = "buffer", value_name = "INSTANCE")]
    pub instance: Option<String>,
    #[command(flatten)]
    pub file: FileArgs,
}

/// Arguments of `kscope trace convert`.
#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// The trace.dat to read.
    #[arg(
        short = 'i',
        long = "input",
        value_name = "FILE",
        default_value = "trace.dat"
    )]
    pub input: PathBuf,
    #[command(flatten)]
    pub file: FileArgs,
}

/// Runs `kscope trace convert`: everything the input holds, unknown
/// options included, written in the version and compression asked for.
pub fn convert(args: &ConvertArgs) -> anyhow::Result<ExitCode> {
    let options = args.file.write_options()?;
    if args.input == args.file.output {
        bail!(
            "the output would overwrite the input {}",
            args.input.display()
        );
    }
    let file = kscope_tracedat::TraceFile::open(&args.input)
        .with_context(|| format!("cannot open {}", args.input.display()))?;
    let data = kscope_tracedat::parse(file.bytes()).with_context(|| {
        format!(
            "{} is not a trace.dat kscope can read",
            args.input.display()
        )
    })?;
    write_file(&data, &options, &args.file.output)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `kscope trace record`.
pub fn record(args: &RecordArgs, positions: (&[usize], &[usize])) -> anyhow::Result<ExitCode> {
    let options = args.file.write_options()?;
    kscope_tracefs::handle_interrupt_gracefully();
    let guard = StateGuard::new();
    let fs = guard.tracefs().context("cannot reach tracefs")?;
    let available = fs.events()?;
    let selections = args.select.selections(&available, positions)?;
    let gated = match args.command.is_empty() {
        true => None,
        false => Some(GatedCommand::start(&args.command, None)?),
    };
    let config = SessionConfig {
        events: selections,
        pids: args.select.pids.clone(),
        follow_forks: false,
        clock: args.select.clock.clone(),
        buffer_kb: args.select.buffer_kb,
        // Readers wake when a tenth of a CPU's buffer is full: splice
        // moves whole sub-buffers only.
        wake_percent: 10,
    };
    let temp = TempDir::create(&args.file.output)?;
    let mut session = Session::start(&guard, &fs, &config)?;
    let page_size = session.subbuf_size();
    let recorder = Recorder::start(&session, temp.path(), page_size)?;
    let mut child = match gated.map(GatedCommand::open).transpose() {
        Ok(child) => child,
        Err(e) => {
            // The recording threads hold the instance's files open: they
            // end before the guard can remove it.
            session.stop(&guard)?;
            recorder.finish(&mut session)?;
            return Err(e.into());
        }
    };
    let progress = Progress::new(std::io::stderr().is_terminal());
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let done = match child.as_mut() {
            Some(c) => c.try_wait()?.is_some(),
            None => false,
        };
        progress.show(&recorder, session.instance(), started);
        if done || kscope_tracefs::interrupted() {
            break;
        }
    }
    session.stop(&guard)?;
    let files = recorder.finish(&mut session)?;
    progress.finish();
    let metadata = Metadata::capture(&fs, session.instance())?;
    drop(session);
    let maps: Vec<(u32, memmap::Mapped)> = files
        .iter()
        .map(|(cpu, path)| Ok((*cpu, memmap::Mapped::open(path)?)))
        .collect::<anyhow::Result<_>>()?;
    let cpus: Vec<CpuData<'_>> = maps
        .iter()
        .map(|(cpu, m)| CpuData {
            cpu: *cpu,
            data: Cow::Borrowed(m.bytes()),
        })
        .collect();
    let data = trace_data(
        &metadata,
        page_size as u32,
        vec![Buffer {
            name: String::new(),
            clock: Some(current_clock(&metadata.trace_clock)),
            page_size: page_size as u32,
            cpus,
        }],
    );
    write_file(&data, &options, &args.file.output)?;
    let bytes: u64 = data.buffers[0]
        .cpus
        .iter()
        .map(|c| c.data.len() as u64)
        .sum();
    let cpu_count = data.buffers[0].cpus.len();
    drop(data);
    drop(maps);
    drop(temp);
    if let Some(c) = child {
        super::report_command_end(GatedCommand::finish(c, kscope_tracefs::interrupted())?);
    }
    guard.restore()?;
    eprintln!(
        "kscope: wrote {} ({} of trace data from {cpu_count} CPUs)",
        args.file.output.display(),
        human_bytes(bytes),
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `kscope trace extract`.
pub fn extract(args: &ExtractArgs) -> anyhow::Result<ExitCode> {
    let options = args.file.write_options()?;
    let guard = StateGuard::new();
    let fs = guard.tracefs().context("cannot reach tracefs")?;
    let instance: Instance = match &args.instance {
        Some(name) => fs
            .instance(name)
            .with_context(|| format!("no instance {name:?} (see /sys/kernel/tracing/instances)"))?,
        None => fs.top(),
    };
    let page_size = instance
        .read("buffer_subbuf_size_kb")
        .ok()
        .and_then(|t| t.trim().parse::<usize>().ok())
        .map_or(4096, |kb| kb * 1024);
    let pages = read_buffer(&instance, page_size)?;
    let metadata = Metadata::capture(&fs, &instance)?;
    let data = trace_data(
        &metadata,
        page_size as u32,
        vec![buffer_of(
            &pages,
            page_size,
            &metadata,
            args.instance.as_deref(),
        )],
    );
    write_file(&data, &options, &args.file.output)?;
    guard.restore()?;
    eprintln!(
        "kscope: wrote {} ({} sub-buffers)",
        args.file.output.display(),
        pages.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// A buffer of pages read with read(2), each padded to the page size.
fn buffer_of<'a>(
    pages: &[RawPage],
    page_size: usize,
    metadata: &Metadata,
    name: Option<&str>,
) -> Buffer<'a> {
    let mut by_cpu: std::collections::BTreeMap<u32, Vec<u8>> = Default::default();
    for cpu in metadata.cpu_stats.iter().map(|(cpu, _)| *cpu) {
        by_cpu.entry(cpu).or_default();
    }
    for page in pages {
        let data = by_cpu.entry(page.cpu).or_default();
        data.extend_from_slice(&page.bytes);
        data.resize(data.len().next_multiple_of(page_size), 0);
    }
    Buffer {
        name: name.unwrap_or_default().to_string(),
        clock: Some(current_clock(&metadata.trace_clock)),
        page_size: page_size as u32,
        cpus: by_cpu
            .into_iter()
            .map(|(cpu, data)| CpuData {
                cpu,
                data: Cow::Owned(data),
            })
            .collect(),
    }
}

/// The clock in brackets of a trace_clock text (`[local] global ...`).
fn current_clock(trace_clock: &str) -> String {
    trace_clock
        .split_whitespace()
        .find_map(|c| c.strip_prefix('[').and_then(|c| c.strip_suffix(']')))
        .unwrap_or("local")
        .to_string()
}

/// The trace.dat contents: metadata, options, and `buffers`.
fn trace_data<'a>(
    metadata: &'a Metadata,
    page_size: u32,
    buffers: Vec<Buffer<'a>>,
) -> TraceData<'a> {
    let text = |id: u16, s: String| {
        let mut data = s.into_bytes();
        data.push(0);
        RawOption {
            id,
            data: Cow::Owned(data),
        }
    };
    let cpus = metadata.cpu_stats.len() as u32;
    let mut options = Vec::new();
    for (cpu, stats) in &metadata.cpu_stats {
        // As trace-cmd writes them: the CPU, then the stats file.
        options.push(text(option_id::CPUSTAT, format!("CPU: {cpu}\n{stats}")));
    }
    options.push(text(
        option_id::TRACECLOCK,
        metadata.trace_clock.clone() + "\n",
    ));
    let uname = rustix::system::uname();
    options.push(text(
        option_id::UNAME,
        format!(
            "{} {} {} {}",
            uname.sysname().to_string_lossy(),
            uname.nodename().to_string_lossy(),
            uname.release().to_string_lossy(),
            uname.version().to_string_lossy()
        ),
    ));
    options.push(text(
        option_id::VERSION,
        format!("kscope {}", env!("CARGO_PKG_VERSION")),
    ));
    options.push(RawOption {
        id: option_id::CPUCOUNT,
        data: Cow::Owned(cpus.to_le_bytes().to_vec()),
    });
    TraceData {
        version: 6,
        big_endian: cfg!(target_endian = "big"),
        long_size: std::mem::size_of::<usize>() as u8,
        page_size,
        compression: Compression::None,
        header_page: Cow::Borrowed(&metadata.header_page),
        header_event: Cow::Borrowed(&metadata.header_event),
        ftrace_formats: metadata
            .ftrace_formats
            .iter()
            .map(|f| Cow::Borrowed(f.as_slice()))
            .collect(),
        event_formats: metadata
            .event_formats
            .iter()
            .map(|(name, formats)| EventSystem {
                name: name.clone(),
                formats: formats
                    .iter()
                    .map(|f| Cow::Borrowed(f.as_slice()))
                    .collect(),
            })
            .collect(),
        kallsyms: Cow::Borrowed(&metadata.kallsyms),
        printk_formats: Cow::Borrowed(&metadata.printk_formats),
        cmdlines: Cow::Borrowed(&metadata.cmdlines),
        cpus,
        options,
        buffers,
    }
}

/// Writes `data` to `path` through a temporary file in the same
/// directory, renamed into place when complete.
fn write_file(data: &TraceData<'_>, options: &WriteOptions, path: &Path) -> anyhow::Result<()> {
    let partial = path.with_extension("dat.partial");
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    kscope_tracedat::write(data, options, &mut out)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    out.flush()
        .with_context(|| format!("cannot write {}", partial.display()))?;
    drop(out);
    std::fs::rename(&partial, path)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()))?;
    Ok(())
}

/// A directory for the per-CPU files, beside the output, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn create(output: &Path) -> anyhow::Result<TempDir> {
        let parent = output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = parent.join(format!(".kscope-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(TempDir(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Live progress on a terminal: bytes and events per CPU, events lost.
struct Progress {
    tty: bool,
}

impl Progress {
    fn new(tty: bool) -> Progress {
        Progress { tty }
    }

    fn show(&self, recorder: &Recorder, instance: &Instance, started: Instant) {
        if !self.tty {
            return;
        }
        let mut line = format!("\rrecording {:.0} s:", started.elapsed().as_secs_f64());
        let mut lost = 0u64;
        for cpu in recorder.cpus() {
            let stats = instance
                .read(&format!("per_cpu/cpu{}/stats", cpu.cpu))
                .unwrap_or_default();
            let field = |name: &str| {
                stats
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            lost += field("overrun:") + field("dropped events:");
            line.push_str(&format!(
                "  cpu{} {} {} events",
                cpu.cpu,
                human_bytes(cpu.bytes.load(Ordering::Relaxed)),
                field("read events:") + field("entries:")
            ));
        }
        line.push_str(&format!("  lost {lost}   "));
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
    }

    fn finish(&self) {
        if self.tty {
            eprintln!();
        }
    }
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// Read-only mappings of the per-CPU files.
mod memmap {
    use anyhow::Context;

    /// A whole file, mapped (through kscope-tracedat, which maps
    /// trace.dat files the same way); an empty file is not mapped.
    pub struct Mapped(Option<kscope_tracedat::TraceFile>);

    impl Mapped {
        pub fn open(path: &std::path::Path) -> anyhow::Result<Mapped> {
            let len = std::fs::metadata(path)
                .with_context(|| format!("cannot open {}", path.display()))?
                .len();
            if len == 0 {
                return Ok(Mapped(None));
            }
            let map = kscope_tracedat::TraceFile::open(path)
                .with_context(|| format!("cannot map {}", path.display()))?;
            Ok(Mapped(Some(map)))
        }

        pub fn bytes(&self) -> &[u8] {
            self.0.as_ref().map_or(&[], |m| m.bytes())
        }
    }
}
