//! Bounds-checked little-endian reads from a borrowed slice that knows its
//! own offset in the file, so that every failure names the absolute offset.

use crate::Error;

/// A slice of the core file and the file offset of its first byte.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) base: u64,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], base: u64) -> Reader<'a> {
        Reader { bytes, base }
    }

    /// `len` bytes at `pos`, or an error naming `what`.
    pub(crate) fn slice(
        &self,
        pos: usize,
        len: usize,
        what: &'static str,
    ) -> Result<&'a [u8], Error> {
        pos.checked_add(len)
            .and_then(|end| self.bytes.get(pos..end))
            .ok_or_else(|| {
                Error::at(
                    self.base.saturating_add(pos as u64),
                    format!(
                        "{what} ({len} bytes; only {} remain)",
                        self.bytes.len().saturating_sub(pos)
                    ),
                )
            })
    }

    pub(crate) fn u16(&self, pos: usize, what: &'static str) -> Result<u16, Error> {
        let b = self.slice(pos, 2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&self, pos: usize, what: &'static str) -> Result<u32, Error> {
        let b = self.slice(pos, 4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn i32(&self, pos: usize, what: &'static str) -> Result<i32, Error> {
        self.u32(pos, what).map(|v| v as i32)
    }

    pub(crate) fn u64(&self, pos: usize, what: &'static str) -> Result<u64, Error> {
        let b = self.slice(pos, 8, what)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// The file offset of `pos`.
    pub(crate) fn offset(&self, pos: usize) -> u64 {
        self.base.saturating_add(pos as u64)
    }
}

/// The bytes before the first NUL (all of them when there is none).
pub(crate) fn until_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}
