//! `kscope core info`: what a user-space core dump says: the process, the
//! signal, and a symbolized backtrace of every thread, the crashing thread
//! first.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use kscope_coredump::{Core, FrameSource, Unwinder};
use kscope_symbols::{DebugFiles, ObjectFile, Symbolizer};
use serde::Serialize;

use crate::render;

/// `AT_ENTRY`: the executable's entry point, which says which module is
/// the executable.
const AT_ENTRY: u64 = 9;

/// Arguments of `kscope core`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: CoreCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CoreCommand {
    /// The process, the signal, and the backtrace of every thread.
    Info(InfoArgs),
}

#[derive(Debug, clap::Args)]
struct InfoArgs {
    /// The core file.
    core: PathBuf,

    /// Read the executable from PATH instead of the path the core names.
    #[arg(long, value_name = "PATH")]
    exe: Option<PathBuf>,

    /// Also print each thread's registers.
    #[arg(long)]
    full: bool,

    /// Print the report as one JSON document.
    #[arg(long)]
    json: bool,
}

/// Runs `kscope core` and its subcommand.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    match &args.command {
        CoreCommand::Info(info) => run_info(info),
    }
}

/// What `kscope core info` prints.
#[derive(Debug, Serialize)]
struct Report {
    core: PathBuf,
    process: Option<Process>,
    signal: Option<Signal>,
    threads: Vec<ThreadReport>,
}

#[derive(Debug, Serialize)]
struct Process {
    pid: i32,
    ppid: i32,
    uid: u32,
    gid: u32,
    command: String,
}

#[derive(Debug, Serialize)]
struct Signal {
    number: i32,
    name: String,
    description: String,
    fault_address: Option<u64>,
}

