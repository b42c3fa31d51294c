//! The errors a new user meets first: a misspelt event name, a run
//! without root, a script with nothing in it. Each must say what is wrong
//! and what works instead.

use kscope_testkit::{live, missing_root, with_unchanged_tracefs};

use crate::{kscope, kscope_as_nobody, stderr, stdout};

#[test]
fn a_misspelt_event_gets_the_nearest_name() {
    with_unchanged_tracefs("misspelt events", |_| {
        let tmp = tempfile::tempdir().expect("temp dir");
        let out = tmp.path().join("x.dat");
        let out = out.to_str().expect("a UTF-8 path");
        for args in [
            &["trace", "stream", "-e", "sched:sched_swtich", "--", "true"][..],
            &[
                "trace",
                "record",
                "-e",
                "sched:sched_swtich",
                "-o",
                out,
                "--",
                "true",
            ],
            &["trace", "list", "-F", "sched:sched_swtich"],
            &["trace", "list", "-F", "sched_swtich"],
            &["trace", "list", "-e", "sched:sched_swtich"],
        ] {
            let output = kscope(args);
            assert_eq!(output.status.code(), Some(1), "{args:?}");
            let err = stderr(&output);
            assert!(
                err.contains("did you mean \"sched:sched_switch\"?"),
                "{args:?}: {err}"
            );
        }
    });
}

/// The `kscope trace list -e 'GLOB'` an error suggests.
fn suggested_glob(err: &str) -> &str {
    let (_, rest) = err
        .split_once("kscope trace list -e '")
        .unwrap_or_else(|| panic!("no suggested listing in {err}"));
    rest.split_once('\'').map_or("", |(glob, _)| glob)
}

#[test]
fn the_listing_an_unknown_event_suggests_lists_something() {
    with_unchanged_tracefs("the listing an error suggests", |_| {
        for args in [
            &["trace", "list", "-F", "no_such_event"][..],
            &["trace", "list", "-F", "sched:no_such_event"],
            &["trace", "stream", "-e", "nosuch:event", "--", "true"],
            &["trace", "stream", "-e", "sched:nosuch*", "--", "true"],
            &["trace", "stream", "-e", "sched_swtich", "--", "true"],
            &["trace", "list", "-e", "nosuch*"],
        ] {
            let output = kscope(args);
            assert_eq!(output.status.code(), Some(1), "{args:?}");
            let err = stderr(&output);
            let glob = suggested_glob(&err);
            let listed = kscope(&["trace", "list", "-e", glob]);
            assert!(
                listed.status.success() && !stdout(&listed).trim().is_empty(),
                "{args:?} suggests {glob:?}, which lists nothing: {err}"
            );
        }
        // Where the system exists, the listing is of that system.
        let err = stderr(&kscope(&["trace", "list", "-F", "sched:no_such_event"]));
        assert_eq!(suggested_glob(&err), "sched:*", "{err}");
    });
}

#[test]
fn without_root_trace_and_probe_say_what_they_need() {
    if !live("kscope as an unprivileged user", missing_root()) {
        return;
    }
    let cases: [(&[&str], &str); 3] = [
        (
            &["trace", "stream", "-e", "sched:sched_switch", "--", "true"],
            "kscope trace needs root",
        ),
        (
            &["trace", "list", "-e", "sched:*"],
            "kscope trace needs root",
        ),
        (
            &["probe", "-e", "probe syscall.read { exit() }"],
            "kscope probe needs root",
        ),
    ];
    for (args, needed) in cases {
        let output = kscope_as_nobody(args, true);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with(&format!("kscope: error: {needed}")),
            "{args:?}: {err}"
        );
        assert!(err.contains("Permission denied"), "{args:?}: {err}");
    }
    let err = stderr(&kscope_as_nobody(
        &["probe", "-e", "probe syscall.read { exit() }"],
        true,
    ));
    assert!(err.contains("CAP_BPF"), "{err}");
}
