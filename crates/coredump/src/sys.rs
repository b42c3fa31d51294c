//! The only side effect of this crate: mapping files read-only, the core
//! itself ([`CoreFile`]) and each module's file to read its unwind tables.
#![allow(unsafe_code)]

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

/// Maps `file` read-only.
pub(crate) fn map(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: the mapping is read-only and private to this process. If
    // another process truncates or rewrites the file while it is mapped,
    // reads may fault or see changed bytes; the ELF and CFI parsers over
    // these bytes are bounds checked and never trust them (a library is
    // replaced by rename when upgraded, which leaves the mapped inode as it
    // was).
    unsafe { Mmap::map(file) }
}

/// A core file mapped read-only, for [`crate::Core::parse`].
///
/// ```no_run
/// let file = kscope_coredump::CoreFile::open("core".as_ref())?;
/// let core = kscope_coredump::Core::parse(file.bytes())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct CoreFile {
    /// `None` for an empty file, which cannot be mapped.
    map: Option<Mmap>,
}

/// A core file that cannot be opened or mapped.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct OpenError {
    /// The file.
    pub path: PathBuf,
    /// What the system said.
    #[source]
    pub source: std::io::Error,
}

impl CoreFile {
    /// Maps the file at `path`.
    pub fn open(path: &Path) -> Result<CoreFile, OpenError> {
        let open = || -> std::io::Result<CoreFile> {
            let file = File::open(path)?;
            if file.metadata()?.len() == 0 {
                return Ok(CoreFile { map: None });
            }
            Ok(CoreFile {
                map: Some(map(&file)?),
            })
        };
        open().map_err(|source| OpenError {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_maps_an_empty_one_is_empty_and_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("core");
        std::fs::write(&path, b"\x7fELF").unwrap();
        assert_eq!(CoreFile::open(&path).unwrap().bytes(), b"\x7fELF");
        std::fs::write(&path, b"").unwrap();
        assert!(CoreFile::open(&path).unwrap().bytes().is_empty());
        let missing = dir.path().join("missing");
        let err = CoreFile::open(&missing).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: No such file or directory (os error 2)",
                missing.display()
            )
        );
        // A directory opens but does not map.
        assert!(CoreFile::open(dir.path()).is_err());
    }
}
