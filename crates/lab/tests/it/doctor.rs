//! `kscope doctor` on a kernel that has kprobes, the function tracer,
//! /proc/kcore and a crash-kernel reservation.

use kscope_lab::{Placement, host_report};
use serde_json::Value;

use crate::{succeeded, suite};

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no check {id} in {report}"))
}

#[test]
fn doctor_reports_kprobes_function_tracer_kcore_and_kdump_available() {
    let Some(json) = succeeded("doctor-json") else {
        return;
    };
    let report: Value = serde_json::from_str(&json).expect("doctor --json");
    for id in ["kprobes", "function_tracer", "kcore", "kdump"] {
        let c = check(&report, id);
        assert_eq!(c["verdict"], "available", "{id}: {c}");
        let evidence = c["evidence"].as_array().map(Vec::len).unwrap_or(0);
        assert!(evidence > 0, "{id} has no evidence: {c}");
    }
    let kprobes = check(&report, "kprobes")["evidence"].to_string();
    assert!(
        kprobes.contains("kprobe_events opens for writing"),
        "{kprobes}"
    );
    let kdump = check(&report, "kdump")["summary"].to_string();
    assert!(kdump.contains("MiB reserved"), "{kdump}");
}

#[test]
fn the_suite_ran_where_the_hosts_own_doctor_says_it_must() {
    let Some((placement, _)) = suite() else {
        return;
    };
    let report = host_report();
    let lacking: Vec<&str> = ["kprobes", "function_tracer", "kcore", "kdump"]
        .into_iter()
        .filter(|id| {
            report
                .check(id)
                .is_none_or(|c| c.verdict != kscope_doctor::Verdict::Available)
        })
        .collect();
    // On the host only when it has every feature; in the guest only when
    // it lacks one.
    match placement {
        Placement::Host => assert!(
            lacking.is_empty(),
            "the suite ran on the host, which lacks {lacking:?}"
        ),
        Placement::Lab => assert!(
            !lacking.is_empty(),
            "the lab ran although the host has every feature"
        ),
    }
}

#[test]
fn doctor_text_in_the_guest_has_every_line() {
    let Some(text) = succeeded("doctor-text") else {
        return;
    };
    for id in ["kprobes", "function_tracer", "kcore", "kdump"] {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(id))
            .unwrap_or_else(|| panic!("no {id} line in:\n{text}"));
        assert!(line.trim_start().starts_with("available"), "{line}");
    }
}
