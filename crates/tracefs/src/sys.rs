//! The only place where this crate calls the kernel other than through
//! ordinary file reads and writes: mount(2) of tracefs and securityfs,
//! unshare(2) of the mount namespace, and the safe creation of the run
//! directory and journal files under /run/kscope.

// Each wrapper below passes NUL-terminated copies of its arguments to one
// syscall and turns its -1 into an io::Error; nothing else is unsafe.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
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

/// Creates `dir` with mode 0700 when it does not exist (its parent must),
/// then checks without following a link that it is a directory owned by
/// this user that nobody else may write to.
pub(crate) fn private_directory(dir: &Path) -> io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    let refuse = |why: &str| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} {why}; kscope will not use it", dir.display()),
        ))
    };
    if !meta.file_type().is_dir() {
        return refuse("is not a directory (a symbolic link?)");
    }
    if meta.uid() != effective_uid() {
        return refuse(&format!("is owned by uid {}, not by this user", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return refuse(&format!(
            "can be written by others (mode {:o})",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

/// Creates `path` for appending, failing when anything (a link included)
/// is already there: O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, mode 0600.
pub(crate) fn create_new_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Opens an existing journal for reading without following a link.
pub(crate) fn open_existing_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// True when `path` still names the file open as `file` (same device and
/// inode): a file unlinked, or replaced, under its name fails.
pub(crate) fn still_named(file: &File, path: &Path) -> io::Result<bool> {
    let open = file.metadata()?;
    match std::fs::symlink_metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
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

    #[test]
    fn a_private_directory_is_made_0700_and_a_link_or_open_one_refused() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("run");
        private_directory(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        private_directory(&dir).unwrap();

        let link = base.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let err = private_directory(&link).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");

        let open = base.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = private_directory(&open).unwrap_err();
        assert!(err.to_string().contains("written by others"), "{err}");
    }

    #[test]
    fn a_new_file_is_never_created_through_a_link_or_over_a_file() {
        let base = tempfile::tempdir().unwrap();
        let target = base.path().join("target");
        std::fs::write(&target, "precious").unwrap();
        let link = base.path().join("journal");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(create_new_file(&link).is_err());
        assert!(create_new_file(&target).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
        assert!(open_existing_file(&link).is_err());

        let fresh = base.path().join("fresh");
        let file = create_new_file(&fresh).unwrap();
        assert!(still_named(&file, &fresh).unwrap());
        std::fs::remove_file(&fresh).unwrap();
        assert!(!still_named(&file, &fresh).unwrap());
    }
}
