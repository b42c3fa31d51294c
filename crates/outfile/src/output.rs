//! Outputs a user names: [`AtomicFile`] (written whole to a temporary
//! file, then renamed over the target) and [`create_streamed`] (written as
//! data comes, opened without following a link).

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::{Error, create_exclusive, open_dir, split, with_random_name};

/// The start of a temporary file's name; 16 random hex digits follow.
const TEMPORARY_PREFIX: &str = ".kscope-partial-";

/// A file written to a temporary name and renamed over its target by
/// [`commit`](AtomicFile::commit); dropped uncommitted, the temporary file
/// is removed and the target left as it was. The temporary file is in the
/// target's directory, or in a [`PrivateDir`](crate::PrivateDir) on the
/// same filesystem ([`PrivateDir::stage`](crate::PrivateDir::stage)).
#[derive(Debug)]
pub struct AtomicFile {
    /// The directory holding the temporary file.
    staging: OwnedFd,
    /// The target's directory.
    dir: OwnedFd,
    temporary: OsString,
    name: OsString,
    path: PathBuf,
    file: File,
    committed: bool,
}

impl AtomicFile {
    /// Starts writing `path`, whose directory must exist.
    pub fn create(path: &Path) -> Result<AtomicFile, Error> {
        let (dir_path, name) = split(path)?;
        let dir = open_dir(&dir_path, path)?;
        let staging = dir
            .try_clone()
            .map_err(|e| Error::io("open directory", &dir_path, e))?;
        AtomicFile::create_in(staging, &dir_path, dir, name, path.to_path_buf())
    }

    /// Starts writing `name` in the open directory `dir`, known to the
    /// user as `path`, through a temporary file in the open directory
    /// `staging` (`staging_path` for errors), on the same filesystem.
    pub(crate) fn create_in(
        staging: OwnedFd,
        staging_path: &Path,
        dir: OwnedFd,
        name: OsString,
        path: PathBuf,
    ) -> Result<AtomicFile, Error> {
        refuse_special(&dir, &name, &path)?;
        let (temporary, fd) = with_random_name(TEMPORARY_PREFIX, staging_path, |temporary| {
            create_exclusive(&staging, temporary, 0o666)
        })?;
        Ok(AtomicFile {
            staging,
            dir,
            temporary,
            name,
            path,
            file: File::from(fd),
            committed: false,
        })
    }

    /// The file to write (`&File` is `Write`, and `Seek`).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The target's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Puts the file in place: renamed over the target, whatever is there
    /// (a symbolic link there is replaced, never followed).
    pub fn commit(mut self) -> Result<(), Error> {
        rustix::fs::renameat(&self.staging, &self.temporary, &self.dir, &self.name)
            .map_err(|e| Error::io("rename a temporary file to", &self.path, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = rustix::fs::unlinkat(&self.staging, &self.temporary, AtFlags::empty());
        }
    }
}

/// Refuses a target that exists and is neither a regular file nor a
/// symbolic link (both are replaced): renaming over a device, a FIFO or a
/// socket would take its name away (`-o /dev/null` would leave a regular
/// file at /dev/null), and over a directory fails only once the file is
/// written.
fn refuse_special(dir: &OwnedFd, name: &OsString, path: &Path) -> Result<(), Error> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile | FileType::Symlink => Ok(()),
            other => Err(Error::NotAFile {
                path: path.to_path_buf(),
                kind: kind_of(other),
            }),
        },
        Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(Error::io("stat", path, e)),
    }
}

/// What a file that is not a regular one is, in words.
fn kind_of(file_type: FileType) -> &'static str {
    match file_type {
        FileType::Directory => "a directory",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        _ => "an unknown kind of file",
    }
}

