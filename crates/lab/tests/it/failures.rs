//! How the lab reports what goes wrong in a guest: a command that fails, a
//! kernel panic, a hang. Each must give a clear error with the console's
//! tail, within the deadline. Panics and hangs need a guest of their own.

use std::time::Duration;

use kscope_lab::{GuestCommand, Outcome, missing_prerequisite, shared_lab};
use kscope_testkit::live;

use crate::suite;

fn lab() -> Option<&'static kscope_lab::Lab> {
    if !live(
        "the guest lab",
        missing_prerequisite().map(|e| e.to_string()),
    ) {
        return None;
    }
    Some(shared_lab().unwrap_or_else(|e| panic!("the guest lab cannot start: {e}")))
}

#[test]
fn a_failing_command_is_a_clear_error_with_its_output() {
    let Some((_, batch)) = suite() else {
        return;
    };
    let failing = batch.result("failing").expect("the command ran");
    assert_eq!(failing.status, Some(3));
    assert_eq!(failing.stdout_text(), "to-stdout\n");
    assert_eq!(failing.stderr_text(), "to-stderr\n");
    let message = batch.success("failing").unwrap_err().to_string();
    assert!(
        message.contains("\"failing\" exited with status 3"),
        "{message}"
    );
    assert!(message.contains("to-stderr"), "{message}");
    assert!(
        message.contains("--- guest console (last lines) ---"),
        "{message}"
    );
}

#[test]
fn a_guest_panic_ends_the_run_with_the_console_tail() {
    let Some(lab) = lab() else {
        return;
    };
    let commands = [
        GuestCommand::new("before", "echo alive"),
        GuestCommand::new("panic", "echo c > /proc/sysrq-trigger"),
        GuestCommand::new("after", "echo never"),
    ];
    let deadline = Duration::from_secs(120);
    let batch = lab.run("panic", &commands, deadline).expect("run");
    assert_eq!(
        batch.outcome,
        Outcome::Panicked,
        "{}",
        batch.console_tail(40)
    );
    assert!(batch.elapsed < deadline);
    assert_eq!(
        batch.success("before").expect("before").stdout_text(),
        "alive\n"
    );
    let message = batch.success("panic").unwrap_err().to_string();
    assert!(
        message.contains("started but never finished: the guest kernel panicked"),
        "{message}"
    );
    assert!(message.contains("Kernel panic - not syncing"), "{message}");
    let never = batch.success("after").unwrap_err().to_string();
    assert!(never.contains("never started"), "{never}");
}

#[test]
fn a_hung_guest_is_killed_at_its_deadline() {
    let Some(lab) = lab() else {
        return;
    };
    let commands = [
        GuestCommand::new("first", "echo done"),
        GuestCommand::new("hang", "sleep 100000"),
    ];
    let deadline = Duration::from_secs(40);
    let batch = lab.run("hang", &commands, deadline).expect("run");
    assert!(
        matches!(batch.outcome, Outcome::TimedOut(_)),
        "{:?}",
        batch.outcome
    );
    assert!(
        batch.elapsed < deadline + Duration::from_secs(10),
        "{:?}",
        batch.elapsed
    );
    assert_eq!(
        batch.success("first").expect("first").stdout_text(),
        "done\n"
    );
    let message = batch.success("hang").unwrap_err().to_string();
    assert!(message.contains("killed at its deadline"), "{message}");
    assert!(
        message.contains("kscope-lab: guest"),
        "console tail missing: {message}"
    );
    let run_dir = batch.run_dir.display().to_string();
    let survivors = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|cmdline| String::from_utf8_lossy(cmdline).contains(&run_dir))
        .count();
    assert_eq!(survivors, 0, "a QEMU of {run_dir} outlived its deadline");
}
