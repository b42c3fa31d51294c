//! The only place where this crate calls the kernel other than through
//! ordinary file reads and writes: mount(2) and umount2(2) for tracefs.

// Each wrapper below passes NUL-terminated copies of its arguments to one
// syscall and turns its -1 into an io::Error; nothing else is unsafe.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Mounts a fresh instance of a kernel pseudo filesystem (`tracefs`,
/// `securityfs`) at `target`.
pub(crate) fn mount_kernel_fs(fstype: &std::ffi::CStr, target: &Path) -> io::Result<()> {
    let target = c_path(target)?;
    // SAFETY: every pointer is a valid NUL-terminated string that outlives
    // the call; data is NULL, which these filesystems accept (no options).
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Unmounts `target`; when something still holds it busy, detaches it so
/// that it disappears as soon as the last user goes.
pub(crate) fn unmount(target: &Path) -> io::Result<()> {
    let target = c_path(target)?;
    // SAFETY: `target` is a valid NUL-terminated string for both calls.
    let rc = unsafe { libc::umount2(target.as_ptr(), 0) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EBUSY) {
        return Err(err);
    }
    // SAFETY: as above.
    let rc = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// True when `signal` is ignored (SIG_IGN) in this process: inherited so
/// from `nohup`, or from a shell that starts background jobs with SIGINT
/// and SIGQUIT ignored.
pub(crate) fn signal_ignored(signal: libc::c_int) -> io::Result<bool> {
    // SAFETY: a zeroed sigaction is a valid value for the kernel to fill.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a NULL new action only queries; `current` is a live,
    // writable sigaction.
    let rc = unsafe { libc::sigaction(signal, std::ptr::null(), &mut current) };
    if rc == 0 {
        Ok(current.sa_sigaction == libc::SIG_IGN)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// True when the process runs with uid 0 (the usual owner of tracefs).
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
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
        assert_eq!(
            unmount(bad).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn unmounting_a_path_that_is_no_mount_point_fails_cleanly() {
        let dir = std::env::temp_dir();
        let err = unmount(&dir).unwrap_err();
        assert!(matches!(
            err.raw_os_error(),
            Some(libc::EINVAL) | Some(libc::EPERM)
        ));
    }
}