/// Opens `path` to write output to as it comes: created if missing (mode
/// `0666` less the umask), truncated if a regular file that may be
/// reused, written as it is if a FIFO or a character device. The rules
/// are in the [crate] doc.
pub fn create_streamed(path: &Path) -> Result<File, Error> {
    let (dir_path, name) = split(path)?;
    let dir = open_dir(&dir_path, path)?;
    let fd = rustix::fs::openat(
        &dir,
        &name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o666),
    )
    .map_err(|e| match e {
        Errno::LOOP => Error::Symlink {
            path: path.to_path_buf(),
        },
        Errno::ISDIR => Error::NotAFile {
            path: path.to_path_buf(),
            kind: "a directory",
        },
        e => Error::io("create", path, e),
    })?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| Error::io("stat", path, e))?;
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => {
            let dir_stat = rustix::fs::fstat(&dir).map_err(|e| Error::io("stat", &dir_path, e))?;
            let euid = rustix::process::geteuid().as_raw();
            let shared = dir_stat.st_mode & 0o022 != 0 || dir_stat.st_uid != euid;
            if shared && stat.st_uid != euid && stat.st_uid != dir_stat.st_uid {
                return Err(Error::ForeignFile {
                    path: path.to_path_buf(),
                    dir: dir_path,
                    owner: stat.st_uid,
                });
            }
            if shared && stat.st_nlink > 1 {
                return Err(Error::HardLinked {
                    path: path.to_path_buf(),
                    dir: dir_path,
                    links: stat.st_nlink,
                });
            }
            rustix::fs::ftruncate(&fd, 0).map_err(|e| Error::io("truncate", path, e))?;
        }
        FileType::Fifo | FileType::CharacterDevice => {}
        other => {
            return Err(Error::NotAFile {
                path: path.to_path_buf(),
                kind: kind_of(other),
            });
        }
    }
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    /// A directory with a victim file that nothing may change.
    fn setup() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        (dir, victim)
    }

    fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
        let out = AtomicFile::create(path)?;
        out.file().write_all(bytes).unwrap();
        out.commit()
    }

    #[test]
    fn an_atomic_file_replaces_a_link_at_its_target_and_leaves_the_link_target_alone() {
        let (dir, victim) = setup();
        let target = dir.path().join("x.dat");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        write_atomic(&target, b"trace").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&target).unwrap().is_file());
        assert_eq!(std::fs::read(&target).unwrap(), b"trace");
    }

    #[test]
    fn links_planted_at_old_temporary_names_are_never_written_through() {
        let (dir, victim) = setup();
        let target = dir.path().join("x.dat");
        for name in ["x.dat.partial", "x.partial", ".x.dat.partial"] {
            std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
        }
        write_atomic(&target, b"trace").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        // The temporary file is gone: the victim, the three links, x.dat.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 5);
    }

    #[test]
    fn temporary_names_are_random_and_created_exclusively() {
        let (dir, victim) = setup();
        let a = AtomicFile::create(&dir.path().join("a")).unwrap();
        let b = AtomicFile::create(&dir.path().join("a")).unwrap();
        assert_ne!(a.temporary, b.temporary);
        assert!(a.temporary.len() == TEMPORARY_PREFIX.len() + 16);
        // A name taken by a link is not opened: O_EXCL fails instead.
        let planted = std::ffi::OsString::from("planted");
        std::os::unix::fs::symlink(&victim, dir.path().join(&planted)).unwrap();
        let fd = open_dir(dir.path(), dir.path()).unwrap();
        assert_eq!(
            create_exclusive(&fd, &planted, 0o600).unwrap_err(),
            Errno::EXIST
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn an_uncommitted_file_leaves_the_target_as_it_was() {
        let (dir, _victim) = setup();
        let target = dir.path().join("x.dat");
        std::fs::write(&target, b"old").unwrap();
        let out = AtomicFile::create(&target).unwrap();
        out.file().write_all(b"new").unwrap();
        drop(out);
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn an_atomic_file_refuses_to_replace_a_device_a_fifo_or_a_directory() {
        let (dir, _victim) = setup();
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        for (path, kind) in [
            (Path::new("/dev/null"), "a character device"),
            (fifo.as_path(), "a FIFO"),
            (sub.as_path(), "a directory"),
        ] {
            let error = AtomicFile::create(path).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "{} is {kind}, not a file to write output to",
                    path.display()
                )
            );
        }
        let staging = crate::PrivateDir::create_temporary(dir.path(), ".kscope-record-").unwrap();
        assert!(matches!(
            staging.stage(&fifo),
            Err(Error::NotAFile { kind: "a FIFO", .. })
        ));
        assert!(staging.names().unwrap().is_empty());
        let null = std::fs::symlink_metadata("/dev/null").unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_char_device(
            &null.file_type()
        ));
        // Nothing was made beside them: the victim, the FIFO, the
        // directory and the private one.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }

    #[test]
    fn a_missing_directory_is_named_and_not_created() {
        let (dir, _victim) = setup();
        let target = dir.path().join("typo/dir/x.dat");
        let error = AtomicFile::create(&target).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "cannot write {}: directory {} does not exist",
                target.display(),
                dir.path().join("typo/dir").display()
            )
        );
        let beside = crate::PrivateDir::create_beside(&target, ".kscope-record-").unwrap_err();
        assert_eq!(beside.to_string(), error.to_string());
        assert!(!dir.path().join("typo").exists());
        assert!(matches!(
            create_streamed(&target),
            Err(Error::MissingDirectory { .. })
        ));
    }

    #[test]
    fn a_streamed_output_refuses_a_link_and_names_it() {
        let (dir, victim) = setup();
        let target = dir.path().join("out.txt");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        let error = create_streamed(&target).unwrap_err();
        assert!(matches!(error, Error::Symlink { .. }), "{error}");
        assert!(
            error
                .to_string()
                .starts_with(&format!("{} is a symbolic link", target.display())),
            "{error}"
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn a_streamed_output_truncates_the_users_own_file_and_writes_devices() {
        let (dir, _victim) = setup();
        let target = dir.path().join("out.txt");
        std::fs::write(&target, b"a longer old text").unwrap();
        create_streamed(&target).unwrap().write_all(b"new").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        create_streamed(Path::new("/dev/null"))
            .unwrap()
            .write_all(b"x")
            .unwrap();
        assert!(matches!(
            create_streamed(dir.path()),
            Err(Error::NotAFile {
                kind: "a directory",
                ..
            })
        ));
    }

    #[test]
    fn a_streamed_output_refuses_another_users_file_or_a_hard_link_in_a_shared_directory() {
        if !kscope_testkit::live("files of another user", kscope_testkit::missing_root()) {
            return;
        }
        let (dir, victim) = setup();
        let shared = dir.path().join("tmp");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let foreign = shared.join("theirs");
        std::fs::write(&foreign, b"theirs").unwrap();
        std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
        let error = create_streamed(&foreign).unwrap_err();
        assert!(
            matches!(error, Error::ForeignFile { owner: 65534, .. }),
            "{error}"
        );
        assert_eq!(std::fs::read(&foreign).unwrap(), b"theirs");

        let linked = shared.join("linked");
        std::fs::hard_link(&victim, &linked).unwrap();
        let error = create_streamed(&linked).unwrap_err();
        assert!(
            matches!(error, Error::HardLinked { links: 2, .. }),
            "{error}"
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");

        // A file of one's own, with one link, is reused.
        let mine = shared.join("mine");
        std::fs::write(&mine, b"old").unwrap();
        create_streamed(&mine).unwrap();
        assert_eq!(std::fs::metadata(&mine).unwrap().size(), 0);
    }
}
