//! Where a test that needs a kernel feature runs: on the host when the
//! host has the feature (as `kscope doctor` sees it), otherwise in the
//! lab's guest. Under `KSCOPE_REQUIRE_LIVE=1` it must run in one or the
//! other; elsewhere it skips with the reason.

use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kscope_doctor::{Report, Verdict};

use crate::build::build_static;
use crate::error::Result;
use crate::guest::{Batch, Lab, Outcome};
use crate::initramfs::GuestCommand;
use crate::results::{CommandResult, ResultStream};
use crate::tools::{missing_prerequisite, workspace_root};

/// A kernel feature this host may lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// kprobes (kprobe_events).
    Kprobes,
    /// The function tracer.
    FunctionTracer,
    /// /proc/kcore.
    Kcore,
    /// Memory reserved for a crash kernel.
    Kdump,
}

impl Feature {
    /// The id of the doctor check that tells whether it is there.
    pub fn doctor_check(self) -> &'static str {
        match self {
            Feature::Kprobes => "kprobes",
            Feature::FunctionTracer => "function_tracer",
            Feature::Kcore => "kcore",
            Feature::Kdump => "kdump",
        }
    }
}

/// Where commands run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// This machine has every feature.
    Host,
    /// The guest has them; this machine lacks at least one.
    Lab,
}

/// The host's doctor report, taken once per process.
pub fn host_report() -> &'static Report {
    static REPORT: OnceLock<Report> = OnceLock::new();
    REPORT.get_or_init(kscope_doctor::diagnose)
}

/// The features of `features` this host lacks, with doctor's summary.
pub fn missing_on_host(features: &[Feature]) -> Vec<String> {
    let report = host_report();
    features
        .iter()
        .filter_map(|f| {
            let check = report.check(f.doctor_check())?;
            (check.verdict != Verdict::Available)
                .then(|| format!("{}: {}", check.id, check.summary))
        })
        .collect()
}

/// Where commands needing `features` can run, or why nowhere.
pub fn placement(features: &[Feature]) -> std::result::Result<Placement, String> {
    let missing = missing_on_host(features);
    if missing.is_empty() {
        return Ok(Placement::Host);
    }
    match missing_prerequisite() {
        None => Ok(Placement::Lab),
        Some(err) => Err(format!("this host lacks {} and {err}", missing.join("; "))),
    }
}

/// The lab of this process, prepared once.
pub fn shared_lab() -> std::result::Result<&'static Lab, String> {
    static LAB: OnceLock<std::result::Result<Lab, String>> = OnceLock::new();
    LAB.get_or_init(|| Lab::prepare().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// Runs `commands` on the host, each with `sh -c` and the static kscope
/// binaries first on PATH, as they are in the guest.
pub fn run_on_host(name: &str, commands: &[GuestCommand]) -> Result<Batch> {
    let binaries = build_static(workspace_root())?;
    let path = format!(
        "{}:{}",
        binaries.dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let started = Instant::now();
    let mut results = ResultStream::default();
    for command in commands {
        let output = Command::new("sh")
            .args(["-c", &command.script])
            .env("PATH", &path)
            .output();
        let (status, stdout, stderr) = match output {
            Ok(o) => (o.status.code().or(Some(128)), o.stdout, o.stderr),
            Err(err) => (Some(127), Vec::new(), err.to_string().into_bytes()),
        };
        results.commands.push(CommandResult {
            name: command.name.clone(),
            status,
            stdout,
            stderr,
        });
    }
    results.done = true;
    Ok(Batch {
        outcome: Outcome::Completed,
        results,
        console: String::new(),
        run_dir: workspace_root().join(format!("target/lab/runs/{name}-host")),
        elapsed: started.elapsed(),
    })
}

/// For tests: runs `commands` where `features` exist, on the host or in
/// the lab, and returns the batch with where it ran. Returns `None` (the
/// reason printed) when neither can, or panics under
/// `KSCOPE_REQUIRE_LIVE=1`; panics when the lab cannot be prepared.
pub fn run_for_test(
    what: &str,
    features: &[Feature],
    name: &str,
    commands: &[GuestCommand],
    deadline: Duration,
) -> Option<(Placement, Batch)> {
    let placement = match placement(features) {
        Ok(placement) => placement,
        Err(reason) => {
            kscope_testkit::live(what, Some(reason));
            return None;
        }
    };
    let batch = match placement {
        Placement::Host => run_on_host(name, commands),
        Placement::Lab => {
            let lab = shared_lab().unwrap_or_else(|e| panic!("the guest lab cannot start: {e}"));
            lab.run(name, commands, deadline)
        }
    };
    Some((placement, batch.unwrap_or_else(|e| panic!("{what}: {e}"))))
}
