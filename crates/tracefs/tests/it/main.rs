//! Live tests of the tracefs crate against the running kernel. Each test
//! holds the shared tracefs lock, mounts tracefs through an outer guard
//! when it is absent (so that the comparison sees a stable mount), and
//! compares every control file before and after.

mod child;
mod guard;
mod mount;

use kscope_testkit::{TracefsLock, assert_tracefs_unchanged_by, live, missing_root};
use kscope_tracefs::{StateGuard, Tracefs};

/// Runs `body` against a mounted tracefs, then asserts that tracefs is
/// byte for byte as it was before `body`.
fn with_unchanged_tracefs(what: &str, body: impl FnOnce(&Tracefs)) {
    if !live(what, missing_root()) {
        return;
    }
    let _lock = TracefsLock::acquire();
    let outer = StateGuard::new();
    let fs = outer.tracefs().expect("tracefs");
    assert_tracefs_unchanged_by(what, fs.root(), || body(&fs));
    outer.restore().expect("unmount");
}
