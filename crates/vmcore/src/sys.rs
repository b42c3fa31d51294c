//! The crate's one contact with the system: a dump file mapped into memory
//! read-only, so that reading a page of an ELF vmcore is a copy out of the
//! page cache and opening a multi-gigabyte dump reads only its headers.
#![allow(unsafe_code)]

use std::fs::File;
use std::path::Path;

use crate::Error;

/// The bytes of a dump: a read-only mapping of a file, or bytes the caller
/// handed over.
pub(crate) enum DumpBytes {
    Mapped(memmap2::Mmap),
    Owned(Box<[u8]>),
}

impl DumpBytes {
    /// Maps the file at `path` (an empty file has no mapping).
    pub(crate) fn map(path: &Path) -> Result<DumpBytes, Error> {
        let io = |source| Error::Io {
            path: Some(path.to_path_buf()),
            source,
        };
        let file = File::open(path).map_err(io)?;
        if file.metadata().map_err(io)?.len() == 0 {
            return Ok(DumpBytes::Owned(Box::default()));
        }
        // SAFETY: the mapping is read-only and private to this process.
        // If another process truncates the file while it is mapped, reading
        // the lost pages raises SIGBUS: the caveat of every mapped reader
        // (crash and makedumpfile map or pread the same files). Every parser
        // over these bytes is bounds-checked and trusts none of them.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Ok(DumpBytes::Mapped(map))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            DumpBytes::Mapped(map) => map,
            DumpBytes::Owned(bytes) => bytes,
        }
    }
}

impl std::fmt::Debug for DumpBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            DumpBytes::Mapped(_) => "mapped",
            DumpBytes::Owned(_) => "owned",
        };
        write!(f, "DumpBytes({kind}, {} bytes)", self.bytes().len())
    }
}
