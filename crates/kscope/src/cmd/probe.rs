//! `kscope probe`: run a SystemTap-style script, compiled to eBPF. The
//! passes are SystemTap's: 1 parse, 2 resolve (probe points, names,
//! types), 3 generate BPF, 4 load it into the kernel, 5 run.

use std::cell::RefCell;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use kscope_ftrace::{GatedCommand, command_words};
use kscope_probe::codegen::Generated;
use kscope_probe::host::HostCode;
use kscope_probe::points::{self, Attachment, Kernel};
use kscope_probe::runtime::{Ending, RuntimeError, Session};
use kscope_probe::sys::KernelError;
use kscope_probe::{Diagnostic, Needs, Resolved, Script, SourceFile};

/// Arguments of `kscope probe`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  kscope probe -e 'probe syscall.read { printf(\"read performed\\n\"); exit() }'
  kscope probe -c 'dd if=/dev/zero of=/dev/null count=100' -e '
      global n
      probe syscall.read { if (pid() == target()) n++ }
      probe end { printf(\"%d reads\\n\", n) }'
  kscope probe -l 'syscall.open*'
  kscope probe -L 'kernel.trace(\"sched:sched_switch\")'

The language is SystemTap's (a subset): docs/PROBE-LANGUAGE.md.")]
pub struct Args {
    /// The script file (`-` for standard input), then the script's
    /// arguments, which $1, $2... (as numbers) and @1, @2... (as strings)
    /// stand for. With -e, every one is a script argument. An argument
    /// that starts with '-' goes after `--`.
    #[arg(value_name = "FILE.stp ARG", conflicts_with_all = ["list", "list_vars"])]
    positionals: Vec<std::ffi::OsString>,

    /// The script itself, as text.
    #[arg(short = 'e', value_name = "SCRIPT")]
    script: Option<String>,

    /// Run COMMAND once the probes are attached; the session ends when it
    /// exits. target() is its pid: it is exec'd directly, or, with shell
    /// syntax (quotes, $, globs), by `sh -c 'exec COMMAND'`; only with
    /// pipes, lists, redirections or parentheses is target() the shell's.
    #[arg(short = 'c', value_name = "COMMAND", conflicts_with = "pid")]
    command: Option<String>,

    /// Set target() to PID.
    #[arg(short = 'x', value_name = "PID")]
    pid: Option<u32>,

    /// Write the probes' output to FILE instead of standard output. A
    /// symbolic link at FILE is refused, and so is another user's file
    /// (or one with other hard links) in a directory others can write to.
    #[arg(short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,

    /// Report each pass and its time on standard error, as stap -v does.
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    verbose: u8,

    /// Stop after pass N: 1 parse, 2 resolve, 3 generate, 4 load.
    #[arg(short = 'p', value_name = "N", value_parser = clap::value_parser!(u8).range(1..=4))]
    pass: Option<u8>,

    /// List the probe points that match POINT (globs allowed), as stap -l.
    #[arg(short = 'l', value_name = "POINT", conflicts_with = "list_vars")]
    list: Option<String>,

    /// Like -l, with the variables each point offers, as stap -L.
    #[arg(short = 'L', value_name = "POINT")]
    list_vars: Option<String>,

    /// Print the generated BPF instructions, annotated with the source line
    /// each came from.
    #[arg(long)]
    dump_bpf: bool,

    /// At the end, write the stacks of every array keyed by backtrace()
    /// or ubacktrace() to FILE as collapsed stacks, `outer;...;inner
    /// COUNT` a line, what flame-graph tools read (the count: the entry's
    /// value, or a statistic's @count). A symbolic link at FILE is refused.
    #[arg(long, value_name = "FILE")]
    folded: Option<PathBuf>,
}

/// Runs `kscope probe`.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if let Some(point) = args.list.as_ref().or(args.list_vars.as_ref()) {
        return list(point, args.list_vars.is_some());
    }
    let (file, script_args) = source(args)?;
    let report = |pass: u8, what: &str, started: Instant| {
        if args.verbose > 0 {
            eprintln!(
                "Pass {pass}: {what} in {:.1} ms",
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
    };

    let started = Instant::now();
    let script =
        kscope_probe::parse_with_args(&file, &script_args).map_err(|d| diagnostic(&file, &d))?;
    report(
        1,
        &format!(
            "parsed the script ({} probes, {} functions, {} globals)",
            script.probes.len(),
            script.functions.len(),
            script.globals.len()
        ),
        started,
    );
    if args.pass == Some(1) {
        print_parse(&script, &mut std::io::stdout().lock())?;
        return Ok(ExitCode::SUCCESS);
    }

    let needs = Needs::of(&script);
    let started = Instant::now();
    let resolved = with_kernel(needs, |kernel| kscope_probe::resolve(&script, kernel))?
        .map_err(|d| diagnostic(&file, &d))?;
    report(
        2,
        &format!("resolved {} probe points", resolved.attachments.len()),
        started,
    );
    if args.verbose > 0 {
        for summary in resolved
            .attachments
            .iter()
            .filter_map(|a| a.fan_in_summary())
        {
            eprintln!("        {summary}");
        }
    }
    if args.pass == Some(2) {
        let mut out = std::io::stdout().lock();
        for a in &resolved.attachments {
            if resolved.types.is_host(a.probe) {
                writeln!(out, "{}  # interpreted in kscope's process", a.listing())?;
            } else {
                writeln!(out, "{}", a.listing())?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }

    // A command to run is started now, held at a gate, for target().
    let words = args
        .command
        .as_deref()
        .map(command_words)
        .unwrap_or_default();
    let gated = super::start_command(&words)?;
    let target = match (&gated, args.pid) {
        (Some(g), _) => i64::from(g.id()),
        (None, Some(pid)) => i64::from(pid),
        (None, None) => 0,
    };

    let started = Instant::now();
    let options = kscope_probe::sys::codegen_options(target, needs);
    let generated = resolved
        .generate(&file, &script, &options)
        .map_err(|d| diagnostic(&file, &d))?;
    let Resolved { attachments, types } = resolved;
    let host = HostCode::new(file.clone(), script, types, target);
    let interpreted = attachments.iter().filter(|a| host.is_host(a)).count();
    report(
        3,
        &format!(
            "generated {} BPF programs ({} instructions); {interpreted} probe points interpreted in kscope's process",
            generated.programs.len(),
            generated
                .programs
                .iter()
                .map(|p| p.insns.len())
                .sum::<usize>()
        ),
        started,
    );
    if args.dump_bpf {
        dump(
            &file,
            &generated,
            &attachments,
            &host,
            &mut std::io::stdout().lock(),
        )?;
    }
    if args.pass == Some(3) {
        return Ok(ExitCode::SUCCESS);
    }

    kscope_probe::sys::raise_open_file_limit();
    // Created now, so that a path that cannot be written fails before the
    // session runs; filled and put in place at its end.
    let folded = args
        .folded
        .as_ref()
        .map(|path| {
            kscope_outfile::AtomicFile::create(path)
                .map(|file| (file, path))
                .with_context(|| format!("cannot create {}", path.display()))
        })
        .transpose()?;
    let attachment_count = attachments.len();
    let started = Instant::now();
    let mut session = match Session::load(generated, attachments, host) {
        Ok(s) => s,
        Err(RuntimeError::Rejected {
            point,
            reason,
            diagnostic: d,
        }) => {
            return Err(crate::Diagnosed(format!(
                "{}the verifier's words for {point}: {reason}",
                d.render(&file)
            ))
            .into());
        }
        Err(e) => {
            let too_many_files = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<kscope_bpf::Error>())
                .is_some_and(|b| matches!(b, kscope_bpf::Error::Load { source, .. } if source.raw_os_error() == Some(24)));
            if too_many_files {
                bail!(
                    "cannot load the probes: too many open files (each probe point holds a program and a perf event fd; {} points here): raise the limit with ulimit -n",
                    attachment_count
                );
            }
            return Err(anyhow::Error::new(e).context(privilege_hint()));
        }
    };
    report(
        4,
        &format!(
            "loaded {} programs into the kernel",
            session.program_count()
        ),
        started,
    );
    if args.pass == Some(4) {
        return Ok(ExitCode::SUCCESS);
    }

    kscope_tracefs::handle_interrupt_gracefully();
    let mut out = super::trace_stream::open_output(args.output.as_deref())?;
    let started = Instant::now();
    // The command is let through its gate once every probe is attached;
    // the session ends when it exits.
    let mut gated = gated;
    let child: RefCell<Option<kscope_ftrace::Child>> = RefCell::new(None);
    // A command that could not exec ends the session at once.
    let gate_error = RefCell::new(None);
    let mut attached = || {
        report(5, "attached the probes; running", started);
        if let Some(g) = gated.take() {
            match g.open() {
                Ok(c) => *child.borrow_mut() = Some(c),
                Err(e) => *gate_error.borrow_mut() = Some(e),
            }
        }
    };
    let mut stop = || {
        kscope_tracefs::interrupted()
            || gate_error.borrow().is_some()
            || child
                .borrow_mut()
                .as_mut()
                .is_some_and(|c| !matches!(c.try_wait(), Ok(None)))
    };
    let ending = session.run(&mut out, &mut stop, &mut attached)?;
    if let Some((file, path)) = folded {
        write_folded(&mut session, file)
            .with_context(|| format!("cannot write the folded stacks to {}", path.display()))?;
    }
    drop(session);
    if let Some(e) = gate_error.into_inner() {
        return Err(e.into());
    }
    if let Some(c) = child.into_inner() {
        // Stopped while the command runs (Ctrl-C, SIGTERM, exit()): the
        // command is stopped too.
        super::report_command_end(GatedCommand::finish(c, true)?);
    }
    match ending {
        Ending::Error(message) => {
            eprintln!("ERROR: {message}");
            Ok(ExitCode::FAILURE)
        }
        Ending::Exit | Ending::Stopped => Ok(ExitCode::SUCCESS),
    }
}

/// Writes the session's stack-keyed arrays, folded, to `file` and puts it
/// in place.
fn write_folded(session: &mut Session, file: kscope_outfile::AtomicFile) -> anyhow::Result<()> {
    let folded = session.folded_stacks()?;
    let mut out = std::io::BufWriter::new(file.file());
    folded.write_to(&mut out)?;
    out.flush()?;
    drop(out);
    file.commit()?;
    Ok(())
}

/// The script from -e, a file, or standard input, and the script's
/// arguments: with -e every positional, else those after the file.
fn source(args: &Args) -> anyhow::Result<(SourceFile, Vec<String>)> {
    let strings = |values: &[std::ffi::OsString]| -> anyhow::Result<Vec<String>> {
        values
            .iter()
            .map(|v| {
                v.to_str()
                    .map(String::from)
                    .ok_or_else(|| anyhow::anyhow!("the script argument {v:?} is not UTF-8 text"))
            })
            .collect()
    };
    if let Some(text) = &args.script {
        return Ok((
            SourceFile::new("<input>", text.clone()),
            strings(&args.positionals)?,
        ));
    }
    let Some((path, rest)) = args.positionals.split_first() else {
        bail!(
            "no script: give one with -e 'probe ... {{ ... }}' or as FILE.stp (see kscope probe --help)"
        );
    };
    let rest = strings(rest)?;
    if path == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("cannot read the script from standard input")?;
        return Ok((SourceFile::new("<stdin>", text), rest));
    }
    let path = PathBuf::from(path);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok((SourceFile::new(path.display().to_string(), text), rest))
}

fn diagnostic(file: &SourceFile, d: &Diagnostic) -> anyhow::Error {
    crate::Diagnosed(d.render(file).trim_end().to_string()).into()
}

/// Runs pass 2 (or `-l`'s part of it) on the running kernel, with the
/// hint a user without access to tracefs needs.
fn with_kernel<T>(needs: Needs, f: impl FnOnce(&Kernel<'_>) -> T) -> anyhow::Result<T> {
    kscope_probe::sys::with_kernel(needs, kscope_doctor::running_kernel_hz(), f).map_err(
        |e: KernelError| {
            super::explain_tracefs_refusal(
                e.into(),
                "kscope probe needs root for syscall and tracepoint probes (or CAP_BPF and CAP_PERFMON, and read access to tracefs, /sys/kernel/tracing, which refused this user); run it with sudo",
            )
        },
    )
}

/// What is missing when loading fails for lack of privilege.
fn privilege_hint() -> &'static str {
    if rustix::process::geteuid().is_root() {
        "cannot load the probes"
    } else {
        "cannot load the probes (BPF needs root, or CAP_BPF with CAP_PERFMON)"
    }
}

/// `-p 1`: the probes and what they hold.
fn print_parse(script: &Script, out: &mut impl Write) -> std::io::Result<()> {
    for g in &script.globals {
        writeln!(out, "global {}", g.name)?;
    }
    for f in &script.functions {
        writeln!(
            out,
            "function {}({})",
            f.name,
            f.params
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    for p in &script.probes {
        let points: Vec<String> = p.points.iter().map(points::text).collect();
        writeln!(
            out,
            "probe {} ({} statements)",
            points.join(", "),
            p.body.stmts.len()
        )?;
    }
    Ok(())
}

/// `-l` and `-L`.
fn list(point: &str, with_vars: bool) -> anyhow::Result<ExitCode> {
    let file = SourceFile::new("<point>", format!("probe {point} {{}}"));
    let script = kscope_probe::parse(&file).map_err(|d| diagnostic(&file, &d))?;
    let attachments = with_kernel(Needs::of(&script), |kernel| {
        points::resolve(&script, kernel)
    })?
    .map_err(|d| diagnostic(&file, &d))?;
    let mut out = std::io::stdout().lock();
    for line in points::list(&attachments, with_vars) {
        writeln!(out, "{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--dump-bpf`: every program's instructions, with a comment line each
/// time the source line changes, in attachment order; a host probe, which
/// has no program, is named as interpreted.
fn dump(
    file: &SourceFile,
    generated: &Generated,
    attachments: &[Attachment],
    host: &HostCode,
    out: &mut impl Write,
) -> std::io::Result<()> {
    for (at, attachment) in attachments.iter().enumerate() {
        let Some((index, program)) = generated
            .programs
            .iter()
            .enumerate()
            .find(|(_, p)| p.attachment == at)
        else {
            if host.is_host(attachment) {
                writeln!(
                    out,
                    "; {}: interpreted in kscope's process (it walks arrays or prints histograms), no BPF program",
                    attachment.name
                )?;
            }
            continue;
        };
        writeln!(
            out,
            "; program ks_{index} for {} ({} instructions)",
            attachment.name,
            program.insns.len()
        )?;
        let lines = kscope_bpf::disassemble(&program.insns);
        let mut last_line = 0;
        for (i, (text, span)) in lines.iter().zip(&program.spans).enumerate() {
            let (line, _) = file.line_col(span.start);
            if line != last_line {
                let (source, _) = file.line_at(span.start);
                writeln!(out, ";   {}:{line}: {}", file.name, source.trim())?;
                last_line = line;
            }
            if !text.is_empty() {
                writeln!(out, "{i:6}: {text}")?;
            }
        }
    }
    Ok(())
}
