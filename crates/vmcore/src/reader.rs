//! Bounds-checked reads of little- and big-endian integers from a borrowed
//! slice that knows its own offset in the file, so that every failure
//! names the absolute offset and what was being read.

use crate::Error;

/// A slice of the dump file and the file offset of its first byte.
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
    pub(crate) fn slice(&self, pos: u64, len: u64, what: &str) -> Result<&'a [u8], Error> {
        let found = usize::try_from(pos)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(p, l)| Some(p..p.checked_add(l)?))
            .and_then(|range| self.bytes.get(range));
        found.ok_or_else(|| {
            Error::at(
                self.base.saturating_add(pos),
                format!(
                    "{what} ({len} bytes; the file has {} from there)",
                    (self.bytes.len() as u64).saturating_sub(pos)
                ),
            )
        })
    }

    fn array<const N: usize>(&self, pos: u64, what: &str) -> Result<[u8; N], Error> {
        let mut a = [0; N];
        a.copy_from_slice(self.slice(pos, N as u64, what)?);
        Ok(a)
    }

    pub(crate) fn u16(&self, pos: u64, what: &str) -> Result<u16, Error> {
        self.array(pos, what).map(u16::from_le_bytes)
    }

    pub(crate) fn u32(&self, pos: u64, what: &str) -> Result<u32, Error> {
        self.array(pos, what).map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&self, pos: u64, what: &str) -> Result<u64, Error> {
        self.array(pos, what).map(u64::from_le_bytes)
    }

    pub(crate) fn i64_be(&self, pos: u64, what: &str) -> Result<i64, Error> {
        self.array(pos, what).map(i64::from_be_bytes)
    }
}

/// The bytes before the first NUL (all of them when there is none).
pub(crate) fn until_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// A little-endian u64 from the first 8 bytes of `bytes` (zeros past the end).
pub(crate) fn le_u64(bytes: &[u8]) -> u64 {
    let mut a = [0; 8];
    let n = bytes.len().min(8);
    a[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(a)
}
