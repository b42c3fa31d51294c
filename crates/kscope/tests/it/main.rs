//! End-to-end tests of the kscope binary.

mod bad_input;
mod cli;
mod command;
mod core;
mod crash;
mod doctor;
mod layout;
mod mutation;
mod newcomer;
mod probe_bpftrace;
mod probe_cleanup;
mod probe_corpus;
mod probe_stacks;
mod safe_files;
mod sessions;
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

/// The kscope binary run as user nobody, from a copy nobody may execute
/// (the build tree may be private). With `own_tracefs`, it runs in a
/// mount namespace of its own where tracefs is mounted (root's alone, as
/// always) if it was not, so the host's mounts are neither needed nor
/// touched.
pub fn kscope_as_nobody(args: &[&str], own_tracefs: bool) -> Output {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("kscope-nobody-")
        .tempdir()
        .expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("let nobody in");
    let binary = dir.path().join("kscope");
    std::fs::copy(env!("CARGO_BIN_EXE_kscope"), &binary).expect("copy kscope");
    let as_nobody = [
        "setpriv",
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--",
    ];
    let run = || {
        let mut command = if own_tracefs {
            let mut c = Command::new("unshare");
            c.args(["-m", "--propagation", "private", "sh", "-c"])
                .arg(format!(
                    "{{ mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing; }} && exec {} \"$@\"",
                    as_nobody.join(" ")
                ))
                .arg("sh");
            c
        } else {
            let mut c = Command::new(as_nobody[0]);
            c.args(&as_nobody[1..]);
            c
        };
        command
            .arg(&binary)
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .expect("run kscope as nobody")
    };
    // A child that another test thread forks while the copy is open for
    // writing holds it open until it execs: exec fails with ETXTBSY then.
    let mut output = run();
    for _ in 0..20 {
        if !String::from_utf8_lossy(&output.stderr).contains("Text file busy") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        output = run();
    }
    dir.close().expect("remove temp dir");
    output
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
