//! `kscope doctor` on the running kernel: it changes nothing, its JSON is
//! complete, and each verdict agrees with what the kernel shows by simpler
//! means.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use kscope_testkit::{TracefsLock, assert_tracefs_unchanged_by, live, missing_root};
use kscope_tracefs::{StateGuard, Tracefs};
use serde_json::Value;

use crate::{kscope, stdout};

const IDS: &[&str] = &[
    "tracefs",
    "tracepoints",
    "uprobes",
    "kprobes",
    "function_tracer",
    "bpf",
    "btf",
    "perf_events",
    "kallsyms",
    "kernel_config",
    "lockdown",
    "core_dumps",
    "kdump",
    "kcore",
    "modules",
    "debuginfo",
    "leftovers",
];

fn doctor_json() -> Value {
    let output = kscope(&["doctor", "--json"]);
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("doctor --json is JSON")
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no check {id}"))
}

fn verdict<'a>(report: &'a Value, id: &str) -> &'a str {
    check(report, id)["verdict"].as_str().unwrap_or_default()
}

fn evidence(report: &Value, id: &str) -> String {
    check(report, id)["evidence"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[test]
fn doctor_leaves_tracefs_byte_for_byte_unchanged() {
    if !live("doctor leaves tracefs unchanged", missing_root()) {
        return;
    }
    let _lock = TracefsLock::acquire();
    let outer = StateGuard::new();
    let fs = outer.tracefs().expect("tracefs");
    assert_tracefs_unchanged_by("kscope doctor", fs.root(), || {
        assert!(kscope(&["doctor"]).status.success());
        assert!(kscope(&["doctor", "--json"]).status.success());
    });
    outer.restore().expect("restore");
}

#[test]
fn doctor_mounts_an_absent_tracefs_only_for_its_look() {
    if !live("doctor and the tracefs mount", missing_root()) {
        return;
    }
    let _lock = TracefsLock::acquire();
    let was_mounted = Tracefs::find().expect("mountinfo").is_some();
    let securityfs_mounts = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .expect("mountinfo")
            .lines()
            .filter(|l| l.contains(" - securityfs "))
            .count()
    };
    let securityfs_before = securityfs_mounts();
    let report = doctor_json();
    assert_eq!(report["mounted_tracefs"], Value::Bool(!was_mounted));
    assert_eq!(Tracefs::find().expect("mountinfo").is_some(), was_mounted);
    assert_eq!(
        securityfs_mounts(),
        securityfs_before,
        "securityfs left (un)mounted"
    );
    assert_ne!(
        verdict(&report, "lockdown"),
        "unknown",
        "securityfs was there to read"
    );
    assert_eq!(verdict(&report, "tracefs"), "available");
    if !was_mounted {
        assert!(evidence(&report, "tracefs").contains("kscope mounted it"));
    }
}

#[test]
fn doctor_json_has_every_check_in_the_documented_shape() {
    if !live("doctor --json", missing_root()) {
        return;
    }
    let _lock = TracefsLock::acquire();
    let report = doctor_json();
    assert_eq!(report["schema"], 1);
    assert!(
        report["kernel"]["release"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    let ids: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, IDS);
    for id in IDS {
        let c = check(&report, id);
        let v = verdict(&report, id);
        assert!(
            ["available", "missing", "denied", "unknown"].contains(&v),
            "{id}: {v}"
        );
        assert!(c["summary"].as_str().is_some_and(|s| !s.is_empty()), "{id}");
        if v == "missing" || v == "denied" {
            assert!(
                c["needs"].is_string(),
                "{id} is {v} but says nothing of what it needs"
            );
        }
    }
}

#[test]
fn doctor_json_passes_through_python_json_tool() {
    if !live("doctor --json | python3 -m json.tool", missing_root()) {
        return;
    }
    let _lock = TracefsLock::acquire();
    let output = kscope(&["doctor", "--json"]);
    let mut python = Command::new("python3")
        .args(["-m", "json.tool"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("python3");
    python
        .stdin
        .take()
        .expect("stdin")
        .write_all(&output.stdout)
        .expect("write");
    assert!(python.wait().expect("wait").success());
}

#[test]
fn doctor_verdicts_agree_with_the_kernel() {
    if !live("doctor verdicts", missing_root()) {
        return;
    }
    let _lock = TracefsLock::acquire();
    let outer = StateGuard::new();
    let fs = outer.tracefs().expect("tracefs");
    let root = fs.root().to_path_buf();
    let report = doctor_json();

    // Tracepoints: the count is the kernel's own list.
    let events = std::fs::read_to_string(root.join("available_events")).expect("events");
    let count = events.lines().count();
    let summary = check(&report, "tracepoints")["summary"]
        .as_str()
        .unwrap_or_default();
    assert!(
        summary.starts_with(&format!("{count} events")),
        "{summary} vs {count}"
    );
    assert_eq!(verdict(&report, "tracepoints"), "available");

    // kprobes: the control file exists exactly when doctor says they do.
    if root.join("kprobe_events").exists() {
        assert_eq!(verdict(&report, "kprobes"), "available");
    } else {
        assert_eq!(verdict(&report, "kprobes"), "missing");
        let summary = check(&report, "kprobes")["summary"]
            .as_str()
            .unwrap_or_default();
        assert!(summary.contains("CONFIG_KPROBE"), "{summary}");
    }

    // Function tracer: denied exactly when its filter file refuses us.
    match std::fs::File::open(root.join("set_ftrace_filter")) {
        Err(err) if err.raw_os_error() == Some(1) => {
            assert_eq!(verdict(&report, "function_tracer"), "denied");
            assert!(evidence(&report, "function_tracer").contains("EPERM"));
        }
        Ok(_) => assert_eq!(verdict(&report, "function_tracer"), "available"),
        Err(_) => assert_eq!(verdict(&report, "function_tracer"), "missing"),
    }

    // uprobes, BTF, kcore: presence of their files.
    let present = |path: &Path, id: &str, yes: &str, no: &str| {
        let expected = if path.exists() { yes } else { no };
        assert_eq!(verdict(&report, id), expected, "{id} vs {}", path.display());
    };
    present(
        &root.join("uprobe_events"),
        "uprobes",
        "available",
        "missing",
    );
    present(
        Path::new("/sys/kernel/btf/vmlinux"),
        "btf",
        "available",
        "missing",
    );
    present(Path::new("/proc/kcore"), "kcore", "available", "missing");

    // BPF and perf: the same operations through the library directly.
    let bpf_loads = kscope_bpf::Program::load(
        kscope_bpf::ProgramType::Tracepoint,
        "kscope_agree",
        &[kscope_bpf::Insn::mov64_imm(0, 0), kscope_bpf::Insn::exit()],
    )
    .is_ok();
    assert_eq!(verdict(&report, "bpf") == "available", bpf_loads);
    let perf_opens =
        kscope_bpf::PerfEvent::software_counter(kscope_bpf::SoftwareEvent::TaskClock).is_ok();
    assert_eq!(verdict(&report, "perf_events") == "available", perf_opens);

    // kallsyms: real addresses when the first one is not zero.
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").expect("kallsyms");
    let first = kallsyms.split_whitespace().next().unwrap_or("0");
    let real = u64::from_str_radix(first, 16).unwrap_or(0) != 0;
    assert_eq!(verdict(&report, "kallsyms") == "available", real);

    // Core dumps: a file pattern with a zero soft limit leaves no core.
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").expect("core_pattern");
    let limits = std::fs::read_to_string("/proc/self/limits").expect("limits");
    let soft_zero = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .and_then(|l| l.split_whitespace().nth(4))
        == Some("0");
    let handed_over = pattern.starts_with('|') || pattern.starts_with('@');
    let expected = if !handed_over && soft_zero {
        "denied"
    } else {
        "available"
    };
    assert_eq!(verdict(&report, "core_dumps"), expected);
    outer.restore().expect("restore");
}

#[test]
fn doctor_text_has_one_line_per_check_and_a_total() {
    if !live("doctor text", missing_root()) {
        return;
    }
    let _lock = TracefsLock::acquire();
    let brief = stdout(&kscope(&["doctor", "--brief"]));
    for id in IDS {
        let line = brief
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(id))
            .unwrap_or_else(|| panic!("no line for {id} in:\n{brief}"));
        let word = line.split_whitespace().next().unwrap_or_default();
        assert!(
            ["available", "missing", "denied", "unknown"].contains(&word),
            "{line}"
        );
    }
    assert!(
        brief
            .lines()
            .last()
            .unwrap_or_default()
            .ends_with("unknown"),
        "{brief}"
    );
    let full = stdout(&kscope(&["doctor"]));
    assert!(full.lines().count() > brief.lines().count());
    assert!(
        !full.contains('\x1b'),
        "colour with NO_COLOR set or no terminal"
    );
}

#[test]
fn doctor_facts_judge_as_doctor_json_does() {
    if !live("doctor --facts", missing_root()) {
        return;
    }
    let _lock = TracefsLock::acquire();
    let output = kscope(&["doctor", "--facts"]);
    assert!(output.status.success(), "{output:?}");
    let facts: kscope_doctor::Facts =
        serde_json::from_slice(&output.stdout).expect("doctor --facts is the facts in JSON");
    let judged = serde_json::to_value(facts.judge()).expect("a report");
    let printed = doctor_json();
    let verdicts = |report: &Value| -> Vec<(String, String)> {
        IDS.iter()
            .map(|id| (id.to_string(), verdict(report, id).to_string()))
            .collect()
    };
    assert_eq!(verdicts(&judged), verdicts(&printed));
    assert_eq!(judged["kernel"], printed["kernel"]);
    // The flag is for recording test data: not in the help.
    let help = stdout(&kscope(&["doctor", "--help"]));
    assert!(!help.contains("--facts"), "{help}");
}
