//! The guest lab: kscope's live tests of kernel features this host lacks
//! (kprobes, the function tracer, /proc/kcore, kdump) run in Debian's own
//! kernel booted under QEMU.
//!
//! [`Lab::prepare`] fetches the kernel package with apt (cached under
//! `target/lab/kernel`), builds static `kscope` and `kscope-lab-guest`
//! binaries, and packs them with busybox into an initramfs. [`Lab::run`]
//! boots a guest that runs a batch of shell commands and powers off; each
//! command's stdout, stderr and exit status come back over a second serial
//! port. One boot runs a whole batch. A guest that panics or passes its
//! deadline ends the run, and every error carries the console's tail.
//!
//! Tests do not call the lab directly but [`run_for_test`], which runs the
//! batch on the host when the host has the features and in the lab when it
//! does not.
//!
//! ```no_run
//! use std::time::Duration;
//! use kscope_lab::{Feature, GuestCommand, run_for_test};
//! let commands = [GuestCommand::new("doctor", "kscope doctor --json")];
//! if let Some((_, batch)) = run_for_test("doctor", &[Feature::Kprobes], "doc", &commands, Duration::from_secs(120)) {
//!     let doctor = batch.success("doctor").unwrap_or_else(|e| panic!("{e}"));
//!     assert!(doctor.stdout_text().contains("kprobes"));
//! }
//! ```

mod build;
mod error;
mod guest;
mod initramfs;
mod kernel;
mod placement;
mod results;
mod sys;
mod tools;

pub use build::{StaticBinaries, TARGET, build_static};
pub use error::{LabError, Result};
pub use guest::{Batch, CONSOLE_TAIL_LINES, KERNEL_CMDLINE, Lab, Outcome};
pub use initramfs::{GUEST_MODULES, GuestCommand, Mode};
pub use kernel::{DebianKernel, METAPACKAGE};
pub use placement::{
    Feature, Placement, host_report, missing_on_host, placement, run_for_test, run_on_host,
    shared_lab,
};
pub use results::{CommandResult, ResultStream};
pub use tools::{PREREQUISITES, missing_prerequisite, workspace_root};
