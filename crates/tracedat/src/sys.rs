//! The crate's one contact with the system: a trace.dat mapped into memory
//! read-only, so that [`crate::parse`] borrows its pages instead of reading
//! them into a buffer.
#![allow(unsafe_code)]

use std::fs::File;
use std::path::Path;

use crate::Error;

/// A file mapped into memory, read-only, for [`crate::parse`]. An empty
/// file has no mapping and no bytes.
pub struct TraceFile {
    map: Option<memmap2::Mmap>,
}

impl TraceFile {
    /// Maps the file at `path`.
    pub fn open(path: &Path) -> Result<TraceFile, Error> {
        let io = |source| Error::Io {
            path: Some(path.to_path_buf()),
            source,
        };
        TraceFile::map(&File::open(path).map_err(io)?).map_err(io)
    }

    /// Maps the open `file` (its errors name no path: the caller knows
    /// it).
    pub fn from_file(file: &File) -> Result<TraceFile, Error> {
        TraceFile::map(file).map_err(|source| Error::Io { path: None, source })
    }

    fn map(file: &File) -> std::io::Result<TraceFile> {
        if file.metadata()?.len() == 0 {
            return Ok(TraceFile { map: None });
        }
        // SAFETY: the mapping is read-only and private to this process. If
        // another process truncates the file while it is mapped, reading the
        // lost pages raises SIGBUS: the caveat of every mapped reader
        // (trace-cmd maps its input too). Nothing here writes to the file.
        let map = unsafe { memmap2::Mmap::map(file) }?;
        Ok(TraceFile { map: Some(map) })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }

    /// Says that `part` (a slice of [`bytes`](TraceFile::bytes)) will not
    /// be read again soon: the whole pages inside it leave this process's
    /// resident memory, and are read from the file again if touched. A
    /// report reading gigabytes sequentially stays small.
    pub fn release(&self, part: &[u8]) {
        /// The smallest page size of kscope's targets; a larger page only
        /// makes the range cover fewer whole pages, never more.
        const PAGE: usize = 4096;
        let Some(map) = &self.map else { return };
        let base = map.as_ptr() as usize;
        let start = part.as_ptr() as usize;
        if start < base || start + part.len() > base + map.len() {
            return;
        }
        let first = (start - base).next_multiple_of(PAGE);
        let end = (start - base + part.len()) / PAGE * PAGE;
        if end <= first {
            return;
        }
        // SAFETY: the mapping is private and read-only, so nothing in it
        // differs from the file: after MADV_DONTNEED the same bytes come
        // back from the file on the next touch, and every slice borrowed
        // from the mapping still reads what it read before. The range lies
        // inside the mapping (checked above). A failure only leaves the
        // pages resident.
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, first, end - first)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_files_and_says_which_one_is_missing() {
        let dir_holder = tempfile::Builder::new()
            .prefix("kscope-tracedat-sys-")
            .tempdir()
            .expect("a temp dir");
        let dir = dir_holder.path().to_path_buf();
        let full = dir.join("full");
        std::fs::write(&full, b"abc").unwrap();
        assert_eq!(TraceFile::open(&full).unwrap().bytes(), b"abc");
        let big = dir.join("big");
        let content: Vec<u8> = (0..5 * 4096).map(|i| (i % 251) as u8).collect();
        std::fs::write(&big, &content).unwrap();
        let mapped = TraceFile::open(&big).unwrap();
        let bytes = mapped.bytes();
        assert_eq!(bytes, content.as_slice());
        mapped.release(&bytes[100..4 * 4096 + 7]);
        // Released pages read the same bytes again, from the file.
        assert_eq!(bytes, content.as_slice());
        mapped.release(b"not from the mapping");
        let empty = dir.join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(TraceFile::open(&empty).unwrap().bytes(), b"");
        let missing = dir.join("missing");
        let err = TraceFile::open(&missing).err().unwrap();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
