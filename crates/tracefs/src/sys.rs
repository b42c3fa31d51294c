//! The only place where this crate calls the kernel other than through
//! ordinary file reads and writes: mount(2) of tracefs and securityfs,
//! and unshare(2) of the mount namespace (the journal's files under
//! /run/kscope are made through kscope-outfile).

// Each wrapper below passes NUL-terminated copies of its arguments to one
// syscall and turns its -1 into an io::Error; nothing else is unsafe.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Mounts a fresh instance of a kernel pseudo filesystem (`tracefs`,
/// `securityfs`) at `target`.
pub(crate) fn mount_kernel_fs(fstype: &std::ffi::CStr, target: &Path) -> io::Result<()> {
    let target = c_path(target)?;
    // SAFETY: every pointer is a valid NUL-terminated string that outlives
    // the call; data is NULL, which these filesystems accept (no options).
    check(unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    })
}

/// Opens the calling thread's mount namespace
/// (`/proc/thread-self/ns/mnt`), close on exec, so that a child can
/// `setns(2)` back into it.
pub(crate) fn open_mount_namespace() -> io::Result<OwnedFd> {
    File::open("/proc/thread-self/ns/mnt").map(OwnedFd::from)
}

/// Moves the calling thread into a mount namespace of its own, a copy of
/// the current one. In a process with threads only the caller moves (the
/// kernel gives it its own fs_struct): call it while there is one thread.
pub(crate) fn unshare_mount_namespace() -> io::Result<()> {
    // SAFETY: unshare takes a flag word and no pointers.
    check(unsafe { libc::unshare(libc::CLONE_NEWNS) })
}

/// Makes every mount of the current namespace private, recursively, so
/// that nothing mounted here propagates to the namespace it was copied
/// from.
pub(crate) fn make_all_mounts_private() -> io::Result<()> {
    // SAFETY: "/" is a valid NUL-terminated string; source, type and data
    // are NULL, as a propagation change takes them.
    check(unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    })
}

/// True when the process runs with uid 0 (the usual owner of tracefs).
pub(crate) fn is_root() -> bool {
    effective_uid() == 0
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_with_nul_is_refused_before_the_syscall() {
        let bad = Path::new(std::ffi::OsStr::from_bytes(b"/tmp/a\0b"));
        assert_eq!(
            mount_kernel_fs(c"tracefs", bad).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
