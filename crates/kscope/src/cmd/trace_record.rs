//! `kscope trace record` and `kscope trace extract`: ftrace data written
//! to a trace.dat that trace-cmd and KernelShark read. `record` traces in
//! a private instance with one splice(2) reader per CPU; `extract` takes
//! what a buffer holds now.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kscope_ftrace::{CpuStats, GatedCommand, Metadata, Recorder, Session, SessionConfig, Snapshot};
use kscope_outfile::{AtomicFile, PrivateDir};
use kscope_tracedat::{Compression, TraceData, WriteOptions};
use kscope_tracefs::{Instance, StateGuard};

/// The trace.dat that `record` and `extract` write.
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// The trace.dat to write. Its directory must exist; the file is
    /// written under a temporary name there and renamed into place when
    /// complete.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        default_value = "trace.dat"
    )]
    pub path: PathBuf,
}

/// The file format options shared by `record`, `extract` and `convert`.
#[derive(Debug, clap::Args)]
pub struct FileArgs {
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
    pub output: OutputArgs,
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
    pub output: OutputArgs,
    #[command(flatten)]
    pub file: FileArgs,
}

/// Arguments of `kscope trace convert`.
#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    #[command(flatten)]
    pub input: super::input::TraceDatInput,
    /// The trace.dat to write; by default the input's name with the
    /// version before `.dat` (trace.dat becomes trace.v7.dat with
    /// --file-version 7), so the input is kept. Naming the input itself
    /// converts it in place: the new file replaces it only once complete.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The output, given last on the command line as trace-cmd takes it.
    #[arg(value_name = "OUTPUT", conflicts_with = "output")]
    pub output_last: Option<PathBuf>,
    #[command(flatten)]
    pub file: FileArgs,
}

/// The default output of `convert`: `input` with `.vN` before its `.dat`
/// (or after its name when it has no `.dat`).
fn converted_name(input: &Path, version: u32) -> PathBuf {
    let stem = match input.extension().is_some_and(|e| e == "dat") {
        true => input.with_extension(""),
        false => input.to_path_buf(),
    };
    let mut name = stem.into_os_string();
    name.push(format!(".v{version}.dat"));
    PathBuf::from(name)
}

/// Runs `kscope trace convert`: everything the input holds, unknown
/// options included, written in the version and compression asked for.
pub fn convert(args: &ConvertArgs) -> anyhow::Result<ExitCode> {
    let options = args.file.write_options()?;
    let output = match args.output.as_ref().or(args.output_last.as_ref()) {
        Some(path) => path.clone(),
        None => converted_name(&args.input.path, args.file.file_version),
    };
    let file = args.input.open()?;
    let data = args.input.parse(&file)?;
    // The input stays mapped: replacing its name (an in-place
    // conversion) leaves the mapped file whole until it is unmapped.
    write_file(&data, &options, AtomicFile::create(&output)?)?;
    eprintln!("kscope: wrote {}", output.display());
    Ok(ExitCode::SUCCESS)
}

/// Runs `kscope trace record`.
pub fn record(args: &RecordArgs, positions: (&[usize], &[usize])) -> anyhow::Result<ExitCode> {
    let options = args.file.write_options()?;
    // Before tracing starts: a missing directory is an error now, not
    // after the recording.
    let temp = PrivateDir::create_beside(&args.output.path, ".kscope-record-")?;
    kscope_tracefs::handle_interrupt_gracefully();
    let guard = StateGuard::new();
    // So that a kscope killed while recording has its per-CPU files
    // deleted by the next one.
    guard.journal_temp_dir(temp.path())?;
    let fs = guard.tracefs().context("cannot reach tracefs")?;
    let available = fs.events()?;
    let selections = args.select.selections(&available, positions)?;
    let gated = super::start_command(&args.command)?;
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
    let mut session = Session::start(&guard, &fs, &config)?;
    // Every error from here on drops the recorder first (its threads
    // stop and close the instance's files), then the session, then the
    // guard, which removes the instance.
    let recorder = Recorder::start(&session, &temp, session.subbuf_size())?;
    let mut child = gated.map(GatedCommand::open).transpose()?;
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
    let recorded = recorder.finish(&mut session)?;
    progress.finish();
    let metadata = Metadata::capture(&fs, session.instance())?;
    drop(session);
    let data = recorded.trace_data(&metadata);
    // Written in the journaled directory, then renamed into place: a
    // kscope killed while writing leaves its partial file to the next
    // one to delete, with the per-CPU files.
    write_file(&data, &options, temp.stage(&args.output.path)?)?;
    drop(data);
    let (bytes, cpu_count) = (recorded.bytes(), recorded.cpus().count());
    drop(recorded);
    drop(temp);
    if let Some(c) = child {
        super::report_command_end(GatedCommand::finish(c, kscope_tracefs::interrupted())?);
    }
    guard.restore()?;
    eprintln!(
        "kscope: wrote {} ({} of trace data from {cpu_count} CPUs)",
        args.output.path.display(),
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
    let snapshot = Snapshot::take(&fs, &instance, args.instance.as_deref())?;
    write_file(
        &snapshot.trace_data(),
        &options,
        AtomicFile::create(&args.output.path)?,
    )?;
    guard.restore()?;
    eprintln!(
        "kscope: wrote {} ({} sub-buffers)",
        args.output.path.display(),
        snapshot.pages()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes `data` to `file`, a temporary file of random name renamed over
/// its target when complete (see kscope-outfile: no link planted at
/// either name is followed).
fn write_file(
    data: &TraceData<'_>,
    options: &WriteOptions,
    file: AtomicFile,
) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file.file());
    kscope_tracedat::write(data, options, &mut out)
        .and_then(|()| out.flush().map_err(Into::into))
        .with_context(|| format!("cannot write {}", file.path().display()))?;
    drop(out);
    file.commit()?;
    Ok(())
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
            let stats = CpuStats::read(instance, cpu.cpu);
            lost += stats.lost();
            line.push_str(&format!(
                "  cpu{} {} {} events",
                cpu.cpu,
                human_bytes(cpu.bytes.load(Ordering::Relaxed)),
                stats.events()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_converted_file_is_named_after_its_input_and_version() {
        let name = |input: &str, version| converted_name(Path::new(input), version);
        assert_eq!(name("trace.dat", 7), Path::new("trace.v7.dat"));
        assert_eq!(name("/tmp/x/run.dat", 6), Path::new("/tmp/x/run.v6.dat"));
        assert_eq!(name("capture", 7), Path::new("capture.v7.dat"));
    }
}
