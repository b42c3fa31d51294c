//! Stacks in `kscope probe` on real programs: a user-space profile of a
//! busy loop (built here with frame pointers, which the kernel's user
//! stack walker follows) whose hottest stack's innermost frame is the
//! loop's function, found and printed by a script that runs in the
//! kernel alone.

use std::process::Command;

use kscope_testkit::{live, missing_root};

use crate::kscope;

/// A program that spins in `spin` for a second and a half.
const BUSY: &str = r#"
#include <time.h>
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}
__attribute__((noinline)) void spin(double until) {
    volatile unsigned long n = 0;
    do {
        for (int i = 0; i < 1000000; i++) n += i;
    } while (now() < until);
}
int main(void) { spin(now() + 1.5); return 0; }
"#;

#[test]
fn a_profile_of_a_busy_loop_has_the_loop_on_top() {
    if !live("a timer.profile of user stacks", missing_root()) {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let source = dir.path().join("busy.c");
    let program = dir.path().join("busy");
    std::fs::write(&source, BUSY).expect("write the program");
    let built = Command::new("cc")
        .args(["-O1", "-fno-omit-frame-pointer", "-o"])
        .arg(&program)
        .arg(&source)
        .status()
        .expect("run cc (scripts/setup installs gcc)");
    assert!(built.success(), "cc failed");
    let script = "global prof, top, best
probe timer.profile {
  if (pid() == target()) {
    s = ubacktrace(); prof[s] <<< 1
    if (@count(prof[s]) > best) { best = @count(prof[s]); top = s }
  }
}
probe end { printf(\"%d samples\\n\", best); print_ustack(top) }";
    let out = kscope(&[
        "probe",
        "-c",
        program.to_str().expect("a UTF-8 path"),
        "-e",
        script,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    let samples: u64 = lines
        .next()
        .and_then(|l| l.strip_suffix(" samples"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(samples > 10, "{stdout}");
    // The hottest stack's innermost frame is the loop, in spin, called
    // by main.
    let frames: Vec<&str> = lines.collect();
    let path = program.display().to_string();
    assert!(
        frames[0].contains(" : spin+0x") && frames[0].ends_with(&format!("[{path}]")),
        "{stdout}"
    );
    assert!(frames[1].contains(" : main+0x"), "{stdout}");
}
