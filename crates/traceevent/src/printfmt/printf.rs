//! printf as the kernel's vsnprintf does it, for the conversions trace
//! events use: integers with their length modifiers (the value is cut to
//! the modifier's width, as the kernel's va_arg would), strings, chars,
//! and the `%p` extensions (symbols, IP and MAC addresses, UUIDs, hex
//! buffers, bitmaps). Differences from C's printf follow the kernel: `%#x`
//! of 0 prints `0x0`.

use std::fmt::Write;

/// One piece of a format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text printed as is (`%%` already turned into `%`).
    Text(String),
    /// A conversion.
    Spec(Spec),
}

/// A `%` conversion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spec {
    /// `-`
    pub left: bool,
    /// `+`
    pub plus: bool,
    /// ` `
    pub space: bool,
    /// `#`
    pub alternate: bool,
    /// `0`
    pub zero: bool,
    /// The width, `Some(None)` for `*` (taken from an argument).
    pub width: Option<Option<usize>>,
    /// The precision, `Some(None)` for `.*`.
    pub precision: Option<Option<usize>>,
    /// `hh`, `h`, `l`, `ll`, `z`, `L`, `j`, `t` or empty.
    pub length: &'static str,
    /// The conversion letter.
    pub conversion: char,
    /// For `%p`: the letters after it (`S`, `I4`, `ISpc`, `M`, ...).
    pub pointer_ext: String,
}

/// Splits a format string into text and conversions. The kernel skips
/// every letter and digit after `%p` as the pointer's extension.
pub fn pieces(format: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            text.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            text.push('%');
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.left = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '#' => spec.alternate = true,
                '0' => spec.zero = true,
                _ => break,
            }
            chars.next();
        }
        spec.width = number_or_star(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.precision = Some(number_or_star(&mut chars).unwrap_or(Some(0)));
        }
        spec.length = length(&mut chars);
        let Some(conversion) = chars.next() else {
            text.push('%');
            break;
        };
        spec.conversion = conversion;
        if conversion == 'p' {
            while let Some(&e) = chars.peek() {
                if !e.is_ascii_alphanumeric() {
                    break;
                }
                spec.pointer_ext.push(e);
                chars.next();
            }
        }
        if !text.is_empty() {
            out.push(Piece::Text(std::mem::take(&mut text)));
        }
        out.push(Piece::Spec(spec));
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    out
}

