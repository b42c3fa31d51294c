//! `kscope trace stream` on the running kernel: it traces, stops with its
//! command or Ctrl-C, and leaves tracefs as it found it.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use kscope_testkit::{
    TracefsLock, command_with_signals, live, missing_root, with_unchanged_tracefs,
};
use kscope_tracefs::Tracefs;

use crate::{kscope, kscope_ok, send_signal, signal_and_expect_killed, stderr, stdout};

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
        // The command's pid switches in and out as sleep, never as a shell
        // of kscope's gate.
        let sleeps = pids_of(&text, "sleep");
        assert_eq!(sleeps.len(), 1, "one sleep pid expected:\n{text}");
        let pid = &sleeps[0];
        assert!(
            text.contains(&format!("prev_comm=sleep prev_pid={pid} "))
                && text.contains(&format!("next_comm=sleep next_pid={pid} ")),
            "the command never switched in and out as sleep:\n{text}"
        );
        assert!(
            !pids_of(&text, "sh").contains(pid),
            "the command's pid {pid} ran as sh:\n{text}"
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

/// The pids that `comm` has in sched_switch lines, as prev or next.
fn pids_of(text: &str, comm: &str) -> Vec<String> {
    let mut pids = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for side in ["prev", "next"] {
            let named = words.contains(&format!("{side}_comm={comm}").as_str());
            let pid = words
                .iter()
                .find_map(|w| w.strip_prefix(&format!("{side}_pid=")));
            if let (true, Some(pid)) = (named, pid)
                && !pids.iter().any(|p| p == pid)
            {
                pids.push(pid.to_string());
            }
        }
    }
    pids
}

#[test]
fn a_filter_applies_to_the_event_before_it_and_output_goes_to_a_file() {
    with_unchanged_tracefs("trace stream -f -o", |_| {
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = dir.path().join("stream.txt");
        let path = file.to_string_lossy().into_owned();
        let output = kscope_ok(&[
            "trace",
            "stream",
            "-e",
            "sched:sched_switch",
            // The command itself: it switches out when it sleeps, however
            // busy the machine (an idle CPU, pid 0, may never come then).
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
        // sleep leaves its CPU at least once, whatever else the machine
        // runs (a filter on the idle task found nothing on a busy machine).
        assert!(text.lines().count() > 0, "nothing traced");
        assert!(
            text.lines().all(|l| l.contains("prev_comm=sleep ")),
            "{text}"
        );
    });
}

/// Starts `kscope ARGS` with the termination signals at their default
/// action but those in `ignored`.
fn start(args: &[&str], ignored: &[&str]) -> std::process::Child {
    command_with_signals(env!("CARGO_BIN_EXE_kscope"), ignored)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

/// Starts `kscope ARGS`, lets it trace for 1.5 s, sends it SIG`signal`,
/// and returns what it printed; it must end by that very signal (a shell
/// loop over it stops on Ctrl-C), not with a status of its own.
fn stream_then_signal(signal: &str, number: i32, args: &[&str]) -> std::process::Output {
    signal_and_expect_killed(
        start(args, &[]),
        Duration::from_millis(1500),
        signal,
        number,
    )
}

#[test]
fn ctrl_c_stops_the_stream_and_restores_everything() {
    with_unchanged_tracefs("trace stream and Ctrl-C", |_| {
        let output = stream_then_signal("INT", 2, &["trace", "stream", "-e", "sched:sched_switch"]);
        assert!(
            stdout(&output).contains(" sched_switch: "),
            "nothing printed before Ctrl-C"
        );
    });
}

#[test]
fn sighup_stops_the_stream_and_restores_everything() {
    with_unchanged_tracefs("trace stream and SIGHUP", |_| {
        let output = stream_then_signal("HUP", 1, &["trace", "stream", "-e", "sched:sched_switch"]);
        assert!(
            stdout(&output).contains(" sched_switch: "),
            "nothing printed before SIGHUP"
        );
    });
}

#[test]
fn sigterm_stops_the_stream_and_its_command_and_restores_everything() {
    with_unchanged_tracefs("trace stream and SIGTERM", |_| {
        let started = std::time::Instant::now();
        stream_then_signal(
            "TERM",
            15,
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
fn a_sigint_inherited_as_ignored_stays_ignored() {
    with_unchanged_tracefs("trace stream under nohup-like SIGINT", |_| {
        let mut child = start(&["trace", "stream", "-e", "sched:sched_switch"], &["INT"]);
        std::thread::sleep(Duration::from_millis(1500));
        send_signal(&child, "INT");
        std::thread::sleep(Duration::from_millis(1000));
        let after_int = child.try_wait().expect("try_wait");
        if after_int.is_none() {
            send_signal(&child, "TERM");
        }
        let output = child.wait_with_output().expect("wait");
        assert!(
            after_int.is_none(),
            "an ignored SIGINT ended it: {after_int:?}: {}",
            stderr(&output)
        );
        assert_eq!(
            output.status.signal(),
            Some(15),
            "{:?}: {}",
            output.status,
            stderr(&output)
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
