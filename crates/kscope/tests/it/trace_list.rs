//! `kscope trace list` against the running kernel's tracefs.

use kscope_testkit::with_unchanged_tracefs;
use kscope_tracefs::control;
use serde_json::Value;

use crate::{kscope, stderr, stdout};

#[test]
fn events_are_listed_and_filtered_by_glob() {
    with_unchanged_tracefs("trace list -e", |fs| {
        let all = stdout(&kscope(&["trace", "list", "-e"]));
        let listed = control::read(&fs.root().join("available_events")).unwrap();
        assert_eq!(all.lines().count(), listed.lines().count());
        let sched = stdout(&kscope(&["trace", "list", "-e", "sched:*"]));
        assert!(sched.lines().any(|l| l == "sched:sched_switch"), "{sched}");
        assert!(sched.lines().all(|l| l.starts_with("sched:")), "{sched}");
    });
}

#[test]
fn tracers_and_options_are_the_kernels() {
    with_unchanged_tracefs("trace list -t -o", |fs| {
        let tracers = stdout(&kscope(&["trace", "list", "-t"]));
        let kernel = control::read(&fs.root().join("available_tracers")).unwrap();
        assert_eq!(
            tracers.split_whitespace().collect::<Vec<_>>(),
            kernel.split_whitespace().collect::<Vec<_>>()
        );
        let options = stdout(&kscope(&["trace", "list", "-o"]));
        let kernel = control::read(&fs.root().join("trace_options")).unwrap();
        assert_eq!(options, kernel);
    });
}

#[test]
fn an_events_fields_match_its_format_file() {
    with_unchanged_tracefs("trace list -F", |fs| {
        let id = control::read(&fs.root().join("events/sched/sched_switch/id")).unwrap();
        let text = stdout(&kscope(&["trace", "list", "-F", "sched:sched_switch"]));
        assert!(
            text.starts_with(&format!("sched:sched_switch (id {})", id.trim())),
            "{text}"
        );
        assert!(text.contains("char prev_comm[16]"), "{text}");
        assert!(text.contains("print fmt: \"prev_comm=%s"), "{text}");
        let json: Value = serde_json::from_slice(
            &kscope(&["trace", "list", "-F", "sched_switch", "--json"]).stdout,
        )
        .unwrap();
        let fields = json["event"]["fields"].as_array().unwrap();
        let next_pid = fields.iter().find(|f| f["name"] == "next_pid").unwrap();
        let format = control::read(&fs.root().join("events/sched/sched_switch/format")).unwrap();
        let line = format.lines().find(|l| l.contains(" next_pid;")).unwrap();
        assert!(
            line.contains(&format!("offset:{};", next_pid["offset"])),
            "{line} vs {next_pid}"
        );
    });
}

#[test]
fn an_unknown_or_ambiguous_event_is_a_clear_error() {
    with_unchanged_tracefs("trace list -F errors", |_| {
        let output = kscope(&["trace", "list", "-F", "no_such_event"]);
        assert_eq!(output.status.code(), Some(1));
        assert!(
            stderr(&output).contains("no event \"no_such_event\""),
            "{}",
            stderr(&output)
        );
        let bad_glob = kscope(&["trace", "list", "-e", "sched:[*"]);
        assert_eq!(bad_glob.status.code(), Some(1));
        assert!(
            stderr(&bad_glob).contains("bad glob"),
            "{}",
            stderr(&bad_glob)
        );
    });
}
