//! [`PrivateDir`]: a directory only the effective user may enter, either
//! made fresh under a random name and removed on drop, or a persistent
//! one made or checked at a fixed path; files in it are created through
//! its descriptor, exclusively.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::{AtomicFile, Error, create_exclusive, open_dir, split, with_random_name};

/// The mode of a private directory.
const DIR_MODE: u32 = 0o700;

/// The mode of a file in a private directory.
const FILE_MODE: u32 = 0o600;

/// A directory only the effective user may enter (see the [crate] doc).
#[derive(Debug)]
pub struct PrivateDir {
    fd: OwnedFd,
    path: PathBuf,
    /// For a temporary directory: its parent and its name there, to remove
    /// it on drop.
    temporary: Option<(OwnedFd, OsString)>,
}

impl PrivateDir {
    /// Makes a new directory in `parent` (which must exist), named
    /// `prefix` and 16 random hex digits, with mode 0700; it is removed
    /// with its files when dropped.
    pub fn create_temporary(parent: &Path, prefix: &str) -> Result<PrivateDir, Error> {
        PrivateDir::create_in(open_dir(parent, &parent.join(prefix))?, parent, prefix)
    }

    /// [`create_temporary`](PrivateDir::create_temporary) in the directory
    /// of `path`, the output the directory serves: a missing directory is
    /// reported as one `path` cannot be written to.
    pub fn create_beside(path: &Path, prefix: &str) -> Result<PrivateDir, Error> {
        let (parent, _) = split(path)?;
        PrivateDir::create_in(open_dir(&parent, path)?, &parent, prefix)
    }

    /// A temporary directory in the open directory `parent_fd` (`parent`
    /// for errors).
    fn create_in(parent_fd: OwnedFd, parent: &Path, prefix: &str) -> Result<PrivateDir, Error> {
        let (name, ()) = with_random_name(prefix, parent, |name| {
            rustix::fs::mkdirat(&parent_fd, name, Mode::from_raw_mode(DIR_MODE))
        })?;
        let path = parent.join(&name);
        let fd = open_private(&parent_fd, &name, &path)?;
        Ok(PrivateDir {
            fd,
            path,
            temporary: Some((parent_fd, name)),
        })
    }

    /// The existing private directory `path`: a real directory (not a
    /// link), owned by the effective user, writable by no one else.
    pub fn open(path: &Path) -> Result<PrivateDir, Error> {
        let (dir_path, name) = split(path)?;
        let parent = open_dir(&dir_path, path)?;
        Ok(PrivateDir {
            fd: open_private(&parent, &name, path)?,
            path: path.to_path_buf(),
            temporary: None,
        })
    }

    /// The private directory `path`, made with mode 0700 (and so are the
    /// missing directories above it) when absent, checked as
    /// [`open`](PrivateDir::open) does when present. It is kept on drop.
    pub fn open_or_create(path: &Path) -> Result<PrivateDir, Error> {
        make_dirs(path)?;
        PrivateDir::open(path)
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the file `name` (mode 0600, open for reading and writing);
    /// it must not exist, as a file or as a link.
    pub fn create_file(&self, name: &str) -> Result<File, Error> {
        create_exclusive(&self.fd, OsStr::new(name), FILE_MODE)
            .map(File::from)
            .map_err(|e| Error::io("create", &self.path.join(name), e))
    }

    /// Opens the existing file `name` for reading; a link there is
    /// refused.
    pub fn open_file(&self, name: &str) -> Result<File, Error> {
        let path = self.path.join(name);
        rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map(File::from)
        .map_err(|e| match e {
            Errno::LOOP => Error::Symlink { path },
            e => Error::io("open", &path, e),
        })
    }

    /// Removes the file `name`.
    pub fn remove_file(&self, name: &str) -> Result<(), Error> {
        rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())
            .map_err(|e| Error::io("remove", &self.path.join(name), e))
    }

    /// True when `name` in this directory is still the file open as
    /// `file` (the same device and inode, not followed through a link):
    /// false once it was removed or replaced under that name.
    pub fn still_holds(&self, name: &str, file: &File) -> Result<bool, Error> {
        let path = self.path.join(name);
        let open = rustix::fs::fstat(file).map_err(|e| Error::io("stat", &path, e))?;
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(named) => Ok(named.st_dev == open.st_dev && named.st_ino == open.st_ino),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(Error::io("stat", &path, e)),
        }
    }

    /// The names in the directory (`.` and `..` left out).
    pub fn names(&self) -> Result<Vec<OsString>, Error> {
        let list = |e| Error::io("list", &self.path, e);
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(&self.fd).map_err(list)? {
            let entry = entry.map_err(list)?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(name).to_os_string());
            }
        }
        Ok(names)
    }

    /// Starts writing the file `name` in this directory through a
    /// temporary file (see [`AtomicFile`]).
    pub fn atomic_file(&self, name: &str) -> Result<AtomicFile, Error> {
        AtomicFile::create_in(
            self.clone_fd()?,
            &self.path,
            self.clone_fd()?,
            name.into(),
            self.path.join(name),
        )
    }

    /// Starts writing `target`, a file of another directory on the same
    /// filesystem (that directory must exist), through a temporary file in
    /// this one, renamed over `target` by [`AtomicFile::commit`]. Until
    /// then the partial file is one of this directory's: when the writer
    /// dies before it commits (SIGKILL), it goes wherever the directory
    /// goes (a temporary directory journaled for removal, as `trace
    /// record`'s is), and nothing is left beside `target`.
    pub fn stage(&self, target: &Path) -> Result<AtomicFile, Error> {
        let (dir_path, name) = split(target)?;
        let dir = open_dir(&dir_path, target)?;
        AtomicFile::create_in(
            self.clone_fd()?,
            &self.path,
            dir,
            name,
            target.to_path_buf(),
        )
    }

    /// A second descriptor of the directory.
    fn clone_fd(&self) -> Result<OwnedFd, Error> {
        self.fd
            .try_clone()
            .map_err(|e| Error::io("open directory", &self.path, e))
    }
}

