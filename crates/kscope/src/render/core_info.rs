//! The text of `kscope core info`: the process, the signal, and each
//! thread's frames in gdb's `bt` style, a run of the same frame (a
//! runaway recursion) folded into one line; `--full` adds the registers.

use std::io::Write;

use kscope_coredump::{CoreReport, FrameReport, Mismatch};

/// The warning printed on stderr for a module whose file is another build.
pub fn mismatch_warning(mismatch: &Mismatch) -> String {
    format!(
        "kscope: warning: {} is not the build that crashed (build-id {} in the core, {} in the file; rebuilt since?): its frames are shown without symbols",
        mismatch.file.display(),
        mismatch.core_build_id,
        mismatch.file_build_id.as_deref().unwrap_or("none"),
    )
}

/// `#N  0xPC in function+0xoff at file:line [inlined] (module)`.
fn frame_line(frame: &FrameReport) -> String {
    let mut line = format!("#{:<2} {:#018x} in ", frame.index, frame.pc);
    let symbols = &frame.symbols;
    line.push_str(symbols.function.as_deref().unwrap_or("??"));
    if let Some(offset) = symbols.offset {
        line.push_str(&format!("+{offset:#x}"));
    }
    if let Some(file) = &symbols.file {
        line.push_str(&format!(" at {file}:{}", symbols.line.unwrap_or(0)));
    }
    if symbols.inlined {
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
    let (x, y) = (&a.symbols, &b.symbols);
    a.pc == b.pc
        && x.function == y.function
        && x.file == y.file
        && x.line == y.line
        && x.inlined == y.inlined
        && a.signal_trampoline == b.signal_trampoline
}

/// Prints `report` on stdout.
pub fn print(report: &CoreReport) -> anyhow::Result<()> {
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
