//! SystemTap's `printf` format language, for the user-space side of
//! `kscope probe`: a script's BPF program sends a format's raw arguments
//! through the ring buffer, and user space renders them with a [`Format`]
//! parsed once when the script is compiled. The output matches SystemTap's
//! kernel runtime byte for byte (SystemTap 1.3 and later, as of 5.x:
//! `runtime/vsprintf.c`'s `number()`, `_stp_vsprint_char()` and
//! `_stp_vsprint_memory()`, which the translator's compiled printfs call),
//! including where it differs from C's printf:
//!
//! - `%#x`, `%#X` and `%#o` write their prefix for 0 too (`0x0`, `00`), and
//!   `%#o` writes its `0` before the precision's zeros (`%#.3o` of 8 is
//!   `0010`).
//! - `0` pads with zeros even when a precision is given (`%08.3d` of 5 is
//!   `00000005`), and a precision of 0 still writes the digit 0.
//! - `%p` is `%#x` of the 64-bit value: `0x` and the hex digits, not padded
//!   to 16 digits (SystemTap's documentation shows `0x0000000000bc614e`,
//!   which was its output before version 1.3).
//! - `%#c` writes a character that is not printable ASCII, `'` or `\` as a C
//!   escape (`\n`, `\001`).
//! - `%0s` writes a NUL byte after the string (and its padding), which
//!   SystemTap uses to write NUL-terminated strings in binary output.
//! - A `.` without digits means no precision.
//!
//! Where kscope takes more than SystemTap's translator, a format SystemTap
//! takes still renders the same: any number of flags (SystemTap takes one
//! per directive) and the length modifiers `hh`, `h`, `l`, `ll`, `z` and `j`
//! (SystemTap takes `l`), all ignored because every value is 64-bit.
//! SystemTap's `*` width and precision, `%b`, `%m` and `%M` are refused.
//!
//! ```
//! use kscope_probe::printf::{ArgKind, Format, Value};
//!
//! let format = Format::parse("%-6s|%5d|%#x|%p\n")?;
//! assert_eq!(format.arg_kinds(), [ArgKind::Str, ArgKind::Int, ArgKind::Int, ArgKind::Int]);
//! let mut out = Vec::new();
//! format.render(&[Value::Str(b"bash\0"), Value::Int(-42), Value::Int(255), Value::Int(0xbc614e)], &mut out);
//! assert_eq!(out, b"bash  |  -42|0xff|0xbc614e\n");
//!
//! let err = Format::parse("read %k bytes").unwrap_err();
//! assert_eq!(err.offset, 5);
//! assert_eq!(err.message, "unknown conversion '%k'; SystemTap's printf takes d i u x X o s c p %");
//! # Ok::<(), kscope_probe::printf::FormatError>(())
//! ```

/// The largest width or precision a format may give. SystemTap clamps them
/// to its print buffer (`STP_BUFFER_SIZE`, 8192 bytes by default); kscope
/// refuses larger ones when it parses the format, so that a typo cannot
/// make every event megabytes long.
pub const MAX_FIELD: usize = 8192;

/// The conversions a format may use, as error messages list them.
const CONVERSIONS: &str = "d i u x X o s c p %";

/// A parsed format string: literal text and directives, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pieces: Vec<Piece>,
}

/// One part of a [`Format`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text, written as is; a `%%` in the format is one `%` here,
    /// and the text around it is in the same piece.
    Text(String),
    /// A directive, which formats one argument.
    Directive(Directive),
}

/// A `%[flags][width][.precision][length]conversion` directive; the length
/// modifier is not kept, since every value is 64-bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Directive {
    /// The flags, in any order.
    pub flags: Flags,
    /// The minimum number of bytes written; padded with spaces, or with
    /// zeros after the sign and prefix for a number with the `0` flag.
    pub width: Option<usize>,
    /// For a number, the minimum number of digits; for `%s`, the most
    /// bytes of the string written; ignored by `%c`.
    pub precision: Option<usize>,
    /// What the argument is written as.
    pub conversion: Conversion,
}