impl AsFd for PrivateDir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let Some((parent, name)) = &self.temporary else {
            return;
        };
        // Only what is in the directory this descriptor names is removed,
        // wherever someone may have moved it.
        for entry in self.names().unwrap_or_default() {
            let _ = rustix::fs::unlinkat(&self.fd, &entry, AtFlags::empty());
        }
        // The name in the parent: if it no longer is this (now empty)
        // directory, rmdir only removes an empty directory, never a link.
        let _ = rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR);
    }
}

/// Opens the directory `name` in `parent` without following a link and
/// checks that it is private.
fn open_private(parent: impl AsFd, name: &OsStr, path: &Path) -> Result<OwnedFd, Error> {
    let not_private = |reason: String| Error::NotPrivate {
        path: path.to_path_buf(),
        reason,
    };
    let fd = rustix::fs::openat(
        &parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        // With O_DIRECTORY, a link is ENOTDIR: say which it was.
        Errno::LOOP | Errno::NOTDIR => {
            let link = rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Symlink);
            not_private(match link {
                true => "it is a symbolic link".into(),
                false => "it is not a directory".into(),
            })
        }
        e => Error::io("open directory", path, e),
    })?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| Error::io("stat", path, e))?;
    let euid = rustix::process::geteuid().as_raw();
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
        return Err(not_private("it is not a directory".into()));
    }
    if stat.st_uid != euid {
        return Err(not_private(format!(
            "it belongs to uid {}, not to uid {euid}",
            stat.st_uid
        )));
    }
    if stat.st_mode & 0o022 != 0 {
        return Err(not_private(format!(
            "its mode {:o} lets others write in it",
            stat.st_mode & 0o7777
        )));
    }
    Ok(fd)
}

