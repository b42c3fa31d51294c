//! An ELF file held in memory (mapped or owned), with the identity notes
//! that tie it to a separate debug file: build-id and `.gnu_debuglink`.

use std::fs::File;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use object::{Object, ObjectSection, ObjectSegment};

use crate::Error;
use crate::sys;

/// The name given to files made with [`ObjectFile::from_bytes`] in errors.
const MEMORY: &str = "<memory>";

/// The bytes of an object file: a read-only mapping or an owned buffer.
enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(map) => map,
            Bytes::Owned(bytes) => bytes,
        }
    }
}

/// An ELF file, checked to parse, with its build-id and debuglink read.
pub struct ObjectFile {
    /// `None` for bytes given by the caller.
    path: Option<PathBuf>,
    bytes: Bytes,
    build_id: Option<Vec<u8>>,
    debuglink: Option<(String, u32)>,
    /// Each segment's file range and vaddr: `(offset, size, vaddr)`.
    segments: Vec<(u64, u64, u64)>,
}

impl std::fmt::Debug for ObjectFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectFile")
            .field("path", &self.path)
            .field("len", &self.bytes.len())
            .field("build_id", &self.build_id)
            .field("debuglink", &self.debuglink)
            .finish()
    }
}

impl ObjectFile {
    /// Maps and parses the ELF file at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be opened or mapped, and
    /// [`Error::Parse`] when it is not a well-formed ELF file.
    pub fn open(path: impl AsRef<Path>) -> Result<ObjectFile, Error> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let map = sys::map(&file).map_err(io)?;
        ObjectFile::new(Some(path.to_path_buf()), Bytes::Mapped(map))
    }

    /// Parses an ELF file held in `bytes`.
    ///
    /// # Errors
    ///
    /// [`Error::Parse`], naming the file `<memory>`, when the bytes are not
    /// a well-formed ELF file.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<ObjectFile, Error> {
        ObjectFile::new(None, Bytes::Owned(bytes))
    }

    fn new(path: Option<PathBuf>, bytes: Bytes) -> Result<ObjectFile, Error> {
        let parse_error = |what: &str, source| Error::Parse {
            path: path.clone().unwrap_or_else(|| PathBuf::from(MEMORY)),
            what: what.to_string(),
            source,
        };
        let file = object::File::parse(&*bytes).map_err(|e| parse_error("ELF header", e))?;
        let build_id = file
            .build_id()
            .map_err(|e| parse_error("build-id note", e))?
            .map(<[u8]>::to_vec);
        let debuglink = file
            .gnu_debuglink()
            .map_err(|e| parse_error("section .gnu_debuglink", e))?
            .map(|(name, crc)| (String::from_utf8_lossy(name).into_owned(), crc));
        let segments = file
            .segments()
            .map(|segment| {
                let (offset, size) = segment.file_range();
                (offset, size, segment.address())
            })
            .collect();
        Ok(ObjectFile {
            path,
            bytes,
            build_id,
            debuglink,
            segments,
        })
    }

    /// The path the file was opened from; `None` for
    /// [`ObjectFile::from_bytes`].
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The name errors give the file: its path, or `<memory>`.
    pub(crate) fn name(&self) -> PathBuf {
        self.path.clone().unwrap_or_else(|| PathBuf::from(MEMORY))
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The GNU build-id (the `NT_GNU_BUILD_ID` note), if there is one.
    pub fn build_id(&self) -> Option<&[u8]> {
        self.build_id.as_deref()
    }

    /// The separate debug file's name and CRC32, from `.gnu_debuglink`.
    pub fn debuglink(&self) -> Option<(&str, u32)> {
        self.debuglink
            .as_ref()
            .map(|(name, crc)| (name.as_str(), *crc))
    }

    /// The CRC32 of the whole file, as `.gnu_debuglink` records it.
    pub fn crc32(&self) -> u32 {
        crc32fast::hash(&self.bytes)
    }

    /// Parses the file again; it parsed once in the constructor, so this
    /// fails only if a mapped file changed underneath.
    pub(crate) fn parse(&self) -> Result<object::File<'_>, Error> {
        object::File::parse(self.bytes()).map_err(|source| self.parse_error("ELF header", source))
    }

    pub(crate) fn parse_error(&self, what: &str, source: object::Error) -> Error {
        Error::Parse {
            path: self.name(),
            what: what.to_string(),
            source,
        }
    }

    /// The virtual address (as the ELF's own vaddrs spell it) of the byte
    /// at file offset `offset`: what a process's mapping of the file at
    /// that offset holds, found through the loadable segment whose file
    /// bytes contain it. `None` when no segment holds that offset. This is how a runtime address of a PIE or
    /// shared library becomes an address its symbol tables know:
    /// `address - mapping start + mapping file offset`, then this. The
    /// segments are read once, when the file is opened.
    pub fn vaddr_of_offset(&self, offset: u64) -> Option<u64> {
        self.segments.iter().find_map(|&(start, size, vaddr)| {
            let within = offset.checked_sub(start).filter(|&delta| delta < size)?;
            vaddr.checked_add(within)
        })
    }

    /// The ELF file inside the MiniDebugInfo section `.gnu_debugdata`
    /// (xz-compressed), if the file has one.
    pub(crate) fn mini_debug_info(&self) -> Result<Option<ObjectFile>, Error> {
        let file = self.parse()?;
        let Some(section) = file.section_by_name(".gnu_debugdata") else {
            return Ok(None);
        };
        let compressed = section
            .data()
            .map_err(|e| self.parse_error("section .gnu_debugdata", e))?;
        let mut input = compressed;
        let mut output = LimitedWriter {
            bytes: Vec::new(),
            limit: MINI_DEBUG_INFO_LIMIT,
        };
        lzma_rs::xz_decompress(&mut input, &mut output).map_err(|e| Error::MiniDebugInfo {
            path: self.name(),
            message: format!("xz: {e}"),
        })?;
        let inner = ObjectFile::from_bytes(output.bytes).map_err(|e| Error::MiniDebugInfo {
            path: self.name(),
            message: e.to_string(),
        })?;
        Ok(Some(inner))
    }
}

