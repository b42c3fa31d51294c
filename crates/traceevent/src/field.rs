//! One field line of a format file:
//! `field:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;`

use crate::error::FormatError;

/// Where a field's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// At `offset`, `size` bytes long.
    Inline,
    /// `__data_loc`: a u32 at `offset` whose low 16 bits are the data's
    /// offset from the record's start and high 16 bits its length.
    DataLoc,
    /// `__rel_loc`: like `__data_loc`, but the offset counts from the end
    /// of the u32 itself.
    RelLoc,
}

/// The length of an array field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrayLen<'a> {
    /// `name[16]`.
    Fixed(u32),
    /// `name[]`: as long as the record is (or as the data_loc says).
    Open,
    /// A length the kernel left as an expression (`name[LEN]`).
    Symbolic(&'a str),
}

/// A field of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// The field's name (`prev_comm`).
    pub name: &'a str,
    /// Its C type without the name and array brackets (`char`, `unsigned
    /// long`, `char[]` for a data_loc string).
    pub type_name: &'a str,
    /// The whole declaration as the kernel wrote it.
    pub declaration: &'a str,
    /// Byte offset in the record.
    pub offset: u32,
    /// Size in bytes (0 for an open array at the record's end).
    pub size: u32,
    /// True for signed integer types.
    pub signed: bool,
    /// Set for array fields.
    pub array: Option<ArrayLen<'a>>,
    /// Inline, `__data_loc` or `__rel_loc`.
    pub location: Location,
    /// For arrays: the size of one element (1 when its type is unknown).
    pub elem_size: u32,
    /// For arrays: whether the elements are signed.
    pub elem_signed: bool,
}

