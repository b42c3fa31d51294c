//! Finding tracefs; when it is mounted nowhere, it is mounted in a private
//! mount namespace, never for everyone.

use kscope_testkit::{TracefsLock, live, missing_root};
use kscope_tracefs::{DEFAULT_MOUNT, StateGuard, Tracefs, parse_mountinfo};

/// Whether tracefs is mounted in the main thread's namespace: the one
/// this test process started in, which a test thread's private
/// namespace leaves alone.
fn mounted_for_the_process() -> bool {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    parse_mountinfo(&text).iter().any(|m| m.fstype == "tracefs")
}

#[test]
fn an_absent_tracefs_is_mounted_privately_and_a_present_one_used() {
    if !live("tracefs mount", missing_root()) {
        return;
    }
    let _lock = TracefsLock::acquire();
    let guard = StateGuard::new();
    match Tracefs::find().expect("mountinfo") {
        None => {
            let before = mounted_for_the_process();
            let fs = guard.tracefs().expect("mount");
            assert!(fs.mounted_by_us());
            assert_eq!(fs.root(), std::path::Path::new(DEFAULT_MOUNT));
            assert!(fs.root().join("tracing_on").exists());
            assert!(Tracefs::find().unwrap().is_some());
            assert!(kscope_tracefs::caller_mount_namespace().is_some());
            assert_eq!(
                mounted_for_the_process(),
                before,
                "the mount reached the namespace the test started in"
            );
        }
        Some(existing) => {
            // Someone mounted it before us: it must be used and left alone.
            let fs = guard.tracefs().expect("find");
            assert!(!fs.mounted_by_us());
            assert_eq!(fs.root(), existing.root());
            assert!(Tracefs::find().unwrap().is_some());
        }
    }
    assert_eq!(guard.pending(), 0, "a mount is not a change to undo");
    guard.restore().expect("nothing to restore");
}