/// The most MiniDebugInfo decompresses to; real ones are a few MiB, and a
/// hostile section must not make the process allocate without bound.
const MINI_DEBUG_INFO_LIMIT: usize = 256 << 20;

/// A `Vec` writer that fails once more than `limit` bytes are written.
struct LimitedWriter {
    bytes: Vec<u8>,
    limit: usize,
}

impl std::io::Write for LimitedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len().saturating_add(buf.len()) > self.limit {
            return Err(std::io::Error::other(format!(
                "decompresses to more than {} bytes",
                self.limit
            )));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use object::{Object, ObjectSegment};

    use super::{LimitedWriter, ObjectFile};
    use crate::Error;

    #[test]
    fn garbage_is_a_parse_error() {
        let err = ObjectFile::from_bytes(b"not an elf file at all".to_vec()).unwrap_err();
        assert!(matches!(err, Error::Parse { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with("<memory>: cannot parse ELF header"),
            "{err}"
        );
    }

    #[test]
    fn limited_writer_stops_at_limit() {
        let mut writer = LimitedWriter {
            bytes: Vec::new(),
            limit: 4,
        };
        writer.write_all(b"abcd").unwrap();
        writer.flush().unwrap();
        assert!(writer.write_all(b"e").is_err());
        assert_eq!(writer.bytes, b"abcd");
    }

    #[test]
    fn empty_is_a_parse_error() {
        assert!(ObjectFile::from_bytes(Vec::new()).is_err());
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let err = ObjectFile::open("/nonexistent/kscope").unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/kscope"), "{err}");
    }

    #[test]
    fn file_offsets_map_to_their_segments_vaddrs() {
        let exe = std::env::current_exe().unwrap();
        let object = ObjectFile::open(&exe).unwrap();
        let file = object.parse().unwrap();
        let entry = file.entry();
        // The entry point lies in a loadable segment; its file offset,
        // found from that segment, must map back to it.
        let segment = file
            .segments()
            .find(|s| entry >= s.address() && entry - s.address() < s.file_range().1)
            .unwrap();
        let offset = segment.file_range().0 + (entry - segment.address());
        assert_eq!(object.vaddr_of_offset(offset), Some(entry));
        assert_eq!(
            object.vaddr_of_offset(object.bytes().len() as u64 + 1),
            None
        );
    }

    #[test]
    fn own_test_binary_parses() {
        let exe = std::env::current_exe().unwrap();
        let object = ObjectFile::open(&exe).unwrap();
        assert_eq!(object.path(), Some(exe.as_path()));
        assert!(!object.bytes().is_empty());
    }
}
