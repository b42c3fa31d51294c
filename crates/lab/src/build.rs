//! The kscope binaries that go into the guest, linked statically (the
//! guest has no C library): `kscope` itself and `kscope-lab-guest`, built
//! from this workspace by cargo into `target/lab/static`, so that the
//! ordinary build's cache is left alone.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::Result;
use crate::tools::run_tool;

/// The target the static binaries are built for. RUSTFLAGS apply only to
/// the target's artifacts when `--target` is given, so build scripts and
/// proc-macros stay dynamically linked, as they must.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Where the static binaries are.
#[derive(Debug, Clone)]
pub struct StaticBinaries {
    dir: PathBuf,
}

impl StaticBinaries {
    /// A directory holding static `kscope` and `kscope-lab-guest`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The static kscope.
    pub fn kscope(&self) -> PathBuf {
        self.dir.join("kscope")
    }

    /// The guest helper.
    pub fn guest(&self) -> PathBuf {
        self.dir.join("kscope-lab-guest")
    }
}

/// Builds (or brings up to date) the static binaries from `workspace`.
pub fn build_static(workspace: &Path) -> Result<StaticBinaries> {
    let target_dir = workspace.join("target/lab/static");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_tool(
        Command::new(cargo)
            .current_dir(workspace)
            .args([
                "build",
                "--release",
                "--locked",
                "--quiet",
                "--target",
                TARGET,
            ])
            .args(["-p", "kscope", "--bin", "kscope"])
            .args(["-p", "kscope-lab", "--bin", "kscope-lab-guest"])
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .env_remove("CARGO_ENCODED_RUSTFLAGS"),
    )?;
    Ok(StaticBinaries {
        dir: target_dir.join(TARGET).join("release"),
    })
}
