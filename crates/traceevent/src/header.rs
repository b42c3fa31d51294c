//! `events/header_page` and `events/header_event`: the layout of the ring
//! buffer's sub-buffer header and of the compressed header in front of
//! every record.
//!
//! ```text
//! header_page:                              header_event:
//!     field: u64 timestamp;    offset:0;...      # compressed entry header
//!     field: local_t commit;    offset:8;...          type_len    :    5 bits
//!     field: int overwrite;    offset:8;...          time_delta  :   27 bits
//!     field: char data;    offset:16;...             array       :   32 bits
//!                                               padding     : type == 29
//!                                               time_extend : type == 30
//!                                               time_stamp : type == 31
//!                                               data max type_len  == 28
//! ```

use crate::error::FormatError;
use crate::field::Field;

/// The sub-buffer ("page") header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderPage<'a> {
    /// Its fields: `timestamp`, `commit`, `overwrite`, `data`.
    pub fields: Vec<Field<'a>>,
}

impl<'a> HeaderPage<'a> {
    /// Parses `header_page`.
    pub fn parse(text: &'a str) -> Result<HeaderPage<'a>, FormatError> {
        let fields = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| Field::parse(l, i + 1))
            .collect::<Result<Vec<_>, _>>()?;
        let page = HeaderPage { fields };
        for name in ["timestamp", "commit", "data"] {
            if page.field(name).is_none() {
                return Err(FormatError::new(
                    text.lines().count() + 1,
                    "the fields timestamp, commit and data",
                    name,
                ));
            }
        }
        Ok(page)
    }

    /// A field by name.
    pub fn field(&self, name: &str) -> Option<&Field<'a>> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Size of the `commit` word (8 on 64-bit kernels, 4 on 32-bit).
    pub fn commit_size(&self) -> u32 {
        self.field("commit").map_or(8, |f| f.size)
    }

    /// Where record data starts in a sub-buffer.
    pub fn data_offset(&self) -> u32 {
        self.field("data").map_or(16, |f| f.offset)
    }

    /// How many bytes of data a sub-buffer holds.
    pub fn data_size(&self) -> u32 {
        self.field("data").map_or(0, |f| f.size)
    }
}

/// The compressed record header: 5 bits of type_len, 27 of time delta,
/// and the type_len values with special meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderEvent {
    /// Bits of `type_len` (5).
    pub type_len_bits: u32,
    /// Bits of `time_delta` (27).
    pub time_delta_bits: u32,
    /// type_len of padding (29).
    pub padding: u32,
    /// type_len of a time extend (30).
    pub time_extend: u32,
    /// type_len of an absolute time stamp (31).
    pub time_stamp: u32,
    /// The largest type_len that gives a data length (28).
    pub data_max_type_len: u32,
}

impl HeaderEvent {
    /// Parses `header_event`.
    pub fn parse(text: &str) -> Result<HeaderEvent, FormatError> {
        let value = |key: &str, expected: &'static str| -> Result<u32, FormatError> {
            text.lines()
                .map(str::trim)
                .find_map(|l| {
                    let rest = l.strip_prefix(key)?;
                    let digits: String = rest
                        .chars()
                        .skip_while(|c| !c.is_ascii_digit())
                        .take_while(char::is_ascii_digit)
                        .collect();
                    digits.parse().ok()
                })
                .ok_or_else(|| FormatError::new(text.lines().count() + 1, expected, key))
        };
        Ok(HeaderEvent {
            type_len_bits: value("type_len", "\"type_len : N bits\"")?,
            time_delta_bits: value("time_delta", "\"time_delta : N bits\"")?,
            padding: value("padding", "\"padding : type == N\"")?,
            time_extend: value("time_extend", "\"time_extend : type == N\"")?,
            time_stamp: value("time_stamp", "\"time_stamp : type == N\"")?,
            data_max_type_len: value("data max type_len", "\"data max type_len == N\"")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n\
\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n\
\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n\
\tfield: char data;\toffset:16;\tsize:4080;\tsigned:0;\n";

    const EVENT: &str = "# compressed entry header\n\ttype_len    :    5 bits\n\ttime_delta  :   27 bits\n\tarray       :   32 bits\n\n\tpadding     : type == 29\n\ttime_extend : type == 30\n\ttime_stamp : type == 31\n\tdata max type_len  == 28\n";

    #[test]
    fn the_page_header_gives_commit_and_data_layout() {
        let page = HeaderPage::parse(PAGE).unwrap();
        assert_eq!(page.commit_size(), 8);
        assert_eq!(page.data_offset(), 16);
        assert_eq!(page.data_size(), 4080);
    }

    #[test]
    fn the_event_header_gives_bits_and_special_types() {
        let header = HeaderEvent::parse(EVENT).unwrap();
        assert_eq!(
            header,
            HeaderEvent {
                type_len_bits: 5,
                time_delta_bits: 27,
                padding: 29,
                time_extend: 30,
                time_stamp: 31,
                data_max_type_len: 28,
            }
        );
    }

    #[test]
    fn incomplete_headers_are_errors() {
        assert!(HeaderPage::parse(&PAGE.replace("commit", "kommit")).is_err());
        assert!(HeaderPage::parse("garbage").is_err());
        assert!(HeaderEvent::parse(&EVENT.replace("time_stamp", "ts")).is_err());
        assert!(HeaderEvent::parse("").is_err());
    }
}
