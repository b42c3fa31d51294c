//! Finding and mounting tracefs.

use kscope_testkit::{TracefsLock, live, missing_root};
use kscope_tracefs::{DEFAULT_MOUNT, StateGuard, Tracefs};

#[test]
fn an_absent_tracefs_is_mounted_and_unmounted_again() {
    if !live("tracefs mount", missing_root()) {
        return;
    }
    let _lock = TracefsLock::acquire();
    match Tracefs::find().expect("mountinfo") {
        None => {
            let guard = StateGuard::new();
            let fs = guard.tracefs().expect("mount");
            assert!(fs.mounted_by_us());
            assert_eq!(fs.root(), std::path::Path::new(DEFAULT_MOUNT));
            assert!(fs.root().join("tracing_on").exists());
            assert!(Tracefs::find().unwrap().is_some());
            guard.restore().expect("unmount");
            assert!(Tracefs::find().unwrap().is_none(), "tracefs left mounted");
        }
        Some(existing) => {
            // Someone mounted it before us: it must be used and left alone.
            let guard = StateGuard::new();
            let fs = guard.tracefs().expect("find");
            assert!(!fs.mounted_by_us());
            assert_eq!(fs.root(), existing.root());
            assert_eq!(guard.pending(), 0);
            guard.restore().expect("nothing to restore");
            assert!(Tracefs::find().unwrap().is_some());
        }
    }
}
