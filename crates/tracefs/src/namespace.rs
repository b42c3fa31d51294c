//! kscope's private mount namespace. When tracefs (or securityfs) is
//! mounted nowhere, kscope does not mount it for everyone, where the first
//! kscope to exit would unmount it under every other one still using it:
//! it moves itself into a mount namespace of its own (`unshare(CLONE_NEWNS)`),
//! makes every mount there private so that nothing propagates back, and
//! mounts the filesystem there. Nothing global changes, and the mount
//! vanishes with the process, even on SIGKILL. The tree under the mount is
//! the kernel's one tracefs, so instances made there are the same as
//! everyone's.
//!
//! `unshare(CLONE_NEWNS)` moves only the calling thread (the kernel gives
//! it an fs_struct of its own) and the threads it starts later: a program
//! calls [`mount_privately`] first thing in `main`, before it starts a
//! thread, so that the whole process is in the namespace. (A test thread
//! that calls it gets a namespace of its own, which is what a test wants.)
//! Mounts are therefore read from /proc/thread-self/mountinfo. The
//! caller's namespace stays open ([`caller_mount_namespace`]) so that a
//! command the user asked to run can be run back in it.

use std::cell::RefCell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::mountinfo::{DEFAULT_MOUNT, read_mountinfo};
use crate::sys;

/// A kernel filesystem kscope may mount in its private namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelFs {
    /// tracefs, at /sys/kernel/tracing.
    Tracefs,
    /// securityfs (it holds `lockdown`), at /sys/kernel/security.
    Securityfs,
}

impl KernelFs {
    /// The filesystem type as mountinfo spells it.
    pub fn fstype(self) -> &'static str {
        match self {
            KernelFs::Tracefs => "tracefs",
            KernelFs::Securityfs => "securityfs",
        }
    }

    /// Where kscope mounts it.
    pub fn mount_point(self) -> &'static Path {
        Path::new(match self {
            KernelFs::Tracefs => DEFAULT_MOUNT,
            KernelFs::Securityfs => "/sys/kernel/security",
        })
    }

    fn fstype_c(self) -> &'static std::ffi::CStr {
        match self {
            KernelFs::Tracefs => c"tracefs",
            KernelFs::Securityfs => c"securityfs",
        }
    }
}

/// What the thread did to its mount namespace.
#[derive(Debug, Default)]
struct Namespace {
    /// True once the thread runs in a namespace of its own.
    private: bool,
    /// What it mounted there.
    mounted: Vec<KernelFs>,
    /// Why the namespace could not be made, kept so that a later call
    /// (from a thread, where unshare can no longer work) gives the first
    /// reason.
    failure: Option<String>,
}

thread_local! {
    static NAMESPACE: RefCell<Namespace> = RefCell::new(Namespace::default());
}
static CALLER_NAMESPACE: OnceLock<OwnedFd> = OnceLock::new();

/// The mount namespace kscope was started in, when it moved to a private
/// one (the first one made, in a process where several threads made
/// one): a child that must see the caller's mounts (the user's `-c` or
/// `-- COMMAND`) calls `setns(fd, CLONE_NEWNS)` with it between fork and
/// exec. `None` when kscope stayed in the caller's namespace. The fd is
/// close-on-exec.
pub fn caller_mount_namespace() -> Option<BorrowedFd<'static>> {
    CALLER_NAMESPACE.get().map(AsFd::as_fd)
}

/// True when this thread (or, in kscope, the process) mounted `fs` in
/// its private namespace.
pub fn mounted_privately(fs: KernelFs) -> bool {
    NAMESPACE.with_borrow(|namespace| namespace.mounted.contains(&fs))
}

