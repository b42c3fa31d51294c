//! doctor's verdicts without a kernel: on facts recorded on real machines
//! and users (tests/facts, see its README), and on facts whose syscall
//! answers (EPERM, ENOENT, ...) a test made up.

mod recorded;
mod syscalls;

use std::path::PathBuf;

use kscope_doctor::{Check, Facts, Report, Verdict};

/// Where the recorded facts and the reports doctor printed with them are.
fn facts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/facts")
}

/// The facts recorded as tests/facts/NAME.json.
fn recorded_facts(name: &str) -> Facts {
    let path = facts_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The check `id` of a report.
fn check<'a>(report: &'a Report, id: &str) -> &'a Check {
    report
        .check(id)
        .unwrap_or_else(|| panic!("no check {id} in {report:?}"))
}

/// The check `id` on `facts`.
fn judged(facts: &Facts, id: &str) -> Check {
    check(&facts.judge(), id).clone()
}

/// The verdicts of every check, in order, as `(id, verdict)`.
fn verdicts(report: &Report) -> Vec<(&'static str, Verdict)> {
    report.checks.iter().map(|c| (c.id, c.verdict)).collect()
}
