//! The verdicts: one pure function per check, from [`Facts`] to a
//! [`Check`], in the order `kscope doctor` prints them. Nothing here reads
//! a file or calls the kernel, so each verdict is tested on recorded or
//! made-up facts (tests/it).

mod dumps;
mod kernel;
mod tracing;

use crate::facts::{Facts, Failure, TracefsFacts, TracefsLook};
use crate::parse::config::OptionValue;
use crate::{Check, Report, SCHEMA_VERSION, Verdict};

/// Every check on `facts`.
pub(crate) fn judge(facts: &Facts) -> Report {
    let checks = vec![
        tracing::tracefs(facts),
        tracing::tracepoints(facts),
        tracing::uprobes(facts),
        tracing::kprobes(facts),
        tracing::function_tracer(facts),
        kernel::bpf(facts),
        kernel::btf(facts),
        kernel::perf_events(facts),
        kernel::kallsyms(facts),
        kernel::kernel_config(facts),
        kernel::lockdown(facts),
        dumps::core_dumps(facts),
        dumps::kdump(facts),
        dumps::kcore(facts),
        kernel::modules(facts),
        kernel::debuginfo(facts),
        tracing::leftovers(facts),
    ];
    let mounted_tracefs = match &facts.tracefs {
        TracefsFacts::Usable(look) => look.mounted_by_us,
        TracefsFacts::Unreadable { mounted_by_us, .. } => *mounted_by_us,
        TracefsFacts::Absent { .. } => false,
    };
    Report {
        schema: SCHEMA_VERSION,
        kernel: facts.kernel.clone(),
        config_source: facts
            .config
            .as_ref()
            .map(|c| c.source.display().to_string()),
        mounted_tracefs,
        checks,
    }
}

fn check(id: &'static str, verdict: Verdict, summary: impl Into<String>) -> Check {
    Check {
        id,
        verdict,
        summary: summary.into(),
        evidence: Vec::new(),
        needs: None,
        instead: None,
    }
}

impl Check {
    fn evidence(mut self, line: impl Into<String>) -> Check {
        self.evidence.push(line.into());
        self
    }

    fn needs(mut self, what: impl Into<String>) -> Check {
        self.needs = Some(what.into());
        self
    }

    fn instead(mut self, what: impl Into<String>) -> Check {
        self.instead = Some(what.into());
        self
    }
}

/// Denied when the kernel refused us (EPERM, EACCES), `otherwise` when
/// it failed in another way.
fn denied_or(failure: &Failure, otherwise: Verdict) -> Verdict {
    if failure.is_denial() {
        Verdict::Denied
    } else {
        otherwise
    }
}

/// A setting as evidence: its value, or `?` when it was unreadable.
fn setting(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("?")
}

/// A kernel command-line parameter (`name` ends in `=`) as evidence.
fn parameter_evidence(facts: &Facts, name: &str) -> String {
    facts
        .kernel_parameters
        .iter()
        .find(|word| word.starts_with(name))
        .map_or_else(
            || format!("no {name} on the kernel command line"),
            |word| format!("kernel command line has {word}"),
        )
}

/// "present" or "absent".
fn presence(exists: bool) -> &'static str {
    if exists { "present" } else { "absent" }
}

impl Facts {
    /// `CONFIG_X=y` / `CONFIG_X is not set` from the config, or a note that
    /// the config is not readable.
    fn config_says(&self, option: &str) -> String {
        match &self.config {
            Some(config) => format!("{} ({})", config.describe(option), config.source.display()),
            None => format!("{option}: no kernel config to read"),
        }
    }

    fn config_enabled(&self, option: &str) -> Option<bool> {
        self.config
            .as_ref()
            .map(|c| c.get(option) == OptionValue::Enabled)
    }

    /// What was seen in a readable tracefs, or the verdict for a check
    /// `id` that needs one.
    fn tracefs_for(&self, id: &'static str) -> Result<&TracefsLook, Check> {
        match &self.tracefs {
            TracefsFacts::Usable(look) => Ok(look),
            TracefsFacts::Unreadable { root, listing, .. } => Err(check(
                id,
                Verdict::Denied,
                format!("{} is not readable by this user", root.display()),
            )
            .evidence(format!(
                "listing {}: {}",
                root.display(),
                listing.errno_name()
            ))
            .needs("root (tracefs is readable by root only)")),
            TracefsFacts::Absent { .. } => {
                Err(
                    check(id, Verdict::Unknown, "tracefs is not available to look")
                        .needs("tracefs (see the tracefs line)"),
                )
            }
        }
    }
}
