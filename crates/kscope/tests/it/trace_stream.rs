//! `kscope trace stream` on the running kernel: it traces, stops with its
//! command or Ctrl-C, and leaves tracefs as it found it.

use std::process::{Command, Stdio};
use std::time::Duration;

use kscope_testkit::{TracefsLock, live, missing_root, with_unchanged_tracefs};
use kscope_tracefs::Tracefs;

use crate::{kscope, kscope_ok, stderr, stdout};

#[test]
fn a_command_is_traced_and_tracefs_is_left_unchanged() {
    with_unchanged_tracefs("trace stream -- sleep", |_| {
        let output = kscope_ok(&[
            "trace",
            "stream",
            "-e",
            "sched:sched_switch",
            "--",
            "sleep",
            "0.2",
        ]);
        let text = stdout(&output);
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(" sched_switch: "))
            .collect();
        assert!(!lines.is_empty(), "no sched_switch lines:\n{text}");
        assert!(
            lines
                .iter()
                .all(|l| l.contains("prev_comm=") && l.contains("==> next_comm=")),
            "{text}"
        );
        assert!(
            text.contains("prev_comm=sleep"),
            "the traced command never switched out:\n{text}"
        );
        // trace-cmd report's columns: COMM-PID [CPU] LATENCY SECS.USECS: EVENT:
        let first = lines[0];
        assert!(first.find(" [").is_some_and(|i| i >= 16), "{first}");
        assert!(
            first.contains("]") && first.contains(": sched_switch:"),
            "{first}"
        );
    });
}

#[test]
fn a_filter_applies_to_the_event_before_it_and_output_goes_to_a_file() {
    with_unchanged_tracefs("trace stream -f -o", |_| {
        let file = std::env::temp_dir().join(format!("kscope-stream-{}.txt", std::process::id()));
        let path = file.to_string_lossy().into_owned();
        let output = kscope_ok(&[
            "trace",
            "stream",
            "-e",
            "sched:sched_switch",
            "-f",
            "prev_comm == \"sleep\"",
            "-o",
            &path,
            "--",
            "sleep",
            "0.1",
        ]);
        assert!(stdout(&output).is_empty());
        let text = std::fs::read_to_string(&file).expect("output file");
        std::fs::remove_file(&file).expect("remove");
        // sleep leaves its CPU at least once, whatever else the machine
        // runs (a filter on the idle task found nothing on a busy machine).
        assert!(text.lines().count() > 0, "nothing traced");
        assert!(
            text.lines().all(|l| l.contains("prev_comm=sleep ")),
            "{text}"
        );
    });
}

