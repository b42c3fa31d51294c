//! The verdicts on tracing: tracefs itself, tracepoints, uprobes,
//! kprobes, the function tracer, and what killed kscope sessions left.

use super::{check, denied_or, presence};
use crate::facts::{ControlFile, EventsFacts, Facts, KPROBE_PMU, TracefsFacts, UPROBE_PMU};
use crate::{Check, Verdict};

pub(super) fn tracefs(facts: &Facts) -> Check {
    let look = match &facts.tracefs {
        TracefsFacts::Usable(look) => look,
        TracefsFacts::Unreadable { root, listing, .. } => {
            return check(
                "tracefs",
                Verdict::Denied,
                format!(
                    "mounted at {}, but not readable by this user",
                    root.display()
                ),
            )
            .evidence(format!(
                "listing {}: {}",
                root.display(),
                listing.errno_name()
            ))
            .needs("root (tracefs is readable by root only)")
            .instead("perf events and BPF where perf_event_paranoid allows them");
        }
        TracefsFacts::Absent {
            error,
            known_filesystem,
        } => {
            let (verdict, needs) = if *known_filesystem {
                (Verdict::Denied, "root (or CAP_SYS_ADMIN) to mount tracefs")
            } else {
                (Verdict::Missing, "CONFIG_TRACING=y (tracefs)")
            };
            return check("tracefs", verdict, error.clone())
                .evidence(if *known_filesystem {
                    "/proc/filesystems lists tracefs"
                } else {
                    "/proc/filesystems does not list tracefs"
                })
                .needs(needs)
                .instead("perf events and BPF, which do not need tracefs");
        }
    };
    let root = look.root.display().to_string();
    let mut result = if look.read_only {
        check(
            "tracefs",
            Verdict::Denied,
            format!("mounted read-only at {root}"),
        )
        .needs("a read-write tracefs mount (mount -o remount,rw tracefs)")
    } else {
        check(
            "tracefs",
            Verdict::Available,
            format!("mounted read-write at {root}"),
        )
    };
    if look.mounted_by_us {
        result = result.evidence(format!(
            "it was not mounted: kscope mounted it at {root} in a private mount namespace of its own for this check (nobody else sees that mount; it ends with doctor)"
        ));
    } else {
        result = result.evidence(format!("/proc/self/mountinfo: tracefs at {root}"));
    }
    // Instances that killed kscope sessions left are the `leftovers`
    // check's, from their journals.
    result.evidence(format!(
        "{} instance(s) in {root}/instances",
        look.instances
    ))
}

/// What kscope sessions killed before they could clean up left (their
/// journals under /run/kscope, whose lock no live process holds). Doctor
/// only lists them; any tracing command undoes them.
pub(super) fn leftovers(facts: &Facts) -> Check {
    let dir = facts.leftovers.run_dir.display().to_string();
    let found = match &facts.leftovers.found {
        Ok(found) => found,
        Err(err) => {
            return check(
                "leftovers",
                Verdict::Unknown,
                "cannot look for what killed kscope sessions left",
            )
            .evidence(err.clone())
            .needs(format!("root (to read {dir})"));
        }
    };
    if found.is_empty() {
        return check(
            "leftovers",
            Verdict::Available,
            "no kscope session left changes behind",
        )
        .evidence(format!("no journal without a live owner in {dir}"));
    }
    let everything: Vec<String> = found
        .iter()
        .flat_map(|l| {
            l.changes.iter().cloned().chain(
                l.corrupt
                    .iter()
                    .map(|_| format!("unreadable journal {}", l.journal.display())),
            )
        })
        .collect();
    let mut result = check(
        "leftovers",
        Verdict::Denied,
        format!(
            "{} kscope session(s) died without cleaning up: {}",
            found.len(),
            everything.join(", ")
        ),
    );
    for leftover in found {
        let owner = leftover
            .pid
            .map_or_else(String::new, |pid| format!(" (pid {pid})"));
        result = result.evidence(match &leftover.corrupt {
            Some(why) => format!(
                "{}{owner} cannot be read: {why}",
                leftover.journal.display()
            ),
            None => format!(
                "{}{owner}: {}; by hand: {}",
                leftover.journal.display(),
                leftover.changes.join(", "),
                leftover.commands.join("; ")
            ),
        });
    }
    result
        .needs("any tracing command (kscope trace list -t, for one) undoes them first; doctor changes nothing")
        .instead("the commands in the evidence, by hand")
}