fn number_or_star(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<Option<usize>> {
    if chars.peek() == Some(&'*') {
        chars.next();
        return Some(None);
    }
    let mut digits = String::new();
    while let Some(&d) = chars.peek() {
        if !d.is_ascii_digit() {
            break;
        }
        digits.push(d);
        chars.next();
    }
    digits.parse().ok().map(Some)
}

fn length(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> &'static str {
    let first = match chars.peek() {
        Some(&c @ ('h' | 'l' | 'z' | 'L' | 'j' | 't' | 'Z' | 'q')) => c,
        _ => return "",
    };
    chars.next();
    match (first, chars.peek()) {
        ('h', Some('h')) => {
            chars.next();
            "hh"
        }
        ('l', Some('l')) => {
            chars.next();
            "ll"
        }
        ('h', _) => "h",
        ('l', _) => "l",
        ('z' | 'Z', _) => "z",
        ('L' | 'q', _) => "ll",
        ('j', _) => "j",
        _ => "t",
    }
}

impl Spec {
    /// Cuts an integer to the width its length modifier names, as va_arg
    /// with that type would read it; returns (magnitude bits, negative).
    pub fn cut(&self, bits: u64, signed_conversion: bool) -> (u64, bool) {
        let width = match self.length {
            "hh" => 8,
            "h" => 16,
            "" => 32,
            _ => 64,
        };
        let masked = if width == 64 {
            bits
        } else {
            bits & ((1u64 << width) - 1)
        };
        if !signed_conversion {
            return (masked, false);
        }
        let shift = 64 - width;
        let value = ((masked << shift) as i64) >> shift;
        (value.unsigned_abs(), value < 0)
    }

    /// Prints an integer conversion (`d i u x X o c`).
    pub fn integer(&self, out: &mut String, bits: u64) {
        let conversion = self.conversion;
        if conversion == 'c' {
            let byte = (bits & 0xff) as u8;
            self.pad(out, &char::from(byte).to_string(), "");
            return;
        }
        let signed = matches!(conversion, 'd' | 'i');
        let (magnitude, negative) = self.cut(bits, signed);
        // Digits go to a stack buffer: no allocation per number.
        let mut buffer = [0u8; 24];
        let mut digits = Digits::new(&mut buffer, magnitude, conversion);
        let mut zeros = 0;
        if let Some(Some(precision)) = self.precision {
            zeros = precision.saturating_sub(digits.len());
            if precision == 0 && magnitude == 0 {
                digits.clear();
            }
        }
        let prefix = if negative {
            "-"
        } else if signed && self.plus {
            "+"
        } else if signed && self.space {
            " "
        } else if self.alternate && conversion == 'x' {
            "0x"
        } else if self.alternate && conversion == 'X' {
            "0X"
        } else if self.alternate && conversion == 'o' && zeros == 0 && !digits.starts_with_zero() {
            "0"
        } else {
            ""
        };
        self.pad_parts(
            out,
            prefix,
            zeros,
            || digits.len(),
            |out| digits.append(out),
        );
    }

    /// Prints text under the width, precision and `-` of this conversion.
    pub fn string(&self, out: &mut String, text: &str) {
        let text = match self.precision {
            Some(Some(p)) => text.char_indices().nth(p).map_or(text, |(i, _)| &text[..i]),
            _ => text,
        };
        let spec = Spec {
            zero: false,
            ..self.clone()
        };
        spec.pad(out, text, "");
    }

    /// Writes `prefix` and `body` padded to the width.
    fn pad(&self, out: &mut String, body: &str, prefix: &str) {
        self.pad_parts(
            out,
            prefix,
            0,
            || body.chars().count(),
            |out| out.push_str(body),
        );
    }

    /// Writes `prefix`, `zeros` zeros and the body (`body_len`
    /// characters, written by `body`), padded to the width with spaces (or
    /// zeros, for the `0` flag without a precision).
    fn pad_parts(
        &self,
        out: &mut String,
        prefix: &str,
        zeros: usize,
        body_len: impl FnOnce() -> usize,
        body: impl FnOnce(&mut String),
    ) {
        let width = self.width.flatten().unwrap_or(0);
        // Without a width (the common case) nothing needs the length.
        let fill = match width {
            0 => 0,
            _ => width.saturating_sub(body_len() + prefix.len() + zeros),
        };
        let zero = self.zero && !self.left && !matches!(self.precision, Some(Some(_)));
        if self.left {
            out.push_str(prefix);
            repeat(out, ZEROS, zeros);
            body(out);
            repeat(out, SPACES, fill);
        } else if zero {
            out.push_str(prefix);
            repeat(out, ZEROS, fill + zeros);
            body(out);
        } else {
            repeat(out, SPACES, fill);
            out.push_str(prefix);
            repeat(out, ZEROS, zeros);
            body(out);
        }
    }
}

/// Runs of one ASCII character, appended a slice at a time by [`repeat`].
const SPACES: &str = "                                ";
const ZEROS: &str = "00000000000000000000000000000000";

/// Appends `count` characters of `run` (one ASCII character repeated).
fn repeat(out: &mut String, run: &str, count: usize) {
    let mut left = count;
    while left > 0 {
        let n = left.min(run.len());
        out.push_str(&run[..n]);
        left -= n;
    }
}

/// The digits of an integer in a caller's stack buffer.
struct Digits<'b> {
    buffer: &'b [u8],
    start: usize,
}

