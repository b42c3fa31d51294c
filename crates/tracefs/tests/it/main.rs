//! Live tests of the tracefs crate against the running kernel. Each test
//! holds the shared tracefs lock, mounts tracefs through an outer guard
//! when it is absent (so that the comparison sees a stable mount), and
//! compares every control file before and after.

mod child;
mod guard;
mod mount;

pub use kscope_testkit::with_unchanged_tracefs;
