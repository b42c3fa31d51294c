//! Integration tests of kscope-kernel, one binary: the kernel read out of
//! the real QEMU dumps of Debian's kernel that `scripts/make-vmcore`
//! leaves under `target/vmcores` (live-gated: skipped with a reason when
//! they are absent, a failure under `KSCOPE_REQUIRE_LIVE=1`), compared
//! with what crash, drgn, makedumpfile and the guest's console say.

// Helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod dumps;
mod kallsyms;
mod log;
mod session;
mod system;
mod types;
