//! Typed control of the Linux tracefs (`/sys/kernel/tracing`).
//!
//! This crate is the bottom of kscope's tracing data flow: every other
//! crate that turns tracing on goes through it. It finds the tracefs mount
//! (and, as root, when tracefs is mounted nowhere, mounts it in a private
//! mount namespace of the process's own: [`mount_privately`]), creates
//! private instances (`instances/kscope-<pid>`), reads and writes control
//! files with errors that carry the kernel's `error_log` explanation, and
//! records every change in a [`StateGuard`] that undoes it on drop, panic
//! and signals, and journals it under /run/kscope first, so that what a
//! kscope killed by SIGKILL left is undone by the next one
//! ([`undo_leftovers`]).
//!
//! Reading never changes anything: [`Tracefs::find`] and the read calls
//! only read. Changes are made only through [`StateGuard`].
//!
//! ```no_run
//! use kscope_tracefs::{StateGuard, restore_on_signals};
//! restore_on_signals()?;
//! let guard = StateGuard::new();
//! let fs = guard.tracefs()?;
//! let mine = guard.private_instance(&fs)?;
//! guard.set_buffer_size_kb(&mine, 4096)?;
//! guard.enable_event(&mine, "syscalls", "sys_enter_openat")?;
//! guard.set_filter(&mine, "syscalls", "sys_enter_openat", "common_pid != 1")?;
//! // ... read mine.file("per_cpu/cpu0/trace_pipe_raw") ...
//! guard.restore()?; // the instance is gone, and tracefs is as it was
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod control;
mod error;
mod guard;
mod instance;
mod journal;
mod mount;
mod mountinfo;
pub mod names;
mod namespace;
mod sys;

pub use error::{Error, Result};
pub use guard::{
    ProbeFile, StateGuard, end_as_interrupted, handle_interrupt_gracefully, interrupted,
    private_instance_name, restore_on_signals,
};
pub use instance::Instance;
pub use journal::{Leftover, LeftoverOutcome, RUN_DIR, find_leftovers, run_dir, undo_leftovers};
pub use mount::{Tracefs, choose_tracefs};
pub use mountinfo::{DEFAULT_MOUNT, MountEntry, parse_mountinfo};
pub use namespace::{
    KernelFs, caller_mount_namespace, mount_privately, mounted_privately, securityfs,
};