impl<'b> Digits<'b> {
    /// Writes `value` in the base of `conversion` (x, X, o or decimal) at
    /// the end of `buffer` (24 bytes hold any u64 in octal).
    fn new(buffer: &'b mut [u8; 24], mut value: u64, conversion: char) -> Digits<'b> {
        let (shift, letters): (u32, &[u8; 16]) = match conversion {
            'x' => (4, b"0123456789abcdef"),
            'X' => (4, b"0123456789ABCDEF"),
            'o' => (3, b"0123456789abcdef"),
            _ => (0, b"0123456789abcdef"),
        };
        let mut start = buffer.len();
        // Each base is a constant to its loop (a shift, or a division the
        // compiler turns into a multiplication): this runs for every
        // number of every record.
        if shift == 0 {
            loop {
                start -= 1;
                buffer[start] = letters[(value % 10) as usize];
                value /= 10;
                if value == 0 {
                    break;
                }
            }
        } else {
            let mask = (1u64 << shift) - 1;
            loop {
                start -= 1;
                buffer[start] = letters[(value & mask) as usize];
                value >>= shift;
                if value == 0 {
                    break;
                }
            }
        }
        Digits { buffer, start }
    }

    fn len(&self) -> usize {
        self.buffer.len() - self.start
    }

    fn clear(&mut self) {
        self.start = self.buffer.len();
    }

    fn starts_with_zero(&self) -> bool {
        self.buffer.get(self.start) == Some(&b'0')
    }

    /// Appends the digits: ASCII bytes, each one char (no UTF-8
    /// validation of the buffer, which every number would pay).
    fn append(&self, out: &mut String) {
        out.extend(self.buffer[self.start..].iter().map(|&b| char::from(b)));
    }
}

/// `%pI4`: dotted quad; `%pi4`: each byte as three digits.
pub fn ipv4(out: &mut String, bytes: &[u8], leading_zeros: bool) {
    let parts: Vec<String> = bytes
        .iter()
        .take(4)
        .map(|b| {
            if leading_zeros {
                format!("{b:03}")
            } else {
                b.to_string()
            }
        })
        .collect();
    out.push_str(&parts.join("."));
}

/// `%pI6`: eight groups of four hex digits; `%pI6c`: compressed as RFC
/// 5952 says (the longest run of two or more zero groups becomes `::`,
/// and an IPv4-mapped address ends in a dotted quad); `%pi6`: no colons.
pub fn ipv6(out: &mut String, bytes: &[u8], ext: &str) {
    let mut groups = [0u16; 8];
    for (i, g) in groups.iter_mut().enumerate() {
        let hi = bytes.get(2 * i).copied().unwrap_or(0);
        let lo = bytes.get(2 * i + 1).copied().unwrap_or(0);
        *g = u16::from_be_bytes([hi, lo]);
    }
    if ext.starts_with('i') {
        for g in groups {
            let _ = write!(out, "{g:04x}");
        }
        return;
    }
    if !ext.contains('c') {
        let parts: Vec<String> = groups.iter().map(|g| format!("{g:04x}")).collect();
        out.push_str(&parts.join(":"));
        return;
    }
    let mapped = groups[..5].iter().all(|g| *g == 0) && groups[5] == 0xffff;
    let (best_start, best_len) = longest_zero_run(&groups);
    let shown = if mapped { 6 } else { 8 };
    let mut i = 0;
    while i < shown {
        if best_len >= 2 && i == best_start {
            out.push_str("::");
            i += best_len;
            continue;
        }
        if i > 0 && !out.ends_with(':') {
            out.push(':');
        }
        let _ = write!(out, "{:x}", groups[i]);
        i += 1;
    }
    if mapped {
        if !out.ends_with(':') {
            out.push(':');
        }
        ipv4(out, &bytes[12..16.min(bytes.len())], false);
    }
}

fn longest_zero_run(groups: &[u16; 8]) -> (usize, usize) {
    let (mut best, mut best_len, mut start, mut len) = (0, 0, 0, 0);
    for (i, g) in groups.iter().enumerate() {
        if *g == 0 {
            if len == 0 {
                start = i;
            }
            len += 1;
            if len > best_len {
                best = start;
                best_len = len;
            }
        } else {
            len = 0;
        }
    }
    (best, best_len)
}

/// `%pM` (colons), `%pMF` (dashes), `%pMR` (reversed), `%pm` (none).
pub fn mac(out: &mut String, bytes: &[u8], ext: &str) {
    let mut octets: Vec<u8> = bytes.iter().take(6).copied().collect();
    if ext.contains('R') {
        octets.reverse();
    }
    let separator = if ext.starts_with('m') {
        ""
    } else if ext.contains('F') {
        "-"
    } else {
        ":"
    };
    let parts: Vec<String> = octets.iter().map(|b| format!("{b:02x}")).collect();
    out.push_str(&parts.join(separator));
}

/// `%pU` with `b` (default), `B`, `l` or `L`.
pub fn uuid(out: &mut String, bytes: &[u8], ext: &str) {
    let mut b = [0u8; 16];
    for (i, x) in bytes.iter().take(16).enumerate() {
        b[i] = *x;
    }
    let order: [usize; 16] = if ext.contains('l') || ext.contains('L') {
        [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15]
    } else {
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    };
    let upper = ext.contains('B') || ext.contains('L');
    for (i, &index) in order.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        if upper {
            let _ = write!(out, "{:02X}", b[index]);
        } else {
            let _ = write!(out, "{:02x}", b[index]);
        }
    }
}

