//! StateGuard with the changes this host cannot make: a kprobe
//! definition, the function tracer in a private instance,
//! set_ftrace_filter and set_ftrace_pid, each compared byte for byte
//! after a normal exit, a panic and SIGTERM (kscope-lab-guest does the
//! comparison where the changes are made).

use crate::succeeded;

fn assert_restored(name: &str) {
    let Some(stdout) = succeeded(name) else {
        return;
    };
    for change in [
        "kprobe_events changed: true",
        "the instance's current_tracer changed: true",
        "set_ftrace_filter changed: true",
        "set_ftrace_pid changed: true",
    ] {
        assert!(
            stdout.contains(change),
            "{name}: {change:?} not in:\n{stdout}"
        );
    }
    assert!(stdout.contains("tracefs unchanged"), "{name}:\n{stdout}");
}

#[test]
fn the_guard_restores_after_a_normal_exit() {
    assert_restored("guard-normal");
}

#[test]
fn the_guard_restores_after_a_panic() {
    assert_restored("guard-panic");
}

#[test]
fn the_guard_restores_after_sigterm() {
    assert_restored("guard-sigterm");
}

#[test]
fn an_unused_top_buffer_is_left_at_its_expanded_size() {
    let Some(stdout) = succeeded("top-buffer") else {
        return;
    };
    assert!(
        stdout.contains("left as its next user would find it"),
        "{stdout}"
    );
}
