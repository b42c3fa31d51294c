//! Every file and directory kscope creates, created so that nobody else
//! can steer the write: kscope often runs as root and writes into shared
//! directories such as `/tmp`, where any user may plant a symbolic link,
//! a hard link or a directory under the name kscope is about to use, and
//! many systems run with `fs.protected_symlinks=0`.
//!
//! Three kinds of output, one type each:
//!
//! - [`AtomicFile`]: a file written whole, then put in place (trace.dat,
//!   cache files). It is written to a temporary file with an unpredictable
//!   name in the target's directory, created `O_CREAT|O_EXCL|O_NOFOLLOW`,
//!   and renamed over the target when complete. rename(2) never follows a
//!   link: a symbolic link at the target's name is replaced, its target
//!   left untouched. [`PrivateDir::stage`] makes the temporary file in a
//!   private directory beside the target instead, so that one left by a
//!   writer killed half way goes with that directory. A target that
//!   exists as anything but a regular file or a link (a device such as
//!   `/dev/null`, a FIFO, a directory) is refused before anything is
//!   written: a rename would take its name away. The target's directory must exist: it is named in the
//!   error, never created. The file gets the mode any new file gets
//!   (`0666` less the umask).
//! - [`create_streamed`]: a file written as data comes (`-o FILE` of
//!   `trace stream` and `probe`), so that it can be followed while it
//!   grows. Opened with `O_NOFOLLOW`: a symbolic link at the final
//!   component is refused with an error naming it (to write to a terminal
//!   or a pipe, leave out `-o`). FIFOs and character devices (`/dev/null`)
//!   are written as they are. An existing regular file is truncated only
//!   when that cannot reach another user's file: in a directory that
//!   someone other than its owner may write to (`/tmp`), or one owned by
//!   another user, the file must belong to the effective user or to the
//!   directory's owner (the rule of the kernel's `fs.protected_regular`)
//!   and have a single link (a hard link planted there may lead to any
//!   file, whatever `fs.protected_hardlinks` says).
//! - [`PrivateDir`]: a directory only the effective user may enter. A
//!   temporary one ([`PrivateDir::create_temporary`]: per-CPU files of a
//!   recording) has a random name, is made with mode `0700` (never reused
//!   if the name exists) and is removed with its files when dropped. A
//!   persistent one ([`PrivateDir::open_or_create`]: a journal under
//!   `/run`, the DWARF cache) is made with mode `0700` when missing, and
//!   when present it must be a real directory (not a link), owned by the
//!   effective user and writable by no one else. Files in either are
//!   created `O_CREAT|O_EXCL|O_NOFOLLOW` with mode `0600`.
//!
//! Every name is resolved against a directory opened once, so a directory
//! renamed or replaced by a link half way cannot move a later step
//! elsewhere.
//!
//! ```no_run
//! use std::io::Write;
//! # fn main() -> Result<(), kscope_outfile::Error> {
//! let mut out = kscope_outfile::AtomicFile::create("/tmp/trace.dat".as_ref())?;
//! out.file()
//!     .write_all(b"tracing")
//!     .map_err(|e| kscope_outfile::Error::io("write", out.path(), e))?;
//! out.commit()?;
//!
//! let dir = kscope_outfile::PrivateDir::create_temporary("/tmp".as_ref(), ".kscope-record-")?;
//! let cpu0 = dir.create_file("cpu0")?;
//! # drop((cpu0, dir));
//! # Ok(())
//! # }
//! ```

mod output;
mod private;

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

pub use output::{AtomicFile, create_streamed};
pub use private::PrivateDir;

/// How many random names are tried before giving up: each is 64 random
/// bits, so a collision is someone guessing.
const NAME_ATTEMPTS: usize = 16;

/// Why a file or directory could not be created safely.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The directory to write in does not exist (it is not created).
    #[error("cannot write {path}: directory {dir} does not exist")]
    MissingDirectory {
        /// The file that was to be written.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
    },
    /// A symbolic link stands where a file was to be written.
    #[error(
        "{path} is a symbolic link: kscope does not write through links; remove it or name another file"
    )]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// An existing file in a shared directory belongs to someone else.
    #[error(
        "{path} belongs to uid {owner} in {dir}, a directory others can write to: kscope does not write to it (as fs.protected_regular would refuse); remove it or name another file"
    )]
    ForeignFile {
        /// The file.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
        /// The file's owner.
        owner: u32,
    },
    /// An existing file in a shared directory has more than one link.
    #[error(
        "{path} has {links} hard links in {dir}, a directory others can write to: it may be another file under a planted name; remove it or name another file"
    )]
    HardLinked {
        /// The file.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
        /// Its link count.
        links: u64,
    },
    /// The output names something that is neither a file nor a FIFO nor
    /// a character device.
    #[error("{path} is {kind}, not a file to write output to")]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is ("a directory", "a socket", "a block device").
        kind: &'static str,
    },
    /// A directory that must be private is not.
    #[error("{path} is not a private directory: {reason}")]
    NotPrivate {
        /// The directory.
        path: PathBuf,
        /// Why not (a link, its owner, its mode).
        reason: String,
    },
    /// A system call failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done ("create", "rename", ...).
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// An I/O error while doing `action` on `path`.
    pub fn io(action: &'static str, path: &Path, source: impl Into<io::Error>) -> Error {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source: source.into(),
        }
    }
}

/// `path`'s directory (`.` for a bare name) and its last component.
fn split(path: &Path) -> Result<(PathBuf, OsString), Error> {
    let name = path.file_name().ok_or_else(|| {
        Error::io(
            "write",
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name.to_os_string()))
}

/// Opens the existing directory `dir`, in which `path` is to be written;
/// a missing directory is named in the error.
fn open_dir(dir: &Path, path: &Path) -> Result<OwnedFd, Error> {
    rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::NOENT => Error::MissingDirectory {
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
        },
        e => Error::io("open directory", dir, e),
    })
}

/// A name starting with `prefix` and ending with 16 random hex digits.
fn random_name(prefix: &str, path: &Path) -> Result<OsString, Error> {
    let mut bytes = [0u8; 8];
    rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty())
        .map_err(|e| Error::io("make a random name in", path, e))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(OsString::from(format!("{prefix}{hex}")))
}

/// Calls `make` with fresh random names starting with `prefix` until one
/// does not exist yet (`make` fails with EEXIST for one that does).
fn with_random_name<T>(
    prefix: &str,
    dir: &Path,
    mut make: impl FnMut(&OsStr) -> Result<T, Errno>,
) -> Result<(OsString, T), Error> {
    for _ in 0..NAME_ATTEMPTS {
        let name = random_name(prefix, dir)?;
        match make(&name) {
            Ok(made) => return Ok((name, made)),
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(Error::io("create a file in", dir, e)),
        }
    }
    Err(Error::io(
        "create a file in",
        dir,
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{NAME_ATTEMPTS} random names were all taken"),
        ),
    ))
}

/// Creates the file `name` in `dir`: `O_CREAT|O_EXCL|O_NOFOLLOW`, so
/// that nothing already there (a file, a link) is opened instead.
fn create_exclusive(dir: impl AsFd, name: &OsStr, mode: u32) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )
}