/// Starts `kscope ARGS`, lets it trace for 1.5 s, sends it `signal`, and
/// returns what it printed; asserts that it ended with status 0.
fn stream_then_signal(signal: &str, args: &[&str]) -> std::process::Output {
    let child = Command::new(env!("CARGO_BIN_EXE_kscope"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        stderr(&output)
    );
    output
}

#[test]
fn ctrl_c_stops_the_stream_and_restores_everything() {
    with_unchanged_tracefs("trace stream and Ctrl-C", |_| {
        let output = stream_then_signal("-INT", &["trace", "stream", "-e", "sched:sched_switch"]);
        assert!(
            stdout(&output).contains(" sched_switch: "),
            "nothing printed before Ctrl-C"
        );
    });
}

#[test]
fn sigterm_stops_the_stream_and_its_command_and_restores_everything() {
    with_unchanged_tracefs("trace stream and SIGTERM", |_| {
        let started = std::time::Instant::now();
        stream_then_signal(
            "-TERM",
            &[
                "trace",
                "stream",
                "-e",
                "sched:sched_switch",
                "--",
                "sleep",
                "30",
            ],
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the command was not stopped"
        );
    });
}

#[test]
fn unknown_events_and_stray_filters_are_clear_errors() {
    with_unchanged_tracefs("trace stream errors", |_| {
        let output = kscope(&["trace", "stream", "-e", "nosuch:event", "--", "true"]);
        assert_eq!(output.status.code(), Some(1));
        assert!(
            stderr(&output).contains("no event matches \"nosuch:event\""),
            "{}",
            stderr(&output)
        );
        let output = kscope(&[
            "trace",
            "stream",
            "-f",
            "pid == 1",
            "-e",
            "sched:sched_switch",
            "--",
            "true",
        ]);
        assert_eq!(output.status.code(), Some(1));
        assert!(
            stderr(&output).contains("comes before any -e"),
            "{}",
            stderr(&output)
        );
        let output = kscope(&[
            "trace",
            "stream",
            "-e",
            "sched:sched_switch",
            "-f",
            "no_such_field == 1",
            "--",
            "true",
        ]);
        assert_eq!(output.status.code(), Some(1));
        assert!(
            stderr(&output).contains("sched_switch/filter"),
            "{}",
            stderr(&output)
        );
    });
}

#[test]
fn an_absent_tracefs_is_mounted_for_the_stream_only() {
    if !live("trace stream and the tracefs mount", missing_root()) {
        return;
    }
    let _lock = TracefsLock::acquire();
    let was_mounted = Tracefs::find().expect("mountinfo").is_some();
    kscope_ok(&["trace", "stream", "-e", "sched:sched_switch", "--", "true"]);
    assert_eq!(Tracefs::find().expect("mountinfo").is_some(), was_mounted);
}

#[test]
fn events_the_kernel_dropped_are_reported_where_they_happened() {
    with_unchanged_tracefs("trace stream lost events", |_| {
        // A 8 KiB buffer per CPU and a few hundred thousand syscalls a
        // second: the kernel overwrites what the reader has not taken yet.
        let output = kscope_ok(&[
            "trace",
            "stream",
            "-b",
            "8",
            "-e",
            "raw_syscalls",
            "--",
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=1",
            "count=300000",
        ]);
        let text = stdout(&output);
        let dropped: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("EVENTS DROPPED]"))
            .collect();
        assert!(
            !dropped.is_empty(),
            "no loss reported in {} lines",
            text.lines().count()
        );
        assert!(dropped.iter().all(|l| l.starts_with("CPU:")), "{dropped:?}");
        assert!(!stderr(&output).contains("damaged"), "{}", stderr(&output));
    });
}

#[test]
fn json_lines_carry_the_record_and_its_fields() {
    with_unchanged_tracefs("trace stream --json", |_| {
        let output = kscope_ok(&[
            "trace",
            "stream",
            "--json",
            "-e",
            "sched:sched_switch",
            "--",
            "sleep",
            "0.1",
        ]);
        let text = stdout(&output);
        let records: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert!(!records.is_empty());
        for record in &records {
            assert_eq!(record["event"], "sched_switch", "{record}");
            assert!(record["ts"].as_u64().is_some_and(|t| t > 0), "{record}");
            let prev_pid = record["fields"]["prev_pid"].as_i64().expect("prev_pid");
            let text = record["text"].as_str().unwrap_or_default();
            assert!(text.contains(&format!("prev_pid={prev_pid} ")), "{record}");
        }
    });
}

#[test]
fn follow_traces_only_the_command_and_its_children() {
    with_unchanged_tracefs("trace stream -F", |_| {
        let output = kscope(&[
            "trace",
            "stream",
            "-F",
            "-e",
            "syscalls:sys_enter_openat",
            "--",
            "sh",
            "-c",
            "cat /etc/hostname > /dev/null; exec cat /etc/hostname > /dev/null",
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        let text = stdout(&output);
        // By pid, not comm: saved_cmdlines can still hold the name of an
        // earlier process with a recycled pid (the kernel's own `trace`
        // shows the same). sh runs the first cat in a child and execs the
        // second itself: exactly two pids.
        let pids: std::collections::BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.split_once(" [").map(|(head, _)| head))
            .filter_map(|head| head.trim().rsplit_once('-').map(|(_, pid)| pid.trim()))
            .collect();
        assert_eq!(
            pids.len(),
            2,
            "expected the shell and its one child: {pids:?}\n{text}"
        );
    });
}