/// A directive's flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// `-`: pad on the right instead of the left; overrides `0` for numbers.
    pub left: bool,
    /// `+`: write `+` before a non-negative `%d`/`%i`.
    pub plus: bool,
    /// ` `: write a space before a non-negative `%d`/`%i` (unless `+`).
    pub space: bool,
    /// `0`: pad a number with zeros; after `%s`, write a NUL byte.
    pub zero: bool,
    /// `#`: prefix `%o` with `0` and `%x`/`%X` with `0x`/`0X`; escape
    /// characters that are not printable ASCII in `%c`.
    pub alternate: bool,
}

/// What a directive writes its argument as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// `%d` or `%i`: signed decimal.
    Signed,
    /// `%u`: unsigned decimal of the 64-bit two's complement.
    Unsigned,
    /// `%o`: unsigned octal of the 64-bit two's complement.
    Octal,
    /// `%x`: lower-case hexadecimal of the 64-bit two's complement.
    HexLower,
    /// `%X`: upper-case hexadecimal of the 64-bit two's complement.
    HexUpper,
    /// `%s`: a string, up to its first NUL byte.
    Str,
    /// `%c`: the value's low byte.
    Char,
    /// `%p`: a pointer, written as `%#x` writes it.
    Pointer,
}

/// What a directive consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A 64-bit integer.
    Int,
    /// A string.
    Str,
}

/// An argument to [`Format::render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// A 64-bit integer.
    Int(i64),
    /// A string's bytes, as read from the ring buffer; it ends at its first
    /// NUL byte, if any.
    Str(&'a [u8]),
}

/// A format string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (byte {offset} of the format)")]
pub struct FormatError {
    /// The byte offset in the format string of the `%` that starts the bad
    /// directive.
    pub offset: usize,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl Format {
    /// Parses a format string whose escapes the lexer has already decoded.
    pub fn parse(text: &str) -> Result<Format, FormatError> {
        let bytes = text.as_bytes();
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = 0;
        while let Some(found) = text[rest..].find('%') {
            let start = rest + found;
            literal.push_str(&text[rest..start]);
            if bytes.get(start + 1) == Some(&b'%') {
                literal.push('%');
                rest = start + 2;
                continue;
            }
            let (directive, end) = parse_directive(text, start)?;
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Directive(directive));
            rest = end;
        }
        literal.push_str(&text[rest..]);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Format { pieces })
    }

    /// The text and directives, in order.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// What each directive consumes, in order; `%%` consumes nothing.
    pub fn arg_kinds(&self) -> Vec<ArgKind> {
        self.directives()
            .map(|d| match d.conversion {
                Conversion::Str => ArgKind::Str,
                _ => ArgKind::Int,
            })
            .collect()
    }

    /// Appends the formatted text to `out`. It never panics and allocates
    /// nothing but `out`'s growth, since it runs once per event: a missing
    /// argument, or one of the wrong kind (which the type checker rules
    /// out), is written as `""` or 0; extra arguments are ignored.
    pub fn render(&self, args: &[Value<'_>], out: &mut Vec<u8>) {
        let mut args = args.iter();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.extend_from_slice(text.as_bytes()),
                Piece::Directive(d) => d.render(args.next(), out),
            }
        }
    }

    /// The directives, in order.
    fn directives(&self) -> impl Iterator<Item = &Directive> {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Directive(d) => Some(d),
            Piece::Text(_) => None,
        })
    }
}

/// The format of SystemTap's `print` and `println`: `kinds` written one
/// after the other with no separator (`%d` for [`ArgKind::Int`], `%s` for
/// [`ArgKind::Str`]), then `"\n"` when `newline`.
pub fn concatenation(kinds: &[ArgKind], newline: bool) -> Format {
    let mut pieces: Vec<Piece> = kinds
        .iter()
        .map(|kind| {
            Piece::Directive(Directive {
                flags: Flags::default(),
                width: None,
                precision: None,
                conversion: match kind {
                    ArgKind::Int => Conversion::Signed,
                    ArgKind::Str => Conversion::Str,
                },
            })
        })
        .collect();
    if newline {
        pieces.push(Piece::Text("\n".to_owned()));
    }
    Format { pieces }
}