/// The mount point of each of `wanted` in this thread's namespace (`None`
/// when mounted nowhere).
fn find_mounts(wanted: &[KernelFs]) -> Result<Vec<Option<PathBuf>>> {
    let mounts = read_mountinfo()?;
    Ok(wanted
        .iter()
        .map(|fs| {
            let of_type = || mounts.iter().filter(|m| m.fstype == fs.fstype());
            of_type()
                .find(|m| m.mount_point == fs.mount_point())
                .or_else(|| of_type().next())
                .map(|m| m.mount_point.clone())
        })
        .collect())
}

/// Mounts each of `wanted` that is mounted nowhere, in a private mount
/// namespace of this process's own (made on the first such call). Does
/// nothing when all are mounted. Call it before the process starts any
/// thread (see the module doc); a later call can still mount in the
/// namespace made earlier.
pub fn mount_privately(wanted: &[KernelFs]) -> Result<()> {
    let found = find_mounts(wanted)?;
    let missing: Vec<KernelFs> = wanted
        .iter()
        .zip(&found)
        .filter(|(_, at)| at.is_none())
        .map(|(fs, _)| *fs)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names = || {
        missing
            .iter()
            .map(|fs| fs.fstype())
            .collect::<Vec<_>>()
            .join(" and ")
    };
    if !sys::is_root() {
        return Err(Error::NotMounted {
            what: names(),
            hint: format!(
                "; as root, kscope mounts it in a private mount namespace (or: mount -t tracefs nodev {DEFAULT_MOUNT})"
            ),
        });
    }
    NAMESPACE.with_borrow_mut(|namespace| mount_missing(namespace, &missing, &names()))
}

fn mount_missing(namespace: &mut Namespace, missing: &[KernelFs], names: &str) -> Result<()> {
    let names = || names.to_string();
    if let Some(failure) = &namespace.failure {
        return Err(Error::NotMounted {
            what: names(),
            hint: format!("; {failure}"),
        });
    }
    if !namespace.private {
        if let Err(failure) = enter_private_namespace() {
            let text = format!(
                "kscope could not make a private mount namespace to mount it in ({failure}); mount it: mount -t tracefs nodev {DEFAULT_MOUNT}"
            );
            namespace.failure = Some(text.clone());
            return Err(Error::NotMounted {
                what: names(),
                hint: format!("; {text}"),
            });
        }
        namespace.private = true;
    }
    for &fs in missing {
        let target = fs.mount_point();
        sys::mount_kernel_fs(fs.fstype_c(), target).map_err(|source| Error::Mount {
            path: target.to_path_buf(),
            source,
        })?;
        namespace.mounted.push(fs);
    }
    Ok(())
}

/// unshare(CLONE_NEWNS), keeping the caller's namespace open first, then
/// every mount made private.
fn enter_private_namespace() -> std::result::Result<(), String> {
    let caller = sys::open_mount_namespace()
        .map_err(|err| format!("cannot open /proc/thread-self/ns/mnt: {err}"))?;
    sys::unshare_mount_namespace().map_err(|err| format!("unshare(CLONE_NEWNS): {err}"))?;
    // Until this succeeds a mount could propagate to the caller's
    // namespace: nothing is mounted when it fails.
    sys::make_all_mounts_private()
        .map_err(|err| format!("cannot make the mounts private: {err}"))?;
    // The first namespace made is the one kscope's main thread left;
    // another thread's (in tests) leaves the first in place.
    let _ = CALLER_NAMESPACE.set(caller);
    Ok(())
}

/// Where securityfs is mounted (it holds `lockdown`); when it is mounted
/// nowhere and we are root, mounts it in this process's private mount
/// namespace (see [`mount_privately`]). Returns the mount point and
/// whether it was mounted privately for us.
pub fn securityfs() -> Result<(PathBuf, bool)> {
    mount_privately(&[KernelFs::Securityfs])?;
    let at = find_mounts(&[KernelFs::Securityfs])?
        .pop()
        .flatten()
        .ok_or_else(|| Error::NotMounted {
            what: KernelFs::Securityfs.fstype().to_string(),
            hint: String::new(),
        })?;
    Ok((at, mounted_privately(KernelFs::Securityfs)))
}
