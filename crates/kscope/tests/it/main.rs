//! End-to-end tests of the kscope binary.

mod bad_input;
mod cli;
mod core;
mod crash;
mod doctor;
mod mutation;
mod probe_bpftrace;
mod probe_cleanup;
mod probe_corpus;
mod trace_list;
mod trace_record;
mod trace_report;
mod trace_stream;

use std::path::Path;
use std::process::{Command, Output};

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
