//! A cursor over borrowed bytes — the whole file, or the uncompressed
//! contents of one compressed block — that reads numbers in the file's
//! byte order, checks every size against what is left before using it, and
//! turns every failure into an [`Error`] that says where it is.

use std::collections::BTreeMap;

use crate::Error;

/// Ranges of the file already read, so that a part the file points at
/// twice (or a part overlapping another) is refused instead of read again:
/// hostile pointers would otherwise make the work grow with the square of
/// the file's size.
#[derive(Debug, Default)]
pub(crate) struct Ranges(BTreeMap<u64, u64>);

impl Ranges {
    /// Records [start, end); false when it overlaps a range recorded before.
    pub(crate) fn claim(&mut self, start: u64, end: u64) -> bool {
        let before = self.0.range(..=start).next_back();
        let after = self.0.range(start..).next();
        if before.is_some_and(|(_, &e)| e > start) || after.is_some_and(|(&s, _)| s < end) {
            return false;
        }
        self.0.insert(start, end);
        true
    }
}

/// Reads numbers, strings and slices from `data`, starting at `pos` and
/// never past `end`.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
    big_endian: bool,
    /// File offset of the compressed block that `data` is the contents of;
    /// `None` when `data` is the file.
    block: Option<u64>,
}

impl<'a> Reader<'a> {
    /// A reader over a whole file, at its start.
    pub(crate) fn file(data: &'a [u8], big_endian: bool) -> Reader<'a> {
        Reader {
            data,
            pos: 0,
            end: data.len(),
            big_endian,
            block: None,
        }
    }

    /// A reader over the uncompressed contents of the block compressed at
    /// file offset `offset`.
    pub(crate) fn block(data: &'a [u8], big_endian: bool, offset: u64) -> Reader<'a> {
        Reader {
            block: Some(offset),
            ..Reader::file(data, big_endian)
        }
    }

    /// The same reader, reading numbers in the given byte order.
    pub(crate) fn with_big_endian(self, big_endian: bool) -> Reader<'a> {
        Reader { big_endian, ..self }
    }

    /// The position, as an offset in the file or the block.
    pub(crate) fn position(&self) -> u64 {
        self.pos as u64
    }

    /// Bytes left before the end.
    pub(crate) fn remaining(&self) -> u64 {
        (self.end - self.pos) as u64
    }

    /// A reader over the same data, at `offset` (from the start of the
    /// file or block) and reading to its end.
    pub(crate) fn seek(&self, offset: u64, what: &'static str) -> Result<Reader<'a>, Error> {
        match usize::try_from(offset) {
            Ok(pos) if pos <= self.data.len() => Ok(Reader {
                pos,
                end: self.data.len(),
                ..self.clone()
            }),
            _ => Err(self.error_at(
                self.pos,
                format!(
                    "{what} at an offset inside the file ({offset} is past its end at {})",
                    self.data.len()
                ),
            )),
        }
    }

    /// A reader over the next `len` bytes, which this one skips.
    pub(crate) fn split(&mut self, len: u64, what: &'static str) -> Result<Reader<'a>, Error> {
        let start = self.pos;
        self.bytes(len, what)?;
        Ok(Reader {
            pos: start,
            end: self.pos,
            ..self.clone()
        })
    }

    /// The next `len` bytes.
    pub(crate) fn bytes(&mut self, len: u64, what: &'static str) -> Result<&'a [u8], Error> {
        let available = self.remaining();
        if len > available {
            return Err(self.truncated(what, len));
        }
        let start = self.pos;
        // len <= available, which fits in usize.
        self.pos += len as usize;
        Ok(&self.data[start..self.pos])
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Error> {
        let bytes = self.bytes(N as u64, what)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// One byte.
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.array::<1>(what)?[0])
    }

    /// A 16-bit number in the file's byte order.
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, Error> {
        let b = self.array(what)?;
        Ok(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    /// A 32-bit number in the file's byte order.
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, Error> {
        let b = self.array(what)?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    /// A 64-bit number in the file's byte order.
    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, Error> {
        let b = self.array(what)?;
        Ok(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    /// A NUL-terminated string of at most `max` bytes before the NUL,
    /// without the NUL.
    pub(crate) fn cstr(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], Error> {
        let rest = &self.data[self.pos..self.end];
        let window = &rest[..rest.len().min(max + 1)];
        match window.iter().position(|&b| b == 0) {
            Some(len) => {
                let text = self.bytes(len as u64, what)?;
                self.pos += 1;
                Ok(text)
            }
            None if window.len() > max => Err(self.format_error(format!(
                "{what}: a NUL-terminated string of at most {max} bytes"
            ))),
            None => Err(self.truncated(what, rest.len() as u64 + 1)),
        }
    }

    /// A NUL-terminated UTF-8 string of at most `max` bytes.
    pub(crate) fn text(&mut self, what: &'static str, max: usize) -> Result<&'a str, Error> {
        let start = self.pos;
        let bytes = self.cstr(what, max)?;
        std::str::from_utf8(bytes).map_err(|_| self.error_at(start, format!("{what} in UTF-8")))
    }

    /// Checks that the next bytes are `tag`.
    pub(crate) fn expect(&mut self, tag: &[u8], what: &'static str) -> Result<(), Error> {
        let start = self.pos;
        let got = self.bytes(tag.len() as u64, what)?;
        if got == tag {
            Ok(())
        } else {
            Err(self.error_at(
                start,
                format!("{what} ({:?})", String::from_utf8_lossy(tag)),
            ))
        }
    }

    /// A format error at the current position.
    pub(crate) fn format_error(&self, expected: impl Into<String>) -> Error {
        self.error_at(self.pos, expected)
    }

    /// A format error at `pos` (an offset in the file or block).
    pub(crate) fn error_at(&self, pos: usize, expected: impl Into<String>) -> Error {
        let (offset, uncompressed) = self.location(pos as u64);
        Error::Format {
            offset,
            uncompressed,
            expected: expected.into(),
        }
    }

    /// A size beyond a limit, declared just before the current position
    /// (`back` bytes before it).
    pub(crate) fn too_large(
        &self,
        back: usize,
        what: &'static str,
        size: u64,
        limit: u64,
    ) -> Error {
        let (offset, uncompressed) = self.location(self.pos.saturating_sub(back) as u64);
        Error::TooLarge {
            offset,
            uncompressed,
            what,
            size,
            limit,
        }
    }

    /// A part of the format this crate does not read, at the current
    /// position.
    pub(crate) fn unsupported(&self, pos: usize, what: impl Into<String>) -> Error {
        let (offset, uncompressed) = self.location(pos as u64);
        Error::Unsupported {
            offset,
            uncompressed,
            what: what.into(),
        }
    }

    fn truncated(&self, what: &'static str, needed: u64) -> Error {
        let (offset, uncompressed) = self.location(self.pos as u64);
        Error::Truncated {
            offset,
            uncompressed,
            what,
            needed,
            available: self.remaining(),
        }
    }

    /// The (file offset, offset in the block) of position `pos`.
    pub(crate) fn location(&self, pos: u64) -> (u64, Option<u64>) {
        match self.block {
            None => (pos, None),
            Some(offset) => (offset, Some(pos)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_that_touch_do_not_overlap() {
        let mut ranges = Ranges::default();
        assert!(ranges.claim(100, 200));
        assert!(ranges.claim(300, 400));
        assert!(ranges.claim(200, 300));
        assert!(ranges.claim(0, 100));
        assert!(ranges.claim(400, 500));
        for (start, end) in [
            (100, 101),
            (199, 250),
            (250, 301),
            (50, 450),
            (150, 160),
            (0, 1),
        ] {
            assert!(!ranges.claim(start, end), "{start}..{end}");
        }
    }

    #[test]
    fn numbers_follow_the_byte_order() {
        let bytes = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(Reader::file(&bytes, false).u32("n").unwrap(), 0x0403_0201);
        assert_eq!(Reader::file(&bytes, true).u32("n").unwrap(), 0x0102_0304);
        assert_eq!(
            Reader::file(&bytes, true).u64("n").unwrap(),
            0x0102_0304_0506_0708
        );
        assert_eq!(Reader::file(&bytes, false).u16("n").unwrap(), 0x0201);
    }

    #[test]
    fn reading_past_the_end_says_where_and_what() {
        let mut r = Reader::file(&[0; 6], false);
        r.u32("first").unwrap();
        match r.u32("the size of kallsyms") {
            Err(Error::Truncated {
                offset: 4,
                uncompressed: None,
                what: "the size of kallsyms",
                needed: 4,
                available: 2,
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_inside_a_block_name_the_block_and_the_inner_offset() {
        let mut r = Reader::block(&[1, 2], false, 900);
        r.u8("a").unwrap();
        let err = r.u32("b").unwrap_err();
        assert_eq!(err.offset(), Some(900));
        assert!(
            err.to_string()
                .contains("at byte 1 of the block compressed at byte 900"),
            "{err}"
        );
    }

    #[test]
    fn strings_end_at_a_nul_within_their_limit() {
        let mut r = Reader::file(b"zstd\0\x31.5\0rest", false);
        assert_eq!(r.cstr("name", 8).unwrap(), b"zstd");
        assert_eq!(r.text("version", 8).unwrap(), "1.5");
        assert_eq!(r.position(), 9);
        assert!(matches!(
            Reader::file(b"abcdefgh\0", false).cstr("name", 4),
            Err(Error::Format { offset: 0, .. })
        ));
        assert!(matches!(
            Reader::file(b"abc", false).cstr("name", 8),
            Err(Error::Truncated { needed: 4, .. })
        ));
        assert!(Reader::file(b"\xff\0", false).text("name", 8).is_err());
    }

    #[test]
    fn split_limits_a_sub_reader_and_skips_it() {
        let mut r = Reader::file(&[1, 2, 3, 4, 5], false);
        r.u8("a").unwrap();
        let mut inner = r.split(2, "inner").unwrap();
        assert_eq!(inner.remaining(), 2);
        assert!(inner.u32("x").is_err());
        assert_eq!(r.u8("after").unwrap(), 4);
        assert!(r.split(9, "big").is_err());
        assert!(r.seek(6, "x").is_err());
        assert_eq!(r.seek(5, "x").unwrap().remaining(), 0);
    }
}
