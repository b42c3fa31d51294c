//! A guard in a process that dies: by panic, or by SIGTERM while it
//! waits. The test binary runs itself again as the child (the test
//! `child_process_body`, selected by an environment variable), so the
//! child is real code of this crate in a separate process.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use kscope_tracefs::{ProbeFile, StateGuard, Tracefs, restore_on_signals};

use crate::with_unchanged_tracefs;

const ROLE: &str = "KSCOPE_TRACEFS_CHILD";

/// What the child does: makes one change of each kind, and through a
/// second, later guard changes again a value the first changed (so that
/// undoing the guards oldest first would leave that value changed), says
/// "ready", then panics or waits to be killed.
#[test]
fn child_process_body() {
    let Ok(role) = std::env::var(ROLE) else {
        return; // An ordinary test run: nothing to do.
    };
    restore_on_signals().expect("signals");
    let guard = StateGuard::new();
    let later = StateGuard::new();
    let fs = Tracefs::find()
        .expect("mountinfo")
        .expect("the parent mounted tracefs");
    let mine = guard.private_instance(&fs).expect("instance");
    guard
        .enable_event(&mine, "sched", "sched_switch")
        .expect("enable");
    guard.set_tracing_on(&fs.top(), false).expect("tracing_on");
    guard
        .set(&fs.top(), "trace_clock", "global")
        .expect("clock");
    later
        .set(&fs.top(), "trace_clock", "mono")
        .expect("clock again");
    guard
        .add_probe(
            &fs,
            ProbeFile::Uprobe,
            "p:kscope_child/true_entry /bin/true:0x1000",
        )
        .expect("uprobe");
    println!("ready {}", mine.name().unwrap_or_default());
    match role.as_str() {
        "panic" => panic!("the child panics on purpose"),
        _ => loop {
            std::thread::sleep(Duration::from_secs(1));
        },
    }
}

/// Starts the child and waits (at most 30 s) for its "ready" line, which
/// libtest may print on the same line as the test's name. Returns the
/// child's instance name, or an empty string when it never got ready (the
/// child is then killed, so that the test fails instead of hanging).
fn spawn_child(role: &str) -> (std::process::Child, String) {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "child::child_process_body",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let ready = lines
            .by_ref()
            .find_map(|line| line.split_once("ready ").map(|(_, name)| name.to_string()));
        let _ = tx.send(ready.unwrap_or_default());
        // Keep draining, so that the child never writes into a closed pipe.
        lines.for_each(drop);
    });
    let ready = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    if ready.is_empty() {
        let _ = child.kill();
    }
    (child, ready)
}

#[test]
fn a_panicking_process_restores_its_changes() {
    with_unchanged_tracefs("restore after panic", |_fs| {
        let (child, instance) = spawn_child("panic");
        assert!(instance.starts_with("kscope-"), "the child never got ready");
        let output = child.wait_with_output().expect("wait");
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("the child panics on purpose"), "{stderr}");
    });
}

#[test]
fn a_process_killed_by_sigterm_restores_its_changes() {
    with_unchanged_tracefs("restore after SIGTERM", |fs| {
        let (mut child, instance) = spawn_child("wait");
        assert!(instance.starts_with("kscope-"), "the child never got ready");
        // The changes are in place while the child waits.
        assert!(fs.instance(&instance).is_some());
        assert_eq!(fs.top().read("tracing_on").unwrap().trim(), "0");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let status = child.wait().expect("wait");
        assert_eq!(status.signal(), Some(libc_sigterm()), "{status:?}");
    });
}

/// SIGTERM is 15 on every Linux architecture.
fn libc_sigterm() -> i32 {
    15
}