pub(super) fn tracepoints(facts: &Facts) -> Check {
    let look = match facts.tracefs_for("tracepoints") {
        Ok(look) => look,
        Err(verdict) => return verdict,
    };
    let path = look.root.join("available_events");
    let list = match &look.events {
        EventsFacts::Listed(list) => list,
        EventsFacts::Unreadable(failure) => {
            return check(
                "tracepoints",
                denied_or(failure, Verdict::Missing),
                format!("cannot read {}: {}", path.display(), failure.errno_name()),
            )
            .needs("CONFIG_TRACEPOINTS=y and read access to tracefs");
        }
        EventsFacts::Failed(error) => {
            return check("tracepoints", Verdict::Unknown, error.clone());
        }
    };
    if list.events == 0 {
        return check(
            "tracepoints",
            Verdict::Missing,
            "no trace events are listed",
        )
        .evidence(format!("{} is empty", path.display()))
        .needs("CONFIG_TRACEPOINTS=y with CONFIG_EVENT_TRACING=y");
    }
    let summary = format!(
        "{} events in {} systems; syscalls: {} sys_enter and {} sys_exit events",
        list.events, list.systems, list.sys_enter, list.sys_exit
    );
    let result = check("tracepoints", Verdict::Available, summary).evidence(format!(
        "{}: {} lines",
        path.display(),
        list.events
    ));
    if list.sys_enter == 0 {
        return result
            .evidence("no syscalls:* events")
            .evidence(facts.config_says("CONFIG_FTRACE_SYSCALLS"));
    }
    result
}

pub(super) fn uprobes(facts: &Facts) -> Check {
    let pmu = format!("perf PMU {UPROBE_PMU}: {}", presence(facts.pmus.uprobe));
    let look = match facts.tracefs_for("uprobes") {
        Ok(look) => look,
        Err(verdict) => return verdict.evidence(pmu),
    };
    let file = look.root.join("uprobe_events");
    match &look.uprobe_events {
        ControlFile::Absent => check(
            "uprobes",
            Verdict::Missing,
            "the kernel has no uprobe events",
        )
        .evidence(format!("{} does not exist", file.display()))
        .evidence(facts.config_says("CONFIG_UPROBE_EVENTS"))
        .needs("CONFIG_UPROBES=y and CONFIG_UPROBE_EVENTS=y")
        .instead("tracepoints, and user-space core dumps for post-mortem views"),
        ControlFile::Writable => check(
            "uprobes",
            Verdict::Available,
            "user-space probes can be defined",
        )
        .evidence(format!("{} opens for writing", file.display()))
        .evidence(pmu)
        .evidence(facts.config_says("CONFIG_UPROBE_EVENTS")),
        ControlFile::Refused(failure) => {
            check("uprobes", Verdict::Denied, "uprobe_events refuses writes")
                .evidence(format!(
                    "opening {} for writing: {}",
                    file.display(),
                    failure.errno_name()
                ))
                .needs("root, and no lockdown or security module that refuses tracefs writes")
        }
    }
}

