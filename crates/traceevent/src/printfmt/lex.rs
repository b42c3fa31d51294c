//! Tokens of the `print fmt` language: the C expression subset the
//! kernel's TP_printk arguments are written in, after the preprocessor.

use super::PrintFmtError;

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token<'a> {
    /// A decimal, hex or octal integer (suffixes U, L dropped).
    Int(u64),
    /// A string literal, escapes still in it.
    Str(&'a str),
    /// A character literal's value.
    Char(u64),
    /// An identifier or keyword.
    Ident(&'a str),
    /// An operator or punctuation, longest match first.
    Punct(&'static str),
}

const PUNCTS: &[&str] = &[
    "<<=", ">>=", "->", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "++", "--", "(", ")", "{",
    "}", "[", "]", ",", "?", ":", "+", "-", "*", "/", "%", "&", "|", "^", "~", "!", "<", ">", ".",
    "=", ";",
];

/// Splits `text` into tokens, each with its byte offset.
pub fn tokenize(text: &str) -> Result<Vec<(usize, Token<'_>)>, PrintFmtError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            if i >= bytes.len() {
                return Err(PrintFmtError::new(start, "a closing '\"'"));
            }
            out.push((start, Token::Str(&text[start + 1..i])));
            i += 1;
        } else if c == b'\'' {
            let end = text[start + 1..]
                .find('\'')
                .map(|e| start + 1 + e)
                .ok_or_else(|| PrintFmtError::new(start, "a closing '''"))?;
            let inner = &text[start + 1..end];
            let value = match inner.as_bytes() {
                [b'\\', b'n'] => u64::from(b'\n'),
                [b'\\', b'0'] => 0,
                [b'\\', b't'] => u64::from(b'\t'),
                [b'\\', other] => u64::from(*other),
                [one] => u64::from(*one),
                _ => return Err(PrintFmtError::new(start, "a one-character literal")),
            };
            out.push((start, Token::Char(value)));
            i = end + 1;
        } else if c.is_ascii_digit() {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric()) {
                i += 1;
            }
            let literal = text[start..i].trim_end_matches(['u', 'U', 'l', 'L']);
            let value = if let Some(hex) = literal
                .strip_prefix("0x")
                .or_else(|| literal.strip_prefix("0X"))
            {
                u64::from_str_radix(hex, 16)
            } else if literal.len() > 1 && literal.starts_with('0') {
                u64::from_str_radix(&literal[1..], 8)
            } else {
                literal.parse()
            }
            .map_err(|_| PrintFmtError::new(start, "an integer literal"))?;
            out.push((start, Token::Int(value)));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push((start, Token::Ident(&text[start..i])));
        } else {
            let punct = PUNCTS
                .iter()
                .find(|p| text[i..].starts_with(**p))
                .ok_or_else(|| PrintFmtError::new(start, "an operator or punctuation"))?;
            out.push((start, Token::Punct(punct)));
            i += punct.len();
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_identifiers_and_operators() {
        let tokens: Vec<Token<'_>> = tokenize(r#""a\"b" 0x1fUL 017 42 'x' REC->pid >>= ? :"#)
            .unwrap()
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(
            tokens,
            [
                Token::Str(r#"a\"b"#),
                Token::Int(0x1f),
                Token::Int(0o17),
                Token::Int(42),
                Token::Char(u64::from(b'x')),
                Token::Ident("REC"),
                Token::Punct("->"),
                Token::Ident("pid"),
                Token::Punct(">>="),
                Token::Punct("?"),
                Token::Punct(":"),
            ]
        );
    }

    #[test]
    fn unterminated_and_unknown_input_is_an_error_with_its_offset() {
        assert_eq!(tokenize("\"abc").unwrap_err().offset, 0);
        assert_eq!(tokenize("1 + @").unwrap_err().offset, 4);
        assert!(tokenize("0xZZ").is_err());
        assert!(tokenize("'ab'").is_err());
    }
}