impl<'a> Field<'a> {
    /// Parses a field line (with or without its leading tab). `line` is
    /// the line number, for errors.
    pub fn parse(text: &'a str, line: usize) -> Result<Field<'a>, FormatError> {
        let error = |expected: &'static str| FormatError::new(line, expected, text);
        let mut parts = text.trim().split(';').map(str::trim);
        let declaration = parts
            .next()
            .and_then(|p| p.strip_prefix("field:"))
            .ok_or_else(|| error("a line starting with \"field:\""))?
            .trim();
        let mut number = |key: &str, expected: &'static str| -> Result<u32, FormatError> {
            parts
                .next()
                .and_then(|p| p.strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| error(expected))
        };
        let offset = number("offset:", "\"offset:N;\" after the declaration")?;
        let size = number("size:", "\"size:N;\" after the offset")?;
        let signed = number("signed:", "\"signed:0;\" or \"signed:1;\" after the size")? != 0;
        let (location, rest) = if let Some(rest) = declaration.strip_prefix("__data_loc ") {
            (Location::DataLoc, rest.trim())
        } else if let Some(rest) = declaration.strip_prefix("__rel_loc ") {
            (Location::RelLoc, rest.trim())
        } else {
            (Location::Inline, declaration)
        };
        let (before_brackets, array) = match rest.split_once('[') {
            // data_loc fields put the brackets on the type: "char[] name".
            Some((head, tail)) if location == Location::Inline => {
                let inside = tail
                    .strip_suffix(']')
                    .ok_or_else(|| error("a closing ']' at the end of the declaration"))?
                    .trim();
                let len = if inside.is_empty() {
                    ArrayLen::Open
                } else {
                    inside
                        .parse()
                        .map(ArrayLen::Fixed)
                        .unwrap_or(ArrayLen::Symbolic(inside))
                };
                (head.trim_end(), Some(len))
            }
            Some(_) => (rest, Some(ArrayLen::Open)),
            None => (rest, None),
        };
        // The name starts after the last character that cannot be in one,
        // which need not be one byte long.
        let name_start = before_brackets
            .char_indices()
            .rfind(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let name = &before_brackets[name_start..];
        let type_name = before_brackets[..name_start].trim_end();
        if name.is_empty() || type_name.is_empty() {
            return Err(error("a declaration \"TYPE NAME\""));
        }
        // Worked out once here, not at every read of a record.
        let elem_type = type_name.trim_end_matches("[]").trim();
        Ok(Field {
            name,
            type_name,
            declaration,
            offset,
            size,
            signed,
            array,
            location,
            elem_size: crate::ctype::type_size(elem_type).map_or(1, |s| s as u32),
            elem_signed: crate::ctype::is_signed_type(elem_type),
        })
    }

    /// True for `char` arrays and data_loc `char[]`: text. Arrays of
    /// `u8` or `unsigned char` are bytes (addresses, keys), not text.
    pub fn is_string(&self) -> bool {
        let base = self.type_name.trim_end_matches("[]").trim();
        self.array.is_some() && matches!(base, "char" | "const char" | "signed char")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_signed_and_unsigned_fields() {
        let f = Field::parse("\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;", 5).unwrap();
        assert_eq!(
            (f.name, f.type_name, f.offset, f.size, f.signed),
            ("common_pid", "int", 4, 4, true)
        );
        assert_eq!(f.array, None);
        let f = Field::parse(
            "field:unsigned long parent_ip;\toffset:16;\tsize:8;\tsigned:0;",
            1,
        )
        .unwrap();
        assert_eq!(f.type_name, "unsigned long");
        assert!(!f.signed);
    }

    #[test]
    fn arrays_fixed_open_and_symbolic() {
        let f = Field::parse(
            "field:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;",
            1,
        )
        .unwrap();
        assert_eq!((f.name, f.array), ("prev_comm", Some(ArrayLen::Fixed(16))));
        assert!(f.is_string());
        let f = Field::parse(
            "field:unsigned long args[];\toffset:24;\tsize:0;\tsigned:0;",
            1,
        )
        .unwrap();
        assert_eq!(f.array, Some(ArrayLen::Open));
        assert!(!f.is_string());
        let f = Field::parse("field:u8 key[KEY_LEN];\toffset:8;\tsize:6;\tsigned:0;", 1).unwrap();
        assert_eq!(f.array, Some(ArrayLen::Symbolic("KEY_LEN")));
    }

    #[test]
    fn data_loc_and_rel_loc_fields() {
        let f = Field::parse(
            "field:__data_loc char[] name;\toffset:8;\tsize:4;\tsigned:0;",
            1,
        )
        .unwrap();
        assert_eq!(
            (f.name, f.type_name, f.location),
            ("name", "char[]", Location::DataLoc)
        );
        assert!(f.is_string());
        let f = Field::parse(
            "field:__rel_loc u8[] buf;\toffset:12;\tsize:4;\tsigned:0;",
            1,
        )
        .unwrap();
        assert_eq!((f.name, f.location), ("buf", Location::RelLoc));
    }

    #[test]
    fn header_page_fields_have_a_space_after_the_colon() {
        let f = Field::parse("\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;", 2).unwrap();
        assert_eq!((f.name, f.type_name), ("commit", "local_t"));
    }

    #[test]
    fn a_name_after_a_multibyte_character_is_cut_at_its_boundary() {
        // Found by the `format` fuzz target: this used to panic.
        let f = Field::parse("field:u8\u{752}c_index;\toffset:22;\tsize:1;\tsigned:0;", 3).unwrap();
        assert_eq!((f.type_name, f.name), ("u8\u{752}", "c_index"));
        let err = Field::parse("field:int \u{752};\toffset:0;\tsize:1;\tsigned:0;", 3).unwrap_err();
        assert!(err.expected.contains("TYPE NAME"), "{err}");
    }

    #[test]
    fn malformed_lines_say_what_was_expected_and_where() {
        for (text, expected) in [
            ("offset:1;", "field:"),
            ("field:int x;\toffset:;\tsize:4;\tsigned:1;", "offset:N"),
            ("field:int x;\toffset:0;\tsize:4;", "signed:"),
            ("field:int x;\toffset:0;\tsigned:1;\tsize:4;", "size:N"),
            ("field:x;\toffset:0;\tsize:4;\tsigned:1;", "TYPE NAME"),
            ("field:char a[16;\toffset:0;\tsize:4;\tsigned:1;", "']'"),
            ("field:;\toffset:0;\tsize:4;\tsigned:1;", "TYPE NAME"),
        ] {
            let err = Field::parse(text, 7).unwrap_err();
            let message = err.to_string();
            assert!(message.contains("line 7"), "{message}");
            assert!(message.contains(expected), "{text:?}: {message}");
        }
    }
}
