//! `kscope core info`: what a user-space core dump says: the process, the
//! signal, and a symbolized backtrace of every thread, the crashing thread
//! first.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use kscope_coredump::{Core, CoreFile, CoreReport, ReportOptions};

use crate::render;

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

fn run_info(args: &InfoArgs) -> anyhow::Result<ExitCode> {
    let mapped = CoreFile::open(&args.core)
        .with_context(|| format!("cannot open the core {}", args.core.display()))?;
    super::input::check_start(&args.core, mapped.bytes(), &super::input::CORE)?;
    let core = Core::parse(mapped.bytes())
        .with_context(|| format!("{} is not a core dump kscope can read", args.core.display()))?;
    if core.has_vmcoreinfo() {
        bail!(
            "{} is a kernel crash dump (it has a VMCOREINFO note), not a process's core: read it with `kscope crash {}`",
            args.core.display(),
            args.core.display()
        );
    }
    let options = ReportOptions {
        exe: args.exe.clone(),
        sysroot: args.sysroot.clone(),
        dwarf_cache: !args.no_cache,
        registers: args.full,
        max_frames: args.max_frames,
    };
    let report = CoreReport::new(&core, &args.core, &options);
    for mismatch in &report.build_id_mismatches {
        eprintln!("{}", render::core_info::mismatch_warning(mismatch));
    }
    if args.json {
        render::json::print(&report)?;
    } else {
        render::core_info::print(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}
