//! `kscope core info`: what a user-space core dump says: the process, the
//! signal, and a symbolized backtrace of every thread, the crashing thread
//! first.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use kscope_coredump::{BuildIdMismatch, Core, FrameSource, Unwinder};
use kscope_symbols::{DebugFiles, DwarfCache, ObjectFile, Symbolizer};
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

    /// Read the libraries (and their debug files, under usr/lib/debug) from
    /// DIR instead of /: a core from another machine, with a copy of its
    /// files in DIR.
    #[arg(long, value_name = "DIR")]
    sysroot: Option<PathBuf>,

    /// Neither read nor write the cache of inflated debug sections
    /// ($KSCOPE_CACHE_DIR/dwarf, else ~/.cache/kscope/dwarf), which spares
    /// the next look at a program using the same libraries the inflation.
    #[arg(long)]
    no_cache: bool,

    /// Also print each thread's registers.
    #[arg(long)]
    full: bool,

    /// Cut each backtrace after N frames (a runaway recursion is about
    /// 30,000 deep; the text report folds repeated frames into one line).
    #[arg(long, value_name = "N", default_value_t = kscope_coredump::MAX_FRAMES)]
    max_frames: usize,

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
    /// Modules whose file is not the build the process ran: their frames
    /// are shown without symbols.
    build_id_mismatches: Vec<Mismatch>,
    threads: Vec<ThreadReport>,
}

/// A module whose file was rebuilt (or replaced) since the crash.
#[derive(Debug, Serialize)]
struct Mismatch {
    module: String,
    path: PathBuf,
    file: PathBuf,
    core_build_id: String,
    /// `None` when the file has no build-id.
    file_build_id: Option<String>,
}

impl Mismatch {
    fn new(mismatch: &BuildIdMismatch) -> Mismatch {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        Mismatch {
            module: module_name(&mismatch.path),
            path: mismatch.path.clone(),
            file: mismatch.file.clone(),
            core_build_id: hex(&mismatch.in_core),
            file_build_id: mismatch.in_file.as_deref().map(hex),
        }
    }

    /// The warning printed on stderr.
    fn warning(&self) -> String {
        format!(
            "kscope: warning: {} is not the build that crashed (build-id {} in the core, {} in the file; rebuilt since?): its frames are shown without symbols",
            self.file.display(),
            self.core_build_id,
            self.file_build_id.as_deref().unwrap_or("none"),
        )
    }
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
    /// Set when the fault is next to the crashing thread's stack pointer:
    /// the stack ran out (runaway recursion, or a large local array).
    stack_overflow: bool,
}