#[derive(Debug, Serialize)]
struct ThreadReport {
    tid: i32,
    crashed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    registers: Option<Vec<(&'static str, u64)>>,
    frames: Vec<FrameReport>,
}

#[derive(Debug, Serialize)]
struct FrameReport {
    index: usize,
    pc: u64,
    function: Option<String>,
    offset: Option<u64>,
    file: Option<String>,
    line: Option<u32>,
    inlined: bool,
    module: Option<String>,
    source: &'static str,
}

fn run_info(args: &InfoArgs) -> anyhow::Result<ExitCode> {
    let mapped = kscope_tracedat::TraceFile::open(&args.core)
        .with_context(|| format!("cannot open the core {}", args.core.display()))?;
    let core = Core::parse(mapped.bytes())
        .with_context(|| format!("{} is not a core dump kscope can read", args.core.display()))?;
    let report = report(&core, args);
    if args.json {
        render::json::print(&report)?;
    } else {
        print_text(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn report(core: &Core<'_>, args: &InfoArgs) -> Report {
    let mut unwinder = Unwinder::new(core);
    if let Some(exe) = &args.exe
        && let Some(entry) = core.aux_value(AT_ENTRY)
        && let Some(module) = unwinder.module_at(entry)
    {
        let original = module.path.to_path_buf();
        unwinder.replace_path(&original, exe);
    }
    let process = core.process().map(|p| Process {
        pid: p.pid,
        ppid: p.ppid,
        uid: p.uid,
        gid: p.gid,
        command: String::from_utf8_lossy(p.psargs).trim_end().to_string(),
    });
    let signal = core.siginfo().map(|s| Signal {
        number: s.signo,
        name: s.signal_name(),
        description: s.describe(),
        fault_address: s.fault_address,
    });
    let mut symbolizers = Symbolizers::default();
    // The kernel writes the dumping thread's NT_PRSTATUS first
    // (fs/binfmt_elf.c, fill_note_info): that is the crashing thread.
    let threads = core
        .threads()
        .iter()
        .enumerate()
        .map(|(i, thread)| {
            let frames = unwinder.backtrace(&thread.registers);
            let mut reports = Vec::new();
            for frame in frames {
                let caller = frame.source != FrameSource::Registers;
                let source = match frame.source {
                    FrameSource::Registers => "registers",
                    FrameSource::Cfi => "cfi",
                    FrameSource::FramePointer => "frame-pointer",
                };
                let located = unwinder
                    .relative_address(frame.pc)
                    .map(|(module, address)| (module.path.to_path_buf(), address));
                let module = unwinder.module_at(frame.pc).map(|m| module_name(m.path));
                let symbols = match located {
                    Some((path, address)) => {
                        let file = unwinder.file_of(&path);
                        // A return address is looked up one byte back, in
                        // the call instruction.
                        let lookup = if caller {
                            address.wrapping_sub(1)
                        } else {
                            address
                        };
                        symbolizers
                            .get(&file)
                            .map(|s| s.lookup(lookup))
                            .unwrap_or_default()
                    }
                    None => Vec::new(),
                };
                if symbols.is_empty() {
                    reports.push(FrameReport {
                        index: reports.len(),
                        pc: frame.pc,
                        function: None,
                        offset: None,
                        file: None,
                        line: None,
                        inlined: false,
                        module: module.clone(),
                        source,
                    });
                }
                for symbol in symbols {
                    reports.push(FrameReport {
                        index: reports.len(),
                        pc: frame.pc,
                        function: symbol.function,
                        // The offset of the return address itself, as gdb
                        // shows it.
                        offset: symbol.offset.map(|o| if caller { o + 1 } else { o }),
                        file: symbol.file,
                        line: symbol.line,
                        inlined: symbol.inlined,
                        module: module.clone(),
                        source,
                    });
                }
            }
            ThreadReport {
                tid: thread.tid,
                crashed: i == 0,
                registers: args.full.then(|| thread.registers.list()),
                frames: reports,
            }
        })
        .collect();
    Report {
        core: args.core.clone(),
        process,
        signal,
        threads,
    }
}

fn module_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// One symbolizer per file, `None` for a file that cannot be read.
#[derive(Default)]
struct Symbolizers {
    by_file: HashMap<PathBuf, Option<Symbolizer>>,
}

impl Symbolizers {
    fn get(&mut self, file: &Path) -> Option<&Symbolizer> {
        self.by_file
            .entry(file.to_path_buf())
            .or_insert_with(|| {
                let object = ObjectFile::open(file).ok()?;
                let debug = DebugFiles::find(&object, None);
                Symbolizer::new(object, debug).ok()
            })
            .as_ref()
    }
}

fn print_text(report: &Report) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "Core: {}", report.core.display())?;
    match &report.process {
        Some(p) => writeln!(
            out,
            "Process: pid {} (ppid {}), uid {}, gid {}: {}",
            p.pid, p.ppid, p.uid, p.gid, p.command
        )?,
        None => writeln!(out, "Process: unknown (no NT_PRPSINFO note)")?,
    }
    match &report.signal {
        Some(s) => writeln!(out, "Signal: {}", s.description)?,
        None => writeln!(out, "Signal: unknown (no NT_SIGINFO note)")?,
    }
    for thread in &report.threads {
        writeln!(out)?;
        if thread.crashed {
            writeln!(out, "Thread {} (crashed)", thread.tid)?;
        } else {
            writeln!(out, "Thread {}", thread.tid)?;
        }
        for frame in &thread.frames {
            let mut line = format!("#{:<2} {:#018x} in ", frame.index, frame.pc);
            line.push_str(frame.function.as_deref().unwrap_or("??"));
            if let Some(offset) = frame.offset {
                line.push_str(&format!("+{offset:#x}"));
            }
            if let Some(file) = &frame.file {
                line.push_str(&format!(" at {file}:{}", frame.line.unwrap_or(0)));
            }
            if frame.inlined {
                line.push_str(" [inlined]");
            }
            if let Some(module) = &frame.module {
                line.push_str(&format!(" ({module})"));
            }
            writeln!(out, "{line}")?;
        }
        if let Some(registers) = &thread.registers {
            for row in registers.chunks(3) {
                let cells: Vec<String> = row
                    .iter()
                    .map(|(name, value)| format!("{name:>8} {value:#018x}"))
                    .collect();
                writeln!(out, "{}", cells.join("  "))?;
            }
        }
    }
    Ok(())
}