pub(super) fn kprobes(facts: &Facts) -> Check {
    let look = match &facts.tracefs {
        TracefsFacts::Usable(look) => Some(look),
        _ => None,
    };
    let file = look.map(|look| look.root.join("kprobe_events"));
    let control = look.map_or(&ControlFile::Absent, |look| &look.kprobe_events);
    let evidence_file = match &file {
        Some(path) if *control != ControlFile::Absent => format!("{} exists", path.display()),
        Some(path) => format!("{} does not exist", path.display()),
        None => "tracefs is not available to this user to look for kprobe_events".to_string(),
    };
    let (file, failure) = match (file, control) {
        (Some(file), ControlFile::Writable) => (file, None),
        (Some(file), ControlFile::Refused(failure)) => (file, Some(failure)),
        _ if !facts.pmus.kprobe => {
            let why = match facts.config_enabled("CONFIG_KPROBES") {
                Some(false) => "CONFIG_KPROBES is not set",
                Some(true) => "CONFIG_KPROBE_EVENTS is not set",
                None => "no kprobe support is visible",
            };
            return check("kprobes", Verdict::Missing, format!("no kprobes: {why}"))
                .evidence(evidence_file)
                .evidence(format!("perf PMU {KPROBE_PMU}: absent"))
                .evidence(facts.config_says("CONFIG_KPROBES"))
                .evidence(facts.config_says("CONFIG_KPROBE_EVENTS"))
                .needs("CONFIG_KPROBES=y and CONFIG_KPROBE_EVENTS=y")
                .instead(
                    "tracepoints: syscalls:sys_enter_read instead of a probe on vfs_read, \
                     sched:* and block:* for scheduling and I/O; uprobes for user space",
                );
        }
        _ => {
            return check(
                "kprobes",
                Verdict::Available,
                "kprobes through perf (BPF) only",
            )
            .evidence(evidence_file)
            .evidence(format!("perf PMU {KPROBE_PMU}: present"));
        }
    };
    match failure {
        None => check(
            "kprobes",
            Verdict::Available,
            "kernel probes can be defined",
        )
        .evidence(format!("{} opens for writing", file.display()))
        .evidence(format!(
            "perf PMU {KPROBE_PMU}: {}",
            presence(facts.pmus.kprobe)
        ))
        .evidence(facts.config_says("CONFIG_KPROBE_EVENTS")),
        Some(failure) => check("kprobes", Verdict::Denied, "kprobe_events refuses writes")
            .evidence(format!(
                "opening {} for writing: {}",
                file.display(),
                failure.errno_name()
            ))
            .needs("root, and lockdown off (kprobes are refused in integrity mode)")
            .instead("tracepoints"),
    }
}

pub(super) fn function_tracer(facts: &Facts) -> Check {
    let look = match facts.tracefs_for("function_tracer") {
        Ok(look) => look,
        Err(verdict) => return verdict,
    };
    let tracers_path = look.root.join("available_tracers");
    let tracers = &look.available_tracers;
    let listed: Vec<&str> = tracers.split_whitespace().collect();
    if !listed.contains(&"function") {
        return check(
            "function_tracer",
            Verdict::Missing,
            "the function tracer is not built in",
        )
        .evidence(format!("{}: {}", tracers_path.display(), tracers))
        .evidence(facts.config_says("CONFIG_FUNCTION_TRACER"))
        .needs("CONFIG_FUNCTION_TRACER=y (and CONFIG_DYNAMIC_FTRACE=y)")
        .instead("tracepoints");
    }
    let graph = if listed.contains(&"function_graph") {
        "function and function_graph"
    } else {
        "function"
    };
    let tracers_evidence = format!("{}: {}", tracers_path.display(), tracers);
    let enabled = facts.settings.ftrace_enabled.as_deref();
    let enabled_evidence = format!(
        "/proc/sys/kernel/ftrace_enabled: {}",
        enabled.unwrap_or("unreadable")
    );
    let filter = look.root.join("set_ftrace_filter");
    match &look.set_ftrace_filter {
        Err(failure) if failure.is_denial() => check(
            "function_tracer",
            Verdict::Denied,
            format!("{graph} tracers are built in but the kernel refuses their control files"),
        )
        .evidence(tracers_evidence)
        .evidence(format!(
            "opening {}: {}",
            filter.display(),
            failure.errno_name()
        ))
        .evidence(enabled_evidence)
        .needs(
            "a kernel whose security policy allows ftrace function tracing \
             (here a security module or sandbox refuses it even to root)",
        )
        .instead("tracepoints; or the function tracer in a guest (scripts/lab)"),
        Err(failure) => check(
            "function_tracer",
            Verdict::Missing,
            format!("{} cannot be opened", filter.display()),
        )
        .evidence(tracers_evidence)
        .evidence(format!(
            "opening {}: {}",
            filter.display(),
            failure.errno_name()
        ))
        .needs("CONFIG_DYNAMIC_FTRACE=y")
        .instead("tracepoints"),
        Ok(()) if enabled == Some("0") => check(
            "function_tracer",
            Verdict::Denied,
            "the function tracer is switched off (ftrace_enabled is 0)",
        )
        .evidence(tracers_evidence)
        .evidence(enabled_evidence)
        .needs("sysctl kernel.ftrace_enabled=1")
        .instead("tracepoints"),
        Ok(()) => check(
            "function_tracer",
            Verdict::Available,
            format!("{graph} tracers can be used"),
        )
        .evidence(tracers_evidence)
        .evidence(format!("{} opens", filter.display()))
        .evidence(enabled_evidence),
    }
}