/// Parses the directive whose `%` is at `start` (and is not `%%`); returns
/// it and the offset just past it.
fn parse_directive(text: &str, start: usize) -> Result<(Directive, usize), FormatError> {
    let bytes = text.as_bytes();
    let error = |message: String| FormatError {
        offset: start,
        message,
    };
    let mut at = start + 1;
    let mut flags = Flags::default();
    while let Some(&b) = bytes.get(at) {
        match b {
            b'-' => flags.left = true,
            b'+' => flags.plus = true,
            b' ' => flags.space = true,
            b'0' => flags.zero = true,
            b'#' => flags.alternate = true,
            _ => break,
        }
        at += 1;
    }
    let star = |what: &str| {
        error(format!(
            "'*' {what} is not supported; write the number into the format"
        ))
    };
    if bytes.get(at) == Some(&b'*') {
        return Err(star("width"));
    }
    let width = parse_number(bytes, &mut at).map_err(|()| {
        error(format!(
            "the width in '{}' is larger than {MAX_FIELD}",
            &text[start..at]
        ))
    })?;
    let mut precision = None;
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        if bytes.get(at) == Some(&b'*') {
            return Err(star("precision"));
        }
        precision = parse_number(bytes, &mut at).map_err(|()| {
            error(format!(
                "the precision in '{}' is larger than {MAX_FIELD}",
                &text[start..at]
            ))
        })?;
    }
    at += match (bytes.get(at), bytes.get(at + 1)) {
        (Some(b'h'), Some(b'h')) | (Some(b'l'), Some(b'l')) => 2,
        (Some(b'h' | b'l' | b'z' | b'j'), _) => 1,
        _ => 0,
    };
    let Some(c) = text[at..].chars().next() else {
        return Err(error(if at == start + 1 {
            "'%' at the end of the format; write '%%' for a percent sign".to_owned()
        } else {
            format!(
                "'{}' at the end of the format lacks its conversion; \
                 SystemTap's printf takes {CONVERSIONS}",
                &text[start..]
            )
        }));
    };
    let conversion = match c {
        'd' | 'i' => Conversion::Signed,
        'u' => Conversion::Unsigned,
        'o' => Conversion::Octal,
        'x' => Conversion::HexLower,
        'X' => Conversion::HexUpper,
        's' => Conversion::Str,
        'c' => Conversion::Char,
        'p' => Conversion::Pointer,
        _ => {
            let written = format!("{}{}", &text[start..at], c.escape_debug());
            return Err(error(match c {
                '%' => format!(
                    "'{written}' gives flags, a width or a precision to a percent sign; \
                     write '%%' for a percent sign"
                ),
                'b' | 'm' | 'M' => format!(
                    "'{written}' is not supported: SystemTap's %b, %m and %M write raw \
                     bytes, which kscope probe does not; use one of {CONVERSIONS}"
                ),
                _ => format!(
                    "unknown conversion '{written}'; SystemTap's printf takes {CONVERSIONS}"
                ),
            }));
        }
    };
    let directive = Directive {
        flags,
        width,
        precision,
        conversion,
    };
    Ok((directive, at + c.len_utf8()))
}

/// Reads the decimal digits at `*at`, if any, and moves past them; fails
/// when the number is larger than [`MAX_FIELD`].
fn parse_number(bytes: &[u8], at: &mut usize) -> Result<Option<usize>, ()> {
    let mut number = None;
    while let Some(&b) = bytes.get(*at).filter(|b| b.is_ascii_digit()) {
        let n = number.unwrap_or(0) * 10 + usize::from(b - b'0');
        *at += 1;
        if n > MAX_FIELD {
            // Move past the rest of the digits, so the message shows them.
            while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            return Err(());
        }
        number = Some(n);
    }
    Ok(number)
}

impl Directive {
    /// Writes `arg`, or what stands for a missing one, as the directive says.
    fn render(&self, arg: Option<&Value<'_>>, out: &mut Vec<u8>) {
        let int = match arg {
            Some(Value::Int(v)) => *v,
            _ => 0,
        };
        match self.conversion {
            Conversion::Signed | Conversion::Unsigned => self.number(int, 10, false, out),
            Conversion::Octal => self.number(int, 8, false, out),
            Conversion::HexLower | Conversion::Pointer => self.number(int, 16, false, out),
            Conversion::HexUpper => self.number(int, 16, true, out),
            Conversion::Char => self.char(int as u8, out),
            Conversion::Str => {
                let s = match arg {
                    Some(Value::Str(s)) => *s,
                    _ => &[],
                };
                self.string(s, out);
            }
        }
    }

