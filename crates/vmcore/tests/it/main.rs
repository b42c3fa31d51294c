//! Integration tests of kscope-vmcore, one binary: synthetic dumps of
//! every format built in code (`build.rs`), hostile variants of them, page
//! tables built in synthetic memory, and the real QEMU dumps that
//! `scripts/make-vmcore` leaves under `target/vmcores` (live-gated).

// Helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod build;
mod formats;
mod hostile;
mod real_dumps;
mod seeds;
mod translate;
