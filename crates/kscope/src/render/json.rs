//! JSON output: one pretty-printed document on stdout, newline-terminated.

use std::io::Write;

/// Prints `value` as JSON to stdout.
pub fn print(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}
