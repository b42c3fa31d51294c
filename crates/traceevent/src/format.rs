//! An event's `format` file:
//!
//! ```text
//! name: sched_switch
//! ID: 372
//! format:
//!     field:unsigned short common_type;    offset:0;    size:2;    signed:0;
//!     ...                                   (common fields, then a blank line)
//!     field:char prev_comm[16];    offset:8;    size:16;    signed:0;
//!     ...
//!
//! print fmt: "prev_comm=%s ...", REC->prev_comm, ...
//! ```

use crate::error::FormatError;
use crate::field::Field;

/// A parsed format file, borrowing its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFormat<'a> {
    /// The event's name (`sched_switch`).
    pub name: &'a str,
    /// Its numeric id: the `common_type` of its records.
    pub id: u32,
    /// The fields every event shares (`common_type`, `common_flags`,
    /// `common_preempt_count`, `common_pid`, ...).
    pub common_fields: Vec<Field<'a>>,
    /// The event's own fields.
    pub fields: Vec<Field<'a>>,
    /// The text after `print fmt: ` (a quoted format and its arguments).
    pub print_fmt: &'a str,
}

impl<'a> EventFormat<'a> {
    /// Parses a format file.
    pub fn parse(text: &'a str) -> Result<EventFormat<'a>, FormatError> {
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        let mut next = |expected: &'static str| {
            lines
                .next()
                .ok_or_else(|| FormatError::new(text.lines().count() + 1, expected, ""))
        };
        let (n, line) = next("\"name: EVENT\"")?;
        let name = line
            .strip_prefix("name:")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| FormatError::new(n, "\"name: EVENT\"", line))?;
        let (n, line) = next("\"ID: N\"")?;
        let id = line
            .strip_prefix("ID:")
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| FormatError::new(n, "\"ID: N\"", line))?;
        let (n, line) = next("\"format:\"")?;
        if line.trim() != "format:" {
            return Err(FormatError::new(n, "\"format:\"", line));
        }
        let mut common_fields = Vec::new();
        let mut fields = Vec::new();
        let mut in_common = true;
        let mut print_fmt = None;
        for (n, line) in lines {
            let trimmed = line.trim();
            if trimmed.is_empty() {
                // The blank line after the common fields; a second one
                // comes before "print fmt".
                if !common_fields.is_empty() {
                    in_common = false;
                }
                continue;
            }
            if trimmed.starts_with("print fmt:") {
                // The format string may hold raw newlines: the print fmt
                // runs to the end of the file.
                let start = line_start(text, line) + line.find("print fmt:").unwrap_or(0);
                print_fmt = Some(text[start + "print fmt:".len()..].trim());
                break;
            }
            let field = Field::parse(line, n)?;
            if in_common && field.name.starts_with("common_") {
                common_fields.push(field);
            } else {
                in_common = false;
                fields.push(field);
            }
        }
        let print_fmt = print_fmt.ok_or_else(|| {
            FormatError::new(
                text.lines().count() + 1,
                "a \"print fmt:\" line",
                "end of file",
            )
        })?;
        Ok(EventFormat {
            name,
            id,
            common_fields,
            fields,
            print_fmt,
        })
    }

    /// A field (common or own) by name.
    pub fn field(&self, name: &str) -> Option<&Field<'a>> {
        self.fields
            .iter()
            .chain(&self.common_fields)
            .find(|f| f.name == name)
    }

    /// The smallest record size that holds every inline field.
    pub fn min_record_size(&self) -> u32 {
        self.common_fields
            .iter()
            .chain(&self.fields)
            .map(|f| f.offset.saturating_add(f.size))
            .max()
            .unwrap_or(0)
    }
}

/// The byte offset of `line`, a slice of `text`, within `text`.
fn line_start(text: &str, line: &str) -> usize {
    (line.as_ptr() as usize).saturating_sub(text.as_ptr() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHED_SWITCH: &str = "name: sched_switch\nID: 372\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\n\
\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;\n\
\tfield:long prev_state;\toffset:32;\tsize:8;\tsigned:1;\n\
\n\
print fmt: \"prev_comm=%s prev_pid=%d\", REC->prev_comm, REC->prev_pid\n";

    #[test]
    fn a_real_format_file_parses_into_common_and_own_fields() {
        let format = EventFormat::parse(SCHED_SWITCH).unwrap();
        assert_eq!(format.name, "sched_switch");
        assert_eq!(format.id, 372);
        assert_eq!(format.common_fields.len(), 4);
        assert_eq!(format.fields.len(), 3);
        assert_eq!(format.field("common_pid").unwrap().offset, 4);
        assert_eq!(format.field("prev_state").unwrap().size, 8);
        assert_eq!(format.min_record_size(), 40);
        assert_eq!(
            format.print_fmt,
            "\"prev_comm=%s prev_pid=%d\", REC->prev_comm, REC->prev_pid"
        );
    }

    #[test]
    fn a_print_fmt_with_a_raw_newline_runs_to_the_end_of_the_file() {
        let text = "name: x\nID: 1\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\nprint fmt: \"a %d\n\", REC->common_type\n";
        let format = EventFormat::parse(text).unwrap();
        assert_eq!(format.print_fmt, "\"a %d\n\", REC->common_type");
    }

    #[test]
    fn an_event_without_own_fields_parses() {
        let text = "name: x\nID: 1\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\nprint fmt: \"\"\n";
        let format = EventFormat::parse(text).unwrap();
        assert!(format.fields.is_empty());
        assert_eq!(format.print_fmt, "\"\"");
    }

    #[test]
    fn every_truncation_of_a_real_file_is_an_error_or_a_shorter_parse() {
        for end in 0..SCHED_SWITCH.len() {
            let cut = &SCHED_SWITCH[..end];
            if let Ok(format) = EventFormat::parse(cut) {
                // Only cuts inside the print fmt line can still parse.
                assert!(end > SCHED_SWITCH.find("print fmt:").unwrap(), "{cut:?}");
                assert_eq!(format.fields.len(), 3);
            }
        }
    }

    #[test]
    fn errors_name_the_line_and_what_was_expected() {
        let cases = [
            ("", 1, "name: EVENT"),
            ("nom: x\n", 1, "name: EVENT"),
            ("name: x\nID: abc\n", 2, "ID: N"),
            ("name: x\nID: 3\nfields:\n", 3, "format:"),
            ("name: x\nID: 3\nformat:\n\tgarbage\n", 4, "field:"),
            ("name: x\nID: 3\nformat:\n", 4, "print fmt"),
        ];
        for (text, line, expected) in cases {
            let err = EventFormat::parse(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(err.expected.contains(expected), "{text:?}: {err}");
        }
    }
}
