//! Bounds-checked reads of little- and big-endian integers from a borrowed
//! slice that knows its own offset in the file, so that every failure
//! names the absolute offset and what was being read.

use crate::Error;

/// A slice of a file and the file offset of its first byte.
///
/// ```
/// let r = kscope_elf::Reader::new(&[1, 0, 0, 0], 0x100);
/// assert_eq!(r.u32(0, "a count").ok(), Some(1));
/// let err = r.u64(0, "a pointer").unwrap_err();
/// assert_eq!(err.to_string(), "at byte 0x100: expected a pointer (8 bytes; only 4 remain)");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    /// The bytes.
    pub bytes: &'a [u8],
    /// The file offset of `bytes[0]`.
    pub base: u64,
}

impl<'a> Reader<'a> {
    /// `bytes`, whose first byte is at file offset `base`.
    pub fn new(bytes: &'a [u8], base: u64) -> Reader<'a> {
        Reader { bytes, base }
    }

    /// `len` bytes at `pos`, or an error naming `what`.
    pub fn slice(&self, pos: u64, len: u64, what: &str) -> Result<&'a [u8], Error> {
        let found = usize::try_from(pos)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(p, l)| Some(p..p.checked_add(l)?))
            .and_then(|range| self.bytes.get(range));
        found.ok_or_else(|| {
            Error::at(
                self.offset(pos),
                format!(
                    "{what} ({len} bytes; only {} remain)",
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

    /// The byte at `pos`.
    pub fn u8(&self, pos: u64, what: &str) -> Result<u8, Error> {
        self.array::<1>(pos, what).map(|[b]| b)
    }

    /// The little-endian u16 at `pos`.
    pub fn u16(&self, pos: u64, what: &str) -> Result<u16, Error> {
        self.array(pos, what).map(u16::from_le_bytes)
    }

    /// The little-endian u32 at `pos`.
    pub fn u32(&self, pos: u64, what: &str) -> Result<u32, Error> {
        self.array(pos, what).map(u32::from_le_bytes)
    }

    /// The little-endian i32 at `pos`.
    pub fn i32(&self, pos: u64, what: &str) -> Result<i32, Error> {
        self.array(pos, what).map(i32::from_le_bytes)
    }

    /// The little-endian u64 at `pos`.
    pub fn u64(&self, pos: u64, what: &str) -> Result<u64, Error> {
        self.array(pos, what).map(u64::from_le_bytes)
    }

    /// The big-endian i64 at `pos`.
    pub fn i64_be(&self, pos: u64, what: &str) -> Result<i64, Error> {
        self.array(pos, what).map(i64::from_be_bytes)
    }

    /// The file offset of `pos`.
    pub fn offset(&self, pos: u64) -> u64 {
        self.base.saturating_add(pos)
    }
}

/// The bytes before the first NUL (all of them when there is none).
pub fn until_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// A little-endian u64 from the first 8 bytes of `bytes` (zeros past the end).
pub fn le_u64(bytes: &[u8]) -> u64 {
    let mut a = [0; 8];
    let n = bytes.len().min(8);
    a[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_the_absolute_offset_and_what_is_left() {
        let r = Reader::new(&[1, 2, 3, 4, 5, 6, 7, 8, 9], 0x40);
        assert_eq!(r.u8(8, "x").ok(), Some(9));
        assert_eq!(r.u16(0, "x").ok(), Some(0x0201));
        assert_eq!(r.i32(0, "x").ok(), Some(0x0403_0201));
        assert_eq!(r.u64(1, "x").ok(), Some(0x0908_0706_0504_0302));
        assert_eq!(r.i64_be(0, "x").ok(), Some(0x0102_0304_0506_0708));
        let err = r.u32(6, "n_type").unwrap_err();
        assert_eq!(err.offset, 0x46);
        assert_eq!(err.expected, "n_type (4 bytes; only 3 remain)");
        let err = r.slice(20, 1, "far").unwrap_err();
        assert_eq!(
            (err.offset, &*err.expected),
            (0x54, "far (1 bytes; only 0 remain)")
        );
    }

    #[test]
    fn huge_positions_and_lengths_are_errors() {
        let r = Reader::new(&[0; 16], u64::MAX - 4);
        for (pos, len) in [(u64::MAX, 1), (8, u64::MAX), (u64::MAX - 1, 2)] {
            let err = r.slice(pos, len, "x").unwrap_err();
            assert_eq!(err.offset, u64::MAX, "{pos} {len}");
        }
        assert_eq!(r.offset(2), u64::MAX - 2);
    }

    #[test]
    fn nul_ends_and_short_words() {
        assert_eq!(until_nul(b"CORE\0\0\0\0"), b"CORE");
        assert_eq!(until_nul(b"GNU"), b"GNU");
        assert_eq!(le_u64(&[1, 2]), 0x0201);
        assert_eq!(le_u64(&[0xff; 12]), u64::MAX);
    }
}