/// `%*ph` and friends: bytes in hex, separated by `' '` (default), `C`
/// (colon), `D` (dash) or `N` (nothing).
pub fn hex_bytes(out: &mut String, bytes: &[u8], ext: &str) {
    let separator = match ext.chars().nth(1) {
        Some('C') => ":",
        Some('D') => "-",
        Some('N') => "",
        _ => " ",
    };
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    out.push_str(&parts.join(separator));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(format: &str) -> Spec {
        match pieces(format).into_iter().next() {
            Some(Piece::Spec(spec)) => spec,
            other => panic!("{other:?}"),
        }
    }

    fn int(format: &str, bits: u64) -> String {
        let mut out = String::new();
        spec(format).integer(&mut out, bits);
        out
    }

    #[test]
    fn text_and_conversions_are_split() {
        let p = pieces("a=%d %% b=%-08.3lx%pS:%ps end");
        assert_eq!(p.len(), 8, "{p:?}");
        assert_eq!(p[0], Piece::Text("a=".into()));
        assert_eq!(p[2], Piece::Text(" % b=".into()));
        let Piece::Spec(s) = &p[3] else { panic!() };
        assert!(s.left && s.zero);
        assert_eq!(
            (s.width, s.precision, s.length, s.conversion),
            (Some(Some(8)), Some(Some(3)), "l", 'x')
        );
        let Piece::Spec(s) = &p[4] else { panic!() };
        assert_eq!(s.pointer_ext, "S");
    }

    #[test]
    fn the_pointer_extension_swallows_letters_and_digits() {
        assert_eq!(spec("%pISpc").pointer_ext, "ISpc");
        assert_eq!(spec("%pI6c").pointer_ext, "I6c");
        assert_eq!(spec("%*pbl").width, Some(None));
    }

    #[test]
    fn integers_are_cut_to_their_length_modifier() {
        assert_eq!(int("%d", u64::MAX), "-1");
        assert_eq!(int("%u", u64::MAX), "4294967295");
        assert_eq!(int("%ld", u64::MAX), "-1");
        assert_eq!(int("%lu", u64::MAX), "18446744073709551615");
        assert_eq!(int("%hhu", 0x1ff), "255");
        assert_eq!(int("%hd", 0x8000), "-32768");
        assert_eq!(int("%x", 0x1_0000_00ff), "ff");
        assert_eq!(int("%llx", 0x1_0000_00ff), "1000000ff");
    }

    #[test]
    fn flags_width_and_precision() {
        assert_eq!(int("%08lx", 0xbeef), "0000beef");
        assert_eq!(int("%-6d|", 42), "42    ");
        assert_eq!(int("%+d", 5), "+5");
        assert_eq!(int("% d", 5), " 5");
        assert_eq!(int("%#x", 0), "0x0");
        assert_eq!(int("%#llx", 255), "0xff");
        assert_eq!(int("%#o", 8), "010");
        assert_eq!(int("%.5d", 42), "00042");
        assert_eq!(int("%8.5d", 42), "   00042");
        assert_eq!(int("%c", 65), "A");
        let mut out = String::new();
        spec("%-5.2s").string(&mut out, "hello");
        assert_eq!(out, "he   ");
    }

    #[test]
    fn addresses_print_as_the_kernel_prints_them() {
        let mut out = String::new();
        ipv4(&mut out, &[192, 168, 0, 1], false);
        assert_eq!(out, "192.168.0.1");
        let mut out = String::new();
        ipv6(
            &mut out,
            &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            "I6c",
        );
        assert_eq!(out, "2001:db8::1");
        let mut out = String::new();
        ipv6(&mut out, &[0; 16], "I6c");
        assert_eq!(out, "::");
        let mut out = String::new();
        ipv6(
            &mut out,
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1],
            "I6c",
        );
        assert_eq!(out, "::ffff:10.0.0.1");
        let mut out = String::new();
        ipv6(
            &mut out,
            &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            "I6",
        );
        assert_eq!(out, "2001:0db8:0000:0000:0000:0000:0000:0001");
        let mut out = String::new();
        mac(&mut out, &[0, 0x11, 0x22, 0x33, 0x44, 0x55], "M");
        assert_eq!(out, "00:11:22:33:44:55");
        let mut out = String::new();
        uuid(&mut out, &(0..16).collect::<Vec<u8>>(), "U");
        assert_eq!(out, "00010203-0405-0607-0809-0a0b0c0d0e0f");
        let mut out = String::new();
        uuid(&mut out, &(0..16).collect::<Vec<u8>>(), "Ul");
        assert_eq!(out, "03020100-0504-0706-0809-0a0b0c0d0e0f");
        let mut out = String::new();
        hex_bytes(&mut out, &[1, 0xab], "h");
        assert_eq!(out, "01 ab");
    }

    #[test]
    fn a_lone_percent_at_the_end_is_text() {
        assert_eq!(pieces("50%"), [Piece::Text("50%".into())]);
    }
}
