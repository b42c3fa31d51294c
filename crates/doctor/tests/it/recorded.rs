//! The verdicts on facts recorded on three machines and users: this
//! development machine as root and as nobody (kernel 6.18, no kprobes, the
//! function tracer refused, no kcore), and the guest lab's Debian kernel
//! (kprobes, the function tracer, kcore and a crash-kernel reservation).
//! Each recording is judged exactly as the `kscope doctor --json` run
//! beside it printed (NAME.report.json; KSCOPE_BLESS=1 rewrites those).

use kscope_doctor::Verdict::{Available, Denied, Missing, Unknown};
use kscope_doctor::{Facts, Report};

use crate::{check, facts_dir, recorded_facts, verdicts};

const RECORDINGS: &[&str] = &["host-root", "host-nobody", "lab-debian"];

fn judged(name: &str) -> Report {
    recorded_facts(name).judge()
}

#[test]
fn each_recording_is_judged_as_doctor_printed_it() {
    for name in RECORDINGS {
        let report = serde_json::to_value(judged(name)).expect("a report serialises");
        let path = facts_dir().join(format!("{name}.report.json"));
        if std::env::var_os("KSCOPE_BLESS").is_some_and(|v| v == "1") {
            let text = serde_json::to_string_pretty(&report).expect("JSON");
            std::fs::write(&path, format!("{text}\n")).expect("write the report");
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
        let printed: serde_json::Value = serde_json::from_str(&text).expect("a JSON report");
        for (got, want) in report["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(printed["checks"].as_array().into_iter().flatten())
        {
            assert_eq!(got, want, "{name}: check {} differs", want["id"]);
        }
        assert_eq!(report, printed, "{name}: the report differs");
    }
}

#[test]
fn recorded_facts_survive_a_json_round_trip() {
    for name in RECORDINGS {
        let facts = recorded_facts(name);
        let text = serde_json::to_string(&facts).expect("facts serialise");
        let again: Facts = serde_json::from_str(&text).expect("facts deserialise");
        assert_eq!(again, facts, "{name}");
    }
}

#[test]
fn as_root_here_bpf_and_tracepoints_work_but_not_kprobes_or_function_tracing() {
    let report = judged("host-root");
    assert_eq!(
        verdicts(&report),
        [
            ("tracefs", Available),
            ("tracepoints", Available),
            ("uprobes", Available),
            ("kprobes", Missing),
            ("function_tracer", Denied),
            ("bpf", Available),
            ("btf", Available),
            ("perf_events", Available),
            ("kallsyms", Available),
            ("kernel_config", Available),
            ("lockdown", Available),
            ("core_dumps", Denied),
            ("kdump", Missing),
            ("kcore", Missing),
            ("modules", Missing),
            ("debuginfo", Missing),
            ("leftovers", Available),
        ]
    );
    assert_eq!(
        check(&report, "kprobes").summary,
        "no kprobes: CONFIG_KPROBES is not set"
    );
    assert!(
        check(&report, "function_tracer")
            .evidence
            .iter()
            .any(|e| e.ends_with("set_ftrace_filter: EPERM (permission denied)")),
        "{:?}",
        check(&report, "function_tracer")
    );
    assert!(!report.mounted_tracefs);
}

#[test]
fn as_nobody_here_tracefs_bpf_and_kernel_addresses_are_denied() {
    let report = judged("host-nobody");
    for id in [
        "tracefs",
        "tracepoints",
        "uprobes",
        "function_tracer",
        "bpf",
        "kallsyms",
    ] {
        assert_eq!(check(&report, id).verdict, Denied, "{id}");
    }
    // perf_event_paranoid 2 still lets anyone count their own task.
    assert_eq!(check(&report, "perf_events").verdict, Available);
    // Without root, securityfs cannot be mounted nor the journals read.
    assert_eq!(check(&report, "lockdown").verdict, Unknown);
    assert_eq!(check(&report, "leftovers").verdict, Unknown);
    assert_eq!(
        check(&report, "bpf").evidence[0],
        "BPF_PROG_LOAD: EPERM (permission denied)"
    );
    assert_eq!(
        check(&report, "tracefs").evidence,
        ["listing /sys/kernel/tracing: EACCES (permission denied)"]
    );
}

#[test]
fn the_debian_guest_has_kprobes_the_function_tracer_kcore_and_kdump() {
    let report = judged("lab-debian");
    for id in [
        "kprobes",
        "function_tracer",
        "kcore",
        "kdump",
        "modules",
        "bpf",
    ] {
        assert_eq!(check(&report, id).verdict, Available, "{id}");
    }
    assert_eq!(
        check(&report, "kprobes").summary,
        "kernel probes can be defined"
    );
    assert_eq!(
        check(&report, "function_tracer").summary,
        "function and function_graph tracers can be used"
    );
    assert!(
        check(&report, "kdump").summary.contains("MiB reserved"),
        "{:?}",
        check(&report, "kdump")
    );
}
