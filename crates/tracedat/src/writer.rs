//! The writing counterpart of the reader: an output that knows its
//! position, writes numbers in the file's byte order, pads to an alignment
//! with zeros, and goes back to fill in a number it could not know when it
//! wrote the place for it.

use std::io::{Seek, SeekFrom, Write};

use crate::Error;

/// Bytes in the file's byte order, appended to a `Vec` (a part being built
/// in memory) or written to the output.
pub(crate) trait Put {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]) -> Result<(), Error>;
    /// Whether numbers are big-endian.
    fn big_endian(&self) -> bool;

    /// A 16-bit number.
    fn u16(&mut self, n: u16) -> Result<(), Error> {
        let b = if self.big_endian() {
            n.to_be_bytes()
        } else {
            n.to_le_bytes()
        };
        self.put(&b)
    }

    /// A 32-bit number.
    fn u32(&mut self, n: u32) -> Result<(), Error> {
        let b = if self.big_endian() {
            n.to_be_bytes()
        } else {
            n.to_le_bytes()
        };
        self.put(&b)
    }

    /// A 64-bit number.
    fn u64(&mut self, n: u64) -> Result<(), Error> {
        let b = if self.big_endian() {
            n.to_be_bytes()
        } else {
            n.to_le_bytes()
        };
        self.put(&b)
    }

    /// A string and its NUL.
    fn cstr(&mut self, s: &[u8]) -> Result<(), Error> {
        self.put(s)?;
        self.put(&[0])
    }
}

/// A part of the file built in memory before it is written.
pub(crate) struct Part {
    pub(crate) bytes: Vec<u8>,
    big_endian: bool,
}

impl Part {
    /// An empty part whose numbers have the given byte order.
    pub(crate) fn new(big_endian: bool) -> Part {
        Part {
            bytes: Vec::new(),
            big_endian,
        }
    }
}

impl Put for Part {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    fn big_endian(&self) -> bool {
        self.big_endian
    }
}

/// The output file, written from its start.
pub(crate) struct Out<'w, W> {
    w: &'w mut W,
    /// Offset of the next byte, counted from where writing started.
    pos: u64,
    /// Where offset 0 is in `w`.
    base: u64,
    big_endian: bool,
}

impl<'w, W: Write + Seek> Out<'w, W> {
    /// An output whose offset 0 is `w`'s current position.
    pub(crate) fn new(w: &'w mut W, big_endian: bool) -> Result<Out<'w, W>, Error> {
        let base = w.stream_position()?;
        Ok(Out {
            w,
            pos: 0,
            base,
            big_endian,
        })
    }

    /// The offset of the next byte.
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// Writes zeros up to the next multiple of `align` (a power of two).
    pub(crate) fn pad_to(&mut self, align: u64) -> Result<(), Error> {
        const ZEROS: [u8; 4096] = [0; 4096];
        let mut left = self.pos.next_multiple_of(align) - self.pos;
        while left > 0 {
            let n = left.min(ZEROS.len() as u64);
            self.put(&ZEROS[..n as usize])?;
            left -= n;
        }
        Ok(())
    }

    /// Writes `n` at offset `at`, where an 8-byte zero was written for it,
    /// and comes back to the end.
    pub(crate) fn patch_u64(&mut self, at: u64, n: u64) -> Result<(), Error> {
        let b = if self.big_endian {
            n.to_be_bytes()
        } else {
            n.to_le_bytes()
        };
        self.w.seek(SeekFrom::Start(self.base + at))?;
        self.w.write_all(&b)?;
        self.w.seek(SeekFrom::Start(self.base + self.pos))?;
        Ok(())
    }
}

impl<W: Write + Seek> Put for Out<'_, W> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.w.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    fn big_endian(&self) -> bool {
        self.big_endian
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn numbers_padding_and_patches() {
        let mut file = Cursor::new(b"xy".to_vec());
        file.set_position(2);
        let mut out = Out::new(&mut file, true).unwrap();
        out.u16(0x0102).unwrap();
        out.u64(0).unwrap();
        out.pad_to(16).unwrap();
        assert_eq!(out.pos(), 16);
        out.patch_u64(2, 0x0a0b).unwrap();
        out.u32(7).unwrap();
        let bytes = file.into_inner();
        assert_eq!(&bytes[..4], b"xy\x01\x02");
        assert_eq!(&bytes[4..12], &[0, 0, 0, 0, 0, 0, 0x0a, 0x0b]);
        assert_eq!(bytes.len(), 2 + 16 + 4);
        assert_eq!(&bytes[18..], &[0, 0, 0, 7]);

        let mut part = Part::new(false);
        part.u32(1).unwrap();
        part.cstr(b"ab").unwrap();
        assert_eq!(part.bytes, [1, 0, 0, 0, b'a', b'b', 0]);
    }
}
