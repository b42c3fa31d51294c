//! Integration tests of `ps`, `bt` and `mod` (tasks, stacks, modules),
//! one binary: the real QEMU dumps that `scripts/make-vmcore` leaves
//! under `target/vmcores` (live-gated), compared with the oracles made
//! beside them (drgn 0.3.0 and crash 8.0.2 with the kernel's -dbg
//! vmlinux), and kernel structures built in memory to be hostile.

// Helpers outside #[test] functions unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

mod dumps;
mod hostile;
mod modules;
mod stack;
mod tasks;