    /// Writes an integer as SystemTap's `number()` does.
    fn number(&self, value: i64, base: u64, upper: bool, out: &mut Vec<u8>) {
        let flags = self.flags;
        let zero = flags.zero && !flags.left;
        let (sign, mut magnitude) = if self.conversion == Conversion::Signed {
            let sign = if value < 0 {
                Some(b'-')
            } else if flags.plus {
                Some(b'+')
            } else if flags.space {
                Some(b' ')
            } else {
                None
            };
            (sign, value.unsigned_abs())
        } else {
            (None, value as u64)
        };
        let prefix: &[u8] = match (base, upper) {
            _ if !(flags.alternate || self.conversion == Conversion::Pointer) => b"",
            (16, false) => b"0x",
            (16, true) => b"0X",
            (8, _) => b"0",
            _ => b"",
        };
        let digits: &[u8; 16] = if upper {
            b"0123456789ABCDEF"
        } else {
            b"0123456789abcdef"
        };
        // 22 octal digits hold a u64; filled from the end.
        let mut buf = [0u8; 22];
        let mut first = buf.len();
        loop {
            first -= 1;
            buf[first] = digits[(magnitude % base) as usize];
            magnitude /= base;
            if magnitude == 0 {
                break;
            }
        }
        let number = &buf[first..];
        let precision = self.precision.unwrap_or(0).max(number.len());
        let used = usize::from(sign.is_some()) + prefix.len() + precision;
        let pad = self.width.unwrap_or(0).saturating_sub(used);
        if !flags.left && !zero {
            pad_with(out, b' ', pad);
        }
        out.extend(sign);
        out.extend_from_slice(prefix);
        if zero {
            pad_with(out, b'0', pad);
        }
        pad_with(out, b'0', precision - number.len());
        out.extend_from_slice(number);
        if flags.left {
            pad_with(out, b' ', pad);
        }
    }

    /// Writes a byte as SystemTap's `_stp_vsprint_char()` does.
    fn char(&self, c: u8, out: &mut Vec<u8>) {
        let plain = !self.flags.alternate || (matches!(c, b' '..=b'~') && c != b'\'' && c != b'\\');
        let escape = match c {
            0x07 => b'a',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x0b => b'v',
            b'\'' | b'\\' => c,
            _ => 0,
        };
        let octal = [
            b'\\',
            b'0' + (c >> 6),
            b'0' + ((c >> 3) & 7),
            b'0' + (c & 7),
        ];
        let written: &[u8] = if plain {
            &[c]
        } else if escape != 0 {
            &[b'\\', escape]
        } else {
            &octal
        };
        self.padded(written, out);
    }

    /// Writes a string as SystemTap's `_stp_vsprint_memory()` does for `%s`.
    fn string(&self, s: &[u8], out: &mut Vec<u8>) {
        let len = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        let len = self.precision.map_or(len, |p| p.min(len));
        self.padded(&s[..len], out);
        if self.flags.zero {
            out.push(0);
        }
    }

    /// Writes `bytes` padded with spaces to the width, on the left unless
    /// the `-` flag is given.
    fn padded(&self, bytes: &[u8], out: &mut Vec<u8>) {
        let pad = self.width.unwrap_or(0).saturating_sub(bytes.len());
        if !self.flags.left {
            pad_with(out, b' ', pad);
        }
        out.extend_from_slice(bytes);
        if self.flags.left {
            pad_with(out, b' ', pad);
        }
    }
}

