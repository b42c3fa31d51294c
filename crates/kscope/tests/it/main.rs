//! End-to-end tests of the kscope binary.

mod cli;
mod command;
mod core;
mod crash;
mod doctor;
mod probe_bpftrace;
mod probe_cleanup;
mod probe_corpus;
mod trace_list;
mod trace_record;
mod trace_report;
mod trace_stream;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::Duration;

/// The kscope binary built for these tests, its caches under the build
/// tree's temporary directory rather than the user's home.
pub fn kscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kscope"))
        .args(args)
        .env("NO_COLOR", "1")
        .env(
            "KSCOPE_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("kscope-cache"),
        )
        .output()
        .expect("run kscope")
}

/// The kscope binary run with `args`, which must succeed (else the test
/// fails with its stderr).
pub fn kscope_ok(args: &[&str]) -> Output {
    let output = kscope(args);
    assert!(
        output.status.success(),
        "kscope {args:?}: {}",
        stderr(&output)
    );
    output
}

/// stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Sends SIG`signal` (a name like "TERM") to `child`.
pub fn send_signal(child: &Child, signal: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success(), "kill -{signal} {}", child.id());
}

/// Lets `child` (kscope, stdout and stderr piped) run for `after`, sends
/// it SIG`signal`, and returns what it printed; asserts that it ended by
/// that very signal (`number`), as its shell expects once kscope has
/// cleaned up, and not with a status of its own.
pub fn signal_and_expect_killed(
    child: Child,
    after: Duration,
    signal: &str,
    number: i32,
) -> Output {
    std::thread::sleep(after);
    send_signal(&child, signal);
    let output = child.wait_with_output().expect("wait");
    assert_eq!(
        output.status.signal(),
        Some(number),
        "SIG{signal}: {:?}: {}",
        output.status,
        stderr(&output)
    );
    output
}