/// Makes `path` and the missing directories above it, each with mode
/// 0700; existing ones are left as they are.
fn make_dirs(path: &Path) -> Result<(), Error> {
    let mkdir = || rustix::fs::mkdir(path, Mode::from_raw_mode(DIR_MODE));
    let made = match (mkdir(), path.parent()) {
        (Err(Errno::NOENT), Some(parent)) if !parent.as_os_str().is_empty() => {
            make_dirs(parent)?;
            mkdir()
        }
        (made, _) => made,
    };
    match made {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(Error::io("create directory", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_file_is_held_until_removed_or_replaced_under_its_name() {
        let parent = tempfile::tempdir().unwrap();
        let dir = PrivateDir::open_or_create(&parent.path().join("run")).unwrap();
        let file = dir.create_file("a.journal").unwrap();
        assert!(dir.still_holds("a.journal", &file).unwrap());
        dir.remove_file("a.journal").unwrap();
        assert!(!dir.still_holds("a.journal", &file).unwrap());
        let other = dir.create_file("b.journal").unwrap();
        std::os::unix::fs::symlink(dir.path().join("b.journal"), dir.path().join("a.journal"))
            .unwrap();
        assert!(!dir.still_holds("a.journal", &other).unwrap());
        assert!(dir.still_holds("b.journal", &other).unwrap());
    }

    /// The names in `dir`, sorted.
    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_staged_file_stays_in_the_private_directory_until_committed_and_goes_with_it() {
        let parent = tempfile::tempdir().unwrap();
        let victim = parent.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let target = parent.path().join("trace.dat");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        let dir = PrivateDir::create_beside(&target, ".kscope-record-").unwrap();
        let dir_name = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let out = dir.stage(&target).unwrap();
        out.file().write_all(b"trace").unwrap();
        // While it is written, the partial file is in the private
        // directory, and nothing new is beside the target.
        assert_eq!(
            listing(parent.path()),
            [dir_name.as_str(), "trace.dat", "victim"]
        );
        let staged = dir.names().unwrap();
        assert_eq!(staged.len(), 1);
        assert!(
            staged[0].to_string_lossy().starts_with(".kscope-partial-"),
            "{staged:?}"
        );
        out.commit().unwrap();
        // Renamed over the link, never through it.
        assert_eq!(std::fs::read(&target).unwrap(), b"trace");
        assert!(std::fs::symlink_metadata(&target).unwrap().is_file());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(dir.names().unwrap().is_empty());

        // A writer killed before it commits runs no destructor: its
        // partial file goes with the directory.
        let out = dir.stage(&parent.path().join("other.dat")).unwrap();
        out.file().write_all(b"partial").unwrap();
        std::mem::forget(out);
        drop(dir);
        assert_eq!(listing(parent.path()), ["trace.dat", "victim"]);
    }

    #[test]
    fn a_staged_file_needs_its_target_s_directory() {
        let parent = tempfile::tempdir().unwrap();
        let dir = PrivateDir::create_temporary(parent.path(), ".kscope-record-").unwrap();
        let target = parent.path().join("typo/x.dat");
        let error = dir.stage(&target).unwrap_err();
        assert!(matches!(error, Error::MissingDirectory { .. }), "{error}");
        assert!(dir.names().unwrap().is_empty());
    }

    #[test]
    fn a_temporary_directory_is_new_0700_with_0600_files_and_goes_on_drop() {
        let parent = tempfile::tempdir().unwrap();
        let a = PrivateDir::create_temporary(parent.path(), ".kscope-record-").unwrap();
        let b = PrivateDir::create_temporary(parent.path(), ".kscope-record-").unwrap();
        assert_ne!(a.path(), b.path());
        assert_eq!(mode(a.path()), 0o700);
        let mut file = a.create_file("cpu0").unwrap();
        file.write_all(b"pages").unwrap();
        assert_eq!(mode(&a.path().join("cpu0")), 0o600);
        assert_eq!(a.names().unwrap(), vec![OsString::from("cpu0")]);
        assert!(a.create_file("cpu0").is_err());
        let mut text = String::new();
        a.open_file("cpu0")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "pages");
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists());
        drop(b);
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_link_planted_in_a_private_directory_is_neither_created_over_nor_opened() {
        let parent = tempfile::tempdir().unwrap();
        let victim = parent.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let dir = PrivateDir::create_temporary(parent.path(), "p-").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("cpu0")).unwrap();
        assert!(dir.create_file("cpu0").is_err());
        assert!(matches!(dir.open_file("cpu0"), Err(Error::Symlink { .. })));
        drop(dir);
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn a_temporary_directory_moved_away_and_replaced_by_a_link_removes_nothing_else() {
        let parent = tempfile::tempdir().unwrap();
        let elsewhere = parent.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("cpu0"), b"precious").unwrap();
        let dir = PrivateDir::create_temporary(parent.path(), "p-").unwrap();
        dir.create_file("cpu0").unwrap();
        let moved = parent.path().join("moved");
        std::fs::rename(dir.path(), &moved).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path()).unwrap();
        // Files made from now on go to the directory made, wherever it is.
        dir.create_file("cpu1").unwrap();
        assert!(moved.join("cpu1").exists());
        drop(dir);
        assert_eq!(std::fs::read(elsewhere.join("cpu0")).unwrap(), b"precious");
        assert_eq!(std::fs::read_dir(&moved).unwrap().count(), 0);
    }

    #[test]
    fn open_or_create_makes_0700_directories_and_checks_existing_ones() {
        let parent = tempfile::tempdir().unwrap();
        let run = parent.path().join("run/kscope");
        let dir = PrivateDir::open_or_create(&run).unwrap();
        assert_eq!(mode(&run), 0o700);
        assert_eq!(mode(&parent.path().join("run")), 0o700);
        dir.create_file("journal").unwrap();
        drop(dir);
        // A persistent directory stays, and is opened again as it is.
        let dir = PrivateDir::open_or_create(&run).unwrap();
        assert_eq!(dir.names().unwrap(), vec![OsString::from("journal")]);
        dir.remove_file("journal").unwrap();
        assert!(dir.names().unwrap().is_empty());

        let writable = parent.path().join("writable");
        std::fs::create_dir(&writable).unwrap();
        std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o770)).unwrap();
        let error = PrivateDir::open_or_create(&writable).unwrap_err();
        assert!(error.to_string().contains("lets others write"), "{error}");

        let link = parent.path().join("link");
        std::os::unix::fs::symlink(&run, &link).unwrap();
        let error = PrivateDir::open_or_create(&link).unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");

        let file = parent.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let error = PrivateDir::open(&file).unwrap_err();
        assert!(error.to_string().contains("not a directory"), "{error}");
    }

    #[test]
    fn a_directory_of_another_user_is_not_private() {
        if !kscope_testkit::live(
            "directories of another user",
            kscope_testkit::missing_root(),
        ) {
            return;
        }
        let parent = tempfile::tempdir().unwrap();
        let theirs = parent.path().join("kscope");
        std::fs::create_dir(&theirs).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let error = PrivateDir::open_or_create(&theirs).unwrap_err();
        assert!(
            error.to_string().contains("belongs to uid 65534"),
            "{error}"
        );
    }
}
