//! What the running kernel lets a debugger do, and why not.
//!
//! This crate holds the checks behind `kscope doctor`: one [`Check`] per
//! capability (tracefs, tracepoints, uprobes, kprobes, the function tracer,
//! BPF, BTF, perf events, kallsyms, the kernel config, lockdown, core dumps,
//! kdump, /proc/kcore, modules, kernel debuginfo, and what killed kscope
//! sessions left behind), each with a [`Verdict`],
//! the evidence it rests on and, when something is missing, what would
//! provide it and the nearest thing that works.
//!
//! A diagnosis has two halves. [`Facts::gather`] looks at the running
//! kernel (its `sys` module makes every read, open and syscall, or calls
//! the file reader that does) and
//! records what it saw as [`Facts`], plain data that serialises to JSON;
//! [`Facts::judge`] turns facts into the [`Report`] without touching the
//! kernel. The verdicts are tested on facts recorded on other machines
//! and users (tests/facts) and on made-up syscall answers.
//!
//! The checks only look. When tracefs or securityfs is not mounted,
//! [`diagnose`] mounts it in a private mount namespace of the process's
//! own (`kscope_tracefs::mount_privately`; nobody else sees the mount, and
//! it ends with the process), so that it can look inside. Probing BPF loads
//! a two-instruction program and closes it; probing perf opens a disabled
//! software counter and closes it. Neither leaves anything behind. The
//! `leftovers` check lists what killed kscope sessions left (their
//! journals under /run/kscope) and undoes nothing.
//!
//! ```no_run
//! let report = kscope_doctor::diagnose();
//! for check in &report.checks {
//!     println!("{:?} {}: {}", check.verdict, check.id, check.summary);
//! }
//! // The same in its two halves, with the facts kept to judge elsewhere.
//! let facts = kscope_doctor::Facts::gather();
//! let recorded = serde_json::to_string(&facts)?;
//! let replayed: kscope_doctor::Facts = serde_json::from_str(&recorded)?;
//! assert_eq!(replayed.judge().checks.len(), report.checks.len());
//! # Ok::<(), serde_json::Error>(())
//! ```

mod debuginfo;
mod facts;
pub mod parse;
mod sys;
mod verdicts;

use serde::{Deserialize, Serialize};

pub use debuginfo::{DebugCandidate, vmlinux_candidates};
pub use facts::{
    BtfHead, ConfigFacts, ControlFile, EventsFacts, Facts, Failure, LeftoverJournal, Leftovers,
    Pmus, Securityfs, Settings, TracefsFacts, TracefsLook,
};

/// The version of the JSON document `kscope doctor --json` prints. It
/// changes only when a field is removed or changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

// The two halves meet here, at the root, so that facts, sys and verdicts
// need not know each other beyond the facts.
impl Facts {
    /// Gathers the facts of the running kernel. When tracefs or
    /// securityfs is not mounted, mounts it in the process's private
    /// mount namespace first (see the crate doc); loads and unloads one
    /// BPF program and opens and closes one perf counter.
    pub fn gather() -> Facts {
        sys::gather()
    }

    /// The verdicts on these facts.
    pub fn judge(&self) -> Report {
        verdicts::judge(self)
    }
}

/// CONFIG_HZ of the running kernel (what `jiffies_to_msecs` in event text
/// divides by); 250, Debian's, when its configuration cannot be read.
pub fn running_kernel_hz() -> u64 {
    sys::running_config()
        .and_then(|config| config.hz())
        .unwrap_or(250)
}

/// Whether a capability can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// It works here.
    Available,
    /// The kernel lacks it (not built in, not set up).
    Missing,
    /// The kernel has it but refuses us (permissions, a limit, a policy).
    Denied,
    /// It could not be told from here; the evidence says why.
    Unknown,
}

impl Verdict {
    /// The word used in text output.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Available => "available",
            Verdict::Missing => "missing",
            Verdict::Denied => "denied",
            Verdict::Unknown => "unknown",
        }
    }
}

/// One capability and the verdict on it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// A stable identifier (`tracefs`, `kprobes`, `function_tracer`, ...).
    pub id: &'static str,
    /// The verdict.
    pub verdict: Verdict,
    /// One line saying what was found.
    pub summary: String,
    /// The observations the verdict rests on.
    pub evidence: Vec<String>,
    /// For a capability that is not available: the kernel option,
    /// permission or setting that would provide it.
    pub needs: Option<String>,
    /// For a capability that is not available: the nearest thing that
    /// works here.
    pub instead: Option<String>,
}

/// The running kernel's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelIdentity {
    /// `uname -r`.
    pub release: String,
    /// `uname -v`.
    pub version: String,
    /// The machine architecture.
    pub machine: String,
    /// The GNU build-id from /sys/kernel/notes, in hex.
    pub build_id: Option<String>,
}

/// The whole diagnosis.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// The kernel looked at.
    pub kernel: KernelIdentity,
    /// Where the kernel configuration was read from, if anywhere.
    pub config_source: Option<String>,
    /// True when tracefs was not mounted and the diagnosis mounted it for
    /// its own look, in the process's private mount namespace.
    pub mounted_tracefs: bool,
    /// One entry per capability, in a fixed order.
    pub checks: Vec<Check>,
}

impl Report {
    /// The check with this id.
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// How many checks have this verdict.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.checks.iter().filter(|c| c.verdict == verdict).count()
    }
}

/// Runs every check against the running kernel: the verdicts on the
/// facts gathered now.
pub fn diagnose() -> Report {
    Facts::gather().judge()
}
