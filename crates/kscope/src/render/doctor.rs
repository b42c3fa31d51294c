//! The text form of the doctor report: a header with the kernel's
//! identity, one line per capability (verdict, name, summary), then its
//! evidence and, when not available, what it needs and what to use instead.

use std::io::{self, Write};

use kscope_doctor::{Report, Verdict};

use super::text::{Style, Tone};

const VERDICT_WIDTH: usize = 9;
const ID_WIDTH: usize = 15;

fn tone(verdict: Verdict) -> Tone {
    match verdict {
        Verdict::Available => Tone::Good,
        Verdict::Missing => Tone::Bad,
        Verdict::Denied => Tone::Warn,
        Verdict::Unknown => Tone::Dim,
    }
}

/// Writes the report to `out`.
pub fn write(out: &mut impl Write, report: &Report, brief: bool, style: Style) -> io::Result<()> {
    let kernel = &report.kernel;
    writeln!(out, "kernel {} ({})", kernel.release, kernel.machine)?;
    if !brief {
        writeln!(out, "  {}", kernel.version)?;
        if let Some(id) = &kernel.build_id {
            writeln!(out, "  build-id {id}")?;
        }
    }
    writeln!(out)?;
    let indent = " ".repeat(2 + VERDICT_WIDTH + 1 + ID_WIDTH + 1);
    for check in &report.checks {
        let verdict = format!("{:<VERDICT_WIDTH$}", check.verdict.as_str());
        writeln!(
            out,
            "  {} {:<ID_WIDTH$} {}",
            style.paint(tone(check.verdict), &verdict),
            check.id,
            check.summary
        )?;
        if brief {
            continue;
        }
        for line in &check.evidence {
            writeln!(
                out,
                "{indent}{}",
                style.paint(Tone::Dim, &format!("- {line}"))
            )?;
        }
        if let Some(needs) = &check.needs {
            writeln!(out, "{indent}needs:   {needs}")?;
        }
        if let Some(instead) = &check.instead {
            writeln!(out, "{indent}instead: {instead}")?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "{} available, {} missing, {} denied, {} unknown",
        report.count(Verdict::Available),
        report.count(Verdict::Missing),
        report.count(Verdict::Denied),
        report.count(Verdict::Unknown)
    )
}

/// Prints the report on stdout.
pub fn print(report: &Report, brief: bool, style: Style) -> io::Result<()> {
    write(&mut io::stdout().lock(), report, brief, style)
}