/// Appends `count` copies of `byte`.
fn pad_with(out: &mut Vec<u8>, byte: u8, count: usize) {
    out.resize(out.len() + count, byte);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders `format` with `args`, as a string with NUL bytes shown as `\0`.
    fn render(format: &str, args: &[Value<'_>]) -> String {
        let mut out = Vec::new();
        Format::parse(format).unwrap().render(args, &mut out);
        String::from_utf8(out).unwrap().replace('\0', "\\0")
    }

    fn int(format: &str, v: i64) -> String {
        render(format, &[Value::Int(v)])
    }

    fn str(format: &str, s: &str) -> String {
        render(format, &[Value::Str(s.as_bytes())])
    }

    fn error(format: &str) -> (usize, String) {
        let err = Format::parse(format).unwrap_err();
        (err.offset, err.message)
    }

    // Expected outputs in this test agree with C's printf; they were
    // produced with gcc's printf, with `ll` added.
    #[test]
    fn integers_as_c_writes_them() {
        assert_eq!(int("%d", 42), "42");
        assert_eq!(int("%d", -42), "-42");
        assert_eq!(int("%i", -7), "-7");
        assert_eq!(int("%d", i64::MIN), "-9223372036854775808");
        assert_eq!(int("%5d", 42), "   42");
        assert_eq!(int("%-5d|", 42), "42   |");
        assert_eq!(int("%05d", -42), "-0042");
        assert_eq!(int("%+d", 42), "+42");
        assert_eq!(int("%+d", -42), "-42");
        assert_eq!(int("% d", 42), " 42");
        assert_eq!(int("% d", -42), "-42");
        assert_eq!(int("%+ d", 42), "+42");
        assert_eq!(int("%+05d", 42), "+0042");
        assert_eq!(int("%.3d", 7), "007");
        assert_eq!(int("%8.3d", -7), "    -007");
        assert_eq!(int("%-8.3d|", -7), "-007    |");
        assert_eq!(int("%u", -1), "18446744073709551615");
        assert_eq!(int("%u", 42), "42");
        assert_eq!(int("%+u", 42), "42");
        assert_eq!(int("%5u", 42), "   42");
        assert_eq!(int("%x", -1), "ffffffffffffffff");
        assert_eq!(int("%x", 255), "ff");
        assert_eq!(int("%X", 255), "FF");
        assert_eq!(int("%X", i64::MIN), "8000000000000000");
        assert_eq!(int("%#x", 255), "0xff");
        assert_eq!(int("%#X", 255), "0XFF");
        assert_eq!(int("%#x", -1), "0xffffffffffffffff");
        assert_eq!(int("%08x", 0xbeef), "0000beef");
        assert_eq!(int("%#010x", 0xbeef), "0x0000beef");
        assert_eq!(int("%-#10x|", 0xbeef), "0xbeef    |");
        assert_eq!(int("%+x", 255), "ff");
        assert_eq!(int("%.6x", 0xbeef), "00beef");
        assert_eq!(int("%o", 8), "10");
        assert_eq!(int("%#o", 8), "010");
        assert_eq!(int("%o", -1), "1777777777777777777777");
        assert_eq!(int("%06o", 8), "000010");
        assert_eq!(int("%c", 65), "A");
        assert_eq!(int("%3c", 65), "  A");
        assert_eq!(int("%-3c|", 65), "A  |");
    }

    // Expected outputs in this test are where SystemTap differs from C; they
    // were produced by SystemTap's number(), _stp_vsprint_char() and
    // _stp_vsprint_memory() (runtime/vsprintf.c) compiled with gcc.
    #[test]
    fn integers_as_systemtap_writes_them() {
        assert_eq!(int("%#x", 0), "0x0");
        assert_eq!(int("%#o", 0), "00");
        assert_eq!(int("%#.3o", 8), "0010");
        assert_eq!(int("%08.3d", 5), "00000005");
        assert_eq!(int("%08.3d", -5), "-0000005");
        assert_eq!(int("%.0d", 0), "0");
        assert_eq!(int("%-05d|", 42), "42   |");
        assert_eq!(int("% 05d", 42), " 0042");
        assert_eq!(int("%#08x", 0xbeef), "0x00beef");
        assert_eq!(int("%#8x", 0xbeef), "  0xbeef");
        assert_eq!(int("%#2x", 0xbeef), "0xbeef");
    }

    #[test]
    fn pointers_are_hash_x() {
        assert_eq!(int("%p", 0xbc614e), "0xbc614e");
        assert_eq!(int("%p", 0), "0x0");
        assert_eq!(int("%p", -1), "0xffffffffffffffff");
        assert_eq!(int("%20p", 0xbc614e), "            0xbc614e");
        assert_eq!(int("%020p", 0xbc614e), "0x000000000000bc614e");
        assert_eq!(int("%-20p|", 0xbc614e), "0xbc614e            |");
        assert_eq!(int("%.8p", 0xbeef), "0x0000beef");
        assert_eq!(int("%+p", 1), "0x1");
    }

    #[test]
    fn chars_are_the_low_byte() {
        assert_eq!(int("%c", 0x141), "A");
        assert_eq!(int("%c", -191), "A");
        assert_eq!(int("%c", 0), "\\0");
        assert_eq!(int("%05c", 65), "    A");
        assert_eq!(int("%.3c", 65), "A");
        let mut out = Vec::new();
        Format::parse("%c")
            .unwrap()
            .render(&[Value::Int(0xe9)], &mut out);
        assert_eq!(out, [0xe9]);
    }

    #[test]
    fn alternate_chars_are_escaped() {
        assert_eq!(int("%#c", i64::from(b'\n')), r"\n");
        assert_eq!(int("%#c", 7), r"\a");
        assert_eq!(int("%#c", 8), r"\b");
        assert_eq!(int("%#c", 0x0c), r"\f");
        assert_eq!(int("%#c", i64::from(b'\r')), r"\r");
        assert_eq!(int("%#c", i64::from(b'\t')), r"\t");
        assert_eq!(int("%#c", 0x0b), r"\v");
        assert_eq!(int("%#c", 1), r"\001");
        assert_eq!(int("%#c", 0), r"\000");
        assert_eq!(int("%#c", 0x7f), r"\177");
        assert_eq!(int("%#c", 0xff), r"\377");
        assert_eq!(int("%#c", i64::from(b'\'')), r"\'");
        assert_eq!(int("%#c", i64::from(b'\\')), r"\\");
        assert_eq!(int("%#c", i64::from(b'"')), "\"");
        assert_eq!(int("%#c", i64::from(b'A')), "A");
        assert_eq!(int("%#5c", i64::from(b'\n')), r"   \n");
        assert_eq!(int("%-#6c|", 1), r"\001  |");
    }

    #[test]
    fn strings() {
        assert_eq!(str("%s", "hello"), "hello");
        assert_eq!(str("%10s", "hello"), "     hello");
        assert_eq!(str("%-10s|", "hello"), "hello     |");
        assert_eq!(str("%.3s", "hello"), "hel");
        assert_eq!(str("%5.2s", "hello"), "   he");
        assert_eq!(str("%-5.2s|", "hello"), "he   |");
        assert_eq!(str("%.10s", "hi"), "hi");
        assert_eq!(str("%.0s", "hi"), "");
        assert_eq!(str("%.s", "hi"), "hi");
        assert_eq!(str("%3s", "abcdef"), "abcdef");
        assert_eq!(str("%#s", "a\n"), "a\n");
        assert_eq!(str("%+ s", "a"), "a");
    }

    #[test]
    fn zero_flag_on_a_string_writes_a_nul() {
        assert_eq!(str("%0s", "ab"), "ab\\0");
        assert_eq!(str("%05s", "ab"), "   ab\\0");
        assert_eq!(str("%-05s", "ab"), "ab   \\0");
    }

    #[test]
    fn strings_end_at_their_first_nul() {
        assert_eq!(render("[%s]", &[Value::Str(b"comm\0\0junk")]), "[comm]");
        assert_eq!(render("[%6s]", &[Value::Str(b"ab\0cd")]), "[    ab]");
        assert_eq!(render("[%s]", &[Value::Str(b"\0x")]), "[]");
        assert_eq!(render("[%.9s]", &[Value::Str(b"ab\0cd")]), "[ab]");
    }

    #[test]
    fn strings_are_written_as_bytes() {
        let mut out = Vec::new();
        let format = Format::parse("é%sé").unwrap();
        format.render(&[Value::Str(&[0xff, 0xfe])], &mut out);
        assert_eq!(out, [0xc3, 0xa9, 0xff, 0xfe, 0xc3, 0xa9]);
    }

    #[test]
    fn length_modifiers_are_ignored() {
        for m in ["hh", "h", "l", "ll", "z", "j"] {
            assert_eq!(int(&format!("%{m}d"), -70000), "-70000", "{m}");
            assert_eq!(int(&format!("%{m}x"), -1), "ffffffffffffffff", "{m}");
            assert_eq!(int(&format!("%-5{m}u|"), 3), "3    |", "{m}");
            assert_eq!(str(&format!("%{m}s"), "s"), "s", "{m}");
        }
        assert_eq!(int("%5.3lld", 7), "  007");
    }

    #[test]
    fn percent_signs() {
        assert_eq!(render("100%%", &[]), "100%");
        assert_eq!(render("%%%d%%", &[Value::Int(5)]), "%5%");
        let format = Format::parse("a%%b%%").unwrap();
        assert_eq!(format.pieces(), [Piece::Text("a%b%".to_owned())]);
        assert!(format.arg_kinds().is_empty());
    }

    #[test]
    fn missing_and_extra_arguments() {
        assert_eq!(render("[%d|%s|%5s|%x|%p|%c]", &[]), "[0||     |0|0x0|\\0]");
        assert_eq!(render("%d %d", &[Value::Int(1)]), "1 0");
        assert_eq!(render("%d", &[Value::Int(1), Value::Int(2)]), "1");
        assert_eq!(render("no directives", &[Value::Int(1)]), "no directives");
    }

    #[test]
    fn arguments_of_the_wrong_kind_count_as_missing() {
        assert_eq!(render("%d", &[Value::Str(b"12")]), "0");
        assert_eq!(render("[%s]", &[Value::Int(12)]), "[]");
        assert_eq!(
            render("%s=%d", &[Value::Int(1), Value::Int(2)]),
            "=2",
            "arguments stay in step"
        );
    }

    #[test]
    fn render_appends() {
        let mut out = b"> ".to_vec();
        let format = Format::parse("%s\n").unwrap();
        format.render(&[Value::Str(b"one")], &mut out);
        format.render(&[Value::Str(b"two")], &mut out);
        assert_eq!(out, b"> one\ntwo\n");
    }

    #[test]
    fn pieces() {
        let format = Format::parse("pid %-+ 0#12.5lld: %s\n").unwrap();
        assert_eq!(
            format.pieces(),
            [
                Piece::Text("pid ".to_owned()),
                Piece::Directive(Directive {
                    flags: Flags {
                        left: true,
                        plus: true,
                        space: true,
                        zero: true,
                        alternate: true,
                    },
                    width: Some(12),
                    precision: Some(5),
                    conversion: Conversion::Signed,
                }),
                Piece::Text(": ".to_owned()),
                Piece::Directive(Directive {
                    flags: Flags::default(),
                    width: None,
                    precision: None,
                    conversion: Conversion::Str,
                }),
                Piece::Text("\n".to_owned()),
            ]
        );
        assert_eq!(Format::parse("").unwrap().pieces(), []);
        let conversions: Vec<Conversion> = Format::parse("%d%i%u%o%x%X%s%c%p")
            .unwrap()
            .directives()
            .map(|d| d.conversion)
            .collect();
        use Conversion::*;
        assert_eq!(
            conversions,
            [
                Signed, Signed, Unsigned, Octal, HexLower, HexUpper, Str, Char, Pointer
            ]
        );
    }

    #[test]
    fn arg_kinds() {
        let format = Format::parse("%d %i %u %o %x %X %s %c %p %%").unwrap();
        use ArgKind::*;
        assert_eq!(
            format.arg_kinds(),
            [Int, Int, Int, Int, Int, Int, Str, Int, Int]
        );
        assert_eq!(Format::parse("%-5.2s").unwrap().arg_kinds(), [Str]);
    }

    #[test]
    fn concatenations() {
        use ArgKind::*;
        let format = concatenation(&[Int, Str, Int], true);
        assert_eq!(format.arg_kinds(), [Int, Str, Int]);
        let mut out = Vec::new();
        let args = [Value::Int(-1), Value::Str(b"ab\0c"), Value::Int(2)];
        format.render(&args, &mut out);
        assert_eq!(out, b"-1ab2\n");
        assert_eq!(format, Format::parse("%d%s%d\n").unwrap());
        assert_eq!(concatenation(&[Str], false), Format::parse("%s").unwrap());
        assert_eq!(concatenation(&[], true), Format::parse("\n").unwrap());
        assert_eq!(concatenation(&[], false).pieces(), []);
    }

    #[test]
    fn widths_up_to_the_limit() {
        assert_eq!(int("%8192d", 1).len(), MAX_FIELD);
        assert_eq!(str("%.8192s", "ab"), "ab");
        assert_eq!(int("%0000005d", 1), "00001");
    }

    #[test]
    fn unknown_conversions() {
        let takes = "SystemTap's printf takes d i u x X o s c p %";
        assert_eq!(
            error("%k"),
            (0, format!("unknown conversion '%k'; {takes}"))
        );
        assert_eq!(
            error("ab %-5.2k"),
            (3, format!("unknown conversion '%-5.2k'; {takes}"))
        );
        assert_eq!(
            error("%f"),
            (0, format!("unknown conversion '%f'; {takes}"))
        );
        assert_eq!(
            error("%Ld"),
            (0, format!("unknown conversion '%L'; {takes}"))
        );
        assert_eq!(error("%lld %lllx").0, 5);
        assert_eq!(
            error("%hhh"),
            (0, format!("unknown conversion '%hhh'; {takes}"))
        );
        assert_eq!(
            error("é%\n"),
            (2, format!("unknown conversion '%\\n'; {takes}"))
        );
        assert_eq!(
            error("%ü"),
            (0, format!("unknown conversion '%ü'; {takes}"))
        );
    }

    #[test]
    fn raw_byte_conversions_are_refused() {
        for c in ['b', 'm', 'M'] {
            assert_eq!(
                error(&format!("x%4{c}")),
                (
                    1,
                    format!(
                        "'%4{c}' is not supported: SystemTap's %b, %m and %M write raw bytes, \
                         which kscope probe does not; use one of d i u x X o s c p %"
                    )
                )
            );
        }
    }

    #[test]
    fn incomplete_directives() {
        assert_eq!(
            error("100%"),
            (
                3,
                "'%' at the end of the format; write '%%' for a percent sign".to_owned()
            )
        );
        assert_eq!(error("%%%").0, 2);
        assert_eq!(
            error("a %-5.2l"),
            (
                2,
                "'%-5.2l' at the end of the format lacks its conversion; \
                 SystemTap's printf takes d i u x X o s c p %"
                    .to_owned()
            )
        );
        assert_eq!(error("%5").0, 0);
        assert_eq!(error("%.").0, 0);
    }

    #[test]
    fn dynamic_width_and_precision_are_refused() {
        assert_eq!(
            error("%*d"),
            (
                0,
                "'*' width is not supported; write the number into the format".to_owned()
            )
        );
        assert_eq!(
            error("x %-.*s"),
            (
                2,
                "'*' precision is not supported; write the number into the format".to_owned()
            )
        );
    }

    #[test]
    fn percent_with_flags_is_refused() {
        assert_eq!(
            error("%5%"),
            (
                0,
                "'%5%' gives flags, a width or a precision to a percent sign; \
                 write '%%' for a percent sign"
                    .to_owned()
            )
        );
        assert_eq!(error("%-%").0, 0);
    }

    #[test]
    fn too_large_fields_are_refused() {
        assert_eq!(
            error("%8193d"),
            (0, "the width in '%8193' is larger than 8192".to_owned())
        );
        assert_eq!(
            error("ab%99999999999999999999999d"),
            (
                2,
                "the width in '%99999999999999999999999' is larger than 8192".to_owned()
            )
        );
        assert_eq!(
            error("%5.10000s"),
            (
                0,
                "the precision in '%5.10000' is larger than 8192".to_owned()
            )
        );
    }

    #[test]
    fn errors_display_their_offset() {
        let err = Format::parse("abc %k").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown conversion '%k'; SystemTap's printf takes d i u x X o s c p % \
             (byte 4 of the format)"
        );
    }
}