#[derive(Debug, Serialize)]
struct ThreadReport {
    tid: i32,
    crashed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    registers: Option<Vec<(&'static str, u64)>>,
    frames: Vec<FrameReport>,
    /// Set when the backtrace was cut at `--max-frames`.
    truncated: bool,
}

#[derive(Debug, Serialize)]
struct FrameReport {
    index: usize,
    pc: u64,
    function: Option<String>,
    symbol: Option<String>,
    offset: Option<u64>,
    file: Option<String>,
    line: Option<u32>,
    inlined: bool,
    /// This frame is the signal trampoline (`__restore_rt`): the frames
    /// below it were interrupted by a signal, whose handler is above.
    signal_trampoline: bool,
    module: Option<String>,
    /// The module's file is another build: no symbol is looked up in it.
    build_id_mismatch: bool,
    source: &'static str,
}

fn run_info(args: &InfoArgs) -> anyhow::Result<ExitCode> {
    let mapped = kscope_tracedat::TraceFile::open(&args.core)
        .with_context(|| format!("cannot open the core {}", args.core.display()))?;
    super::input::check_start(&args.core, mapped.bytes(), &super::input::CORE)?;
    let core = Core::parse(mapped.bytes())
        .with_context(|| format!("{} is not a core dump kscope can read", args.core.display()))?;
    if core
        .notes()
        .any(|note| note.is_ok_and(|n| n.name == b"VMCOREINFO"))
    {
        bail!(
            "{} is a kernel crash dump (it has a VMCOREINFO note), not a process's core: read it with `kscope crash {}`",
            args.core.display(),
            args.core.display()
        );
    }
    let report = report(&core, args);
    for mismatch in &report.build_id_mismatches {
        eprintln!("{}", mismatch.warning());
    }
    if args.json {
        render::json::print(&report)?;
    } else {
        print_text(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn report(core: &Core<'_>, args: &InfoArgs) -> Report {
    let mut unwinder = Unwinder::new(core);
    unwinder.set_max_frames(args.max_frames);
    if let Some(sysroot) = &args.sysroot {
        for module in core.modules() {
            let relative = module.path.strip_prefix("/").unwrap_or(module.path);
            unwinder.replace_path(module.path, &sysroot.join(relative));
        }
    }
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
    let crashed_sp = core.threads().first().and_then(|t| t.registers.sp());
    let signal = core.siginfo().map(|s| {
        let overflow = stack_overflow(s.signo, s.fault_address, crashed_sp);
        let mut description = s.describe();
        if let Some(text) = &overflow {
            description.push_str(&format!(" ({text})"));
        }
        Signal {
            number: s.signo,
            name: s.signal_name(),
            description,
            fault_address: s.fault_address,
            stack_overflow: overflow.is_some(),
        }
    });
    let mut symbolizers = Symbolizers {
        sysroot: args.sysroot.clone(),
        cache: if args.no_cache {
            None
        } else {
            DwarfCache::user()
        },
        by_file: HashMap::new(),
    };
    let build_id_mismatches = unwinder
        .build_id_mismatches()
        .iter()
        .map(Mismatch::new)
        .collect();
    // The kernel writes the dumping thread's NT_PRSTATUS first
    // (fs/binfmt_elf.c, fill_note_info): that is the crashing thread.
    let threads = core
        .threads()
        .iter()
        .enumerate()
        .map(|(i, thread)| {
            let frames = unwinder.backtrace(&thread.registers);
            let truncated = frames.len() >= args.max_frames;
            let mut reports = Vec::new();
            for (n, frame) in frames.iter().enumerate() {
                let signal_trampoline = frames
                    .get(n + 1)
                    .is_some_and(|next| next.source == FrameSource::Signal);
                // A signal trampoline's pc is where the handler returns to:
                // the trampoline's first instruction, not after a call.
                let caller = frame.source.is_return_address() && !signal_trampoline;
                let source = match frame.source {
                    FrameSource::Registers => "registers",
                    FrameSource::Cfi => "cfi",
                    FrameSource::FramePointer => "frame-pointer",
                    FrameSource::Signal => "signal",
                    FrameSource::CallThroughBadPointer => "return-address",
                };
                let located = unwinder
                    .relative_address(frame.pc)
                    .map(|(module, address)| (module.path.to_path_buf(), address));
                let module = unwinder.module_at(frame.pc).map(|m| module_name(m.path));
                // No address in another build is looked up (relative_address
                // gives none).
                let build_id_mismatch = unwinder.build_id_mismatch(frame.pc).is_some();
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
                        symbol: None,
                        offset: None,
                        file: None,
                        line: None,
                        inlined: false,
                        signal_trampoline,
                        module: module.clone(),
                        build_id_mismatch,
                        source,
                    });
                }
                for symbol in symbols {
                    reports.push(FrameReport {
                        index: reports.len(),
                        pc: frame.pc,
                        function: symbol.function,
                        symbol: symbol.symbol,
                        // The offset of the return address itself, as gdb
                        // shows it.
                        offset: symbol.offset.map(|o| if caller { o + 1 } else { o }),
                        file: symbol.file,
                        line: symbol.line,
                        inlined: symbol.inlined,
                        signal_trampoline: signal_trampoline && !symbol.inlined,
                        module: module.clone(),
                        build_id_mismatch,
                        source,
                    });
                }
            }
            ThreadReport {
                tid: thread.tid,
                crashed: i == 0,
                registers: args.full.then(|| thread.registers.list()),
                frames: reports,
                truncated,
            }
        })
        .collect();
    Report {
        core: args.core.clone(),
        process,
        signal,
        build_id_mismatches,
        threads,
    }
}

/// How far a fault may be from the stack pointer and still be the stack
/// running out: a function's frame (locals included) rarely spans more.
const STACK_OVERFLOW_REACH: u64 = 64 << 10;

/// Says "stack overflow" when a SIGSEGV's fault address is within
/// [`STACK_OVERFLOW_REACH`] of the crashing thread's stack pointer.
fn stack_overflow(signo: i32, fault: Option<u64>, sp: Option<u64>) -> Option<String> {
    const SIGSEGV: i32 = 11;
    let (fault, sp) = (fault?, sp?);
    if signo != SIGSEGV || fault.abs_diff(sp) > STACK_OVERFLOW_REACH {
        return None;
    }
    Some(format!("stack overflow: the stack pointer is {sp:#x}"))
}

fn module_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// One symbolizer per file, `None` for a file that cannot be read; debug
/// files are looked for under the sysroot.
struct Symbolizers {
    sysroot: Option<PathBuf>,
    cache: Option<DwarfCache>,
    by_file: HashMap<PathBuf, Option<Symbolizer>>,
}

impl Symbolizers {
    fn get(&mut self, file: &Path) -> Option<&Symbolizer> {
        self.by_file
            .entry(file.to_path_buf())
            .or_insert_with(|| {
                let object = ObjectFile::open(file).ok()?;
                let debug = DebugFiles::find(&object, self.sysroot.as_deref());
                Symbolizer::with_cache(object, debug, self.cache.as_ref()).ok()
            })
            .as_ref()
    }
}

/// `#N  0xPC in function+0xoff at file:line [inlined] (module)`.
fn frame_line(frame: &FrameReport) -> String {
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
    if frame.signal_trampoline {
        line.push_str(" [signal handler called]");
    }
    if let Some(module) = &frame.module {
        line.push_str(&format!(" ({module})"));
    }
    if frame.build_id_mismatch {
        line.push_str(" (build-id mismatch)");
    }
    line
}

/// Whether two frames are the same code: same pc and the same function
/// at the same line (an inlined chain repeats as a whole or not at all).
fn same_place(a: &FrameReport, b: &FrameReport) -> bool {
    a.pc == b.pc
        && a.function == b.function
        && a.file == b.file
        && a.line == b.line
        && a.inlined == b.inlined
        && a.signal_trampoline == b.signal_trampoline
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
        let mut frames = thread.frames.iter().peekable();
        while let Some(frame) = frames.next() {
            writeln!(out, "{}", frame_line(frame))?;
            // A run of the same frame (a runaway recursion) is one line.
            let mut last = frame.index;
            while let Some(next) = frames.next_if(|next| same_place(next, frame)) {
                last = next.index;
            }
            if last > frame.index {
                writeln!(
                    out,
                    "    ... the same frame {} more times, #{} to #{last}",
                    last - frame.index,
                    frame.index + 1
                )?;
            }
        }
        if thread.truncated {
            writeln!(
                out,
                "    ... cut at {} frames (--max-frames)",
                thread.frames.last().map_or(0, |f| f.index + 1)
            )?;
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
