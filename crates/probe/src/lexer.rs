//! The lexer: turns a script's text into [`Token`]s one at a time, skipping
//! white space and the three comment forms (`# ...`, `// ...`, `/* ... */`).
//! It decodes integer literals (decimal, `0x` hex, `0` octal) and string
//! literals with C escapes, and reports unterminated strings and comments,
//! bad characters and bad numbers as [`Diagnostic`]s at their position.

use std::fmt;

use crate::diagnostic::Diagnostic;
use crate::source::Span;

/// A reserved word of the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// `probe`
    Probe,
    /// `global`
    Global,
    /// `function`
    Function,
    /// `if`
    If,
    /// `else`
    Else,
    /// `while`
    While,
    /// `for`
    For,
    /// `next`
    Next,
    /// `return`
    Return,
    /// `break`
    Break,
    /// `continue`
    Continue,
    /// `delete`
    Delete,
    /// `foreach`
    Foreach,
    /// `in`
    In,
    /// `limit`
    Limit,
}

const KEYWORDS: [(&str, Keyword); 15] = [
    ("probe", Keyword::Probe),
    ("global", Keyword::Global),
    ("function", Keyword::Function),
    ("if", Keyword::If),
    ("else", Keyword::Else),
    ("while", Keyword::While),
    ("for", Keyword::For),
    ("next", Keyword::Next),
    ("return", Keyword::Return),
    ("break", Keyword::Break),
    ("continue", Keyword::Continue),
    ("delete", Keyword::Delete),
    ("foreach", Keyword::Foreach),
    ("in", Keyword::In),
    ("limit", Keyword::Limit),
];

impl Keyword {
    /// The word as written in a script.
    pub fn text(self) -> &'static str {
        KEYWORDS
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("", |(text, _)| text)
    }
}

/// The `@` operators: statistics, histograms and `@entry`. Nothing else
/// may start with `@`, so no script can name the arrays kscope makes for
/// `@entry`.
const AT_OPERATORS: &[&str] = &[
    "@count",
    "@sum",
    "@min",
    "@max",
    "@avg",
    "@variance",
    "@hist_log",
    "@hist_linear",
    "@entry",
];

/// Operators and punctuation, longest first so that the lexer can take the
/// first one that matches.
const PUNCTS: &[&str] = &[
    "<<<", "<<=", ">>=", "++", "--", "->", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "+=",
    "-=", "*=", "/=", "%=", "&=", "^=", "|=", ".=", "+", "-", "*", "/", "%", "<", ">", "=", "!",
    "~", "&", "^", "|", ".", "?", ":", ";", ",", "(", ")", "{", "}", "[", "]",
];

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// An identifier such as `execname` or `count`, or an `@` operator
    /// such as `@count` (kept with its `@`).
    Ident(String),
    /// A reserved word.
    Keyword(Keyword),
    /// A target variable, `$name`; the name is kept without the `$`.
    Target(String),
    /// An integer literal, as the 64-bit value it denotes (hex and octal
    /// literals up to `0xffffffffffffffff` wrap to negative values, as in
    /// SystemTap).
    Int(i64),
    /// A string literal with its escapes decoded.
    Str(String),
    /// An operator or punctuation, as written (`"<<="`, `"{"`).
    Punct(&'static str),
    /// The end of the script.
    Eof,
}

impl fmt::Display for TokenKind {
    /// The token as a diagnostic names what it found.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenKind::Ident(name) => write!(f, "identifier '{name}'"),
            TokenKind::Keyword(k) => write!(f, "'{}'", k.text()),
            TokenKind::Target(name) => write!(f, "'${name}'"),
            TokenKind::Int(value) => write!(f, "number {value}"),
            TokenKind::Str(_) => f.write_str("a string"),
            TokenKind::Punct(p) => write!(f, "'{p}'"),
            TokenKind::Eof => f.write_str("end of file"),
        }
    }
}

/// A script argument given as a number: decimal, `0x` hex or `0` octal,
/// with an optional `-`; up to 2^64 - 1 (wrapping, as the same literal in
/// a script does), or -2^63 with the sign.
fn parse_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (digits, radix) = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (hex, 16)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (&digits[1..], 8)
    } else {
        (digits, 10)
    };
    // from_str_radix takes a sign of its own; a script argument has one
    // at most, before the digits.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let value = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        return 0i64.checked_sub_unsigned(value);
    }
    Some(value as i64)
}

/// One token and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What the token is.
    pub kind: TokenKind,
    /// Its bytes in the script.
    pub span: Span,
}

/// A cursor over a script's text that hands out tokens on demand, so that
/// the first error reported is the first one in the text.
#[derive(Debug)]
pub struct Lexer<'a> {
    text: &'a str,
    /// The script's arguments, which `$N` (as a number) and `@N` (as a
    /// string) stand for.
    args: &'a [String],
    pos: usize,
    /// End of the last token handed out: where the end-of-file token sits,
    /// so that "found end of file" points just after the last real token.
    last_end: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `text`.
    pub fn new(text: &'a str) -> Lexer<'a> {
        Lexer::with_args(text, &[])
    }

    /// A lexer at the start of `text`, whose `$1`, `@1`... stand for
    /// `args`.
    pub fn with_args(text: &'a str, args: &'a [String]) -> Lexer<'a> {
        Lexer {
            text,
            args,
            pos: 0,
            last_end: 0,
        }
    }

    /// The next token, [`TokenKind::Eof`] (again and again) at the end.
    pub fn next_token(&mut self) -> Result<Token, Diagnostic> {
        self.skip_blanks_and_comments()?;
        let start = self.pos;
        let Some(c) = self.peek_char() else {
            let at = self.last_end;
            return Ok(Token {
                kind: TokenKind::Eof,
                span: Span::new(at, at),
            });
        };
        let kind = if c.is_ascii_alphabetic() || c == '_' {
            let word = self.take_word();
            KEYWORDS.iter().find(|(text, _)| *text == word).map_or_else(
                || TokenKind::Ident(word.to_string()),
                |(_, k)| TokenKind::Keyword(*k),
            )
        } else if c.is_ascii_digit() {
            TokenKind::Int(self.number()?)
        } else if c == '"' {
            TokenKind::Str(self.string()?)
        } else if (c == '$' || c == '@')
            && self.text[self.pos + 1..].starts_with(|c: char| c.is_ascii_digit())
        {
            self.script_arg(c)?
        } else if c == '@'
            && self.text[self.pos + 1..].starts_with(|c: char| c.is_ascii_alphabetic())
        {
            self.pos += 1;
            let word = format!("@{}", self.take_word());
            if !AT_OPERATORS.contains(&word.as_str()) {
                return Err(Diagnostic::new(
                    Span::new(start, self.pos),
                    format!(
                        "unknown operator '{word}'; kscope knows {}",
                        AT_OPERATORS.join(" ")
                    ),
                    None,
                ));
            }
            TokenKind::Ident(word)
        } else if c == '$' {
            self.pos += 1;
            if !self
                .peek_char()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            {
                return Err(Diagnostic::expected(
                    Span::new(start, start + 1),
                    "a target variable name after '$'",
                    &self.describe_here(),
                ));
            }
            TokenKind::Target(self.take_word().to_string())
        } else if let Some(p) = PUNCTS
            .iter()
            .find(|p| self.text[self.pos..].starts_with(**p))
        {
            self.pos += p.len();
            TokenKind::Punct(p)
        } else {
            return Err(Diagnostic::new(
                Span::new(start, start + c.len_utf8()),
                format!("unexpected character {c:?}"),
                None,
            ));
        };
        self.last_end = self.pos;
        Ok(Token {
            kind,
            span: Span::new(start, self.pos),
        })
    }

    /// `$N` or `@N`: script argument N as a number or as a string, as
    /// SystemTap substitutes them.
    fn script_arg(&mut self, sigil: char) -> Result<TokenKind, Diagnostic> {
        let start = self.pos;
        self.pos += 1;
        let digits = self.take_word();
        let span = Span::new(start, self.pos);
        let written = &self.text[start..self.pos];
        let index: usize = digits.parse().map_err(|_| {
            Diagnostic::new(span, format!("'{written}' is not a script argument"), None)
        })?;
        let Some(arg) = index.checked_sub(1).and_then(|i| self.args.get(i)) else {
            let given = match self.args.len() {
                0 => "none was given".to_string(),
                1 => "only 1 was given".to_string(),
                n => format!("only {n} were given"),
            };
            return Err(Diagnostic::new(
                span,
                format!(
                    "'{written}' is script argument {index}, but {given} (arguments follow the script: kscope probe script.stp ARG...)"
                ),
                None,
            ));
        };
        if sigil == '@' {
            return Ok(TokenKind::Str(arg.clone()));
        }
        parse_int(arg.trim()).map(TokenKind::Int).ok_or_else(|| {
            Diagnostic::new(
                span,
                format!(
                    "'{written}' is '{arg}', which is not a number; '@{index}' gives it as a string"
                ),
                None,
            )
        })
    }

    fn peek_char(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn describe_here(&self) -> String {
        match self.peek_char() {
            Some(c) if !c.is_whitespace() => format!("{c:?}"),
            Some(_) => "white space".to_string(),
            None => "end of file".to_string(),
        }
    }

    fn take_word(&mut self) -> &'a str {
        let text = self.text;
        let rest = &text[self.pos..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn skip_blanks_and_comments(&mut self) -> Result<(), Diagnostic> {
        loop {
            let rest = &self.text[self.pos..];
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with('#') || trimmed.starts_with("//") {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else if let Some(body) = trimmed.strip_prefix("/*") {
                let Some(end) = body.find("*/") else {
                    return Err(Diagnostic::new(
                        Span::new(self.pos, self.pos + 2),
                        "unterminated comment: expected '*/' before the end of the file",
                        Some("'*/'".to_string()),
                    ));
                };
                self.pos += 2 + end + 2;
            } else {
                return Ok(());
            }
        }
    }

    /// A decimal, hex (`0x`) or octal (leading `0`) integer. A letter or
    /// digit right after it that does not belong to it is an error, so that
    /// `12ab` or `09` is not read as two tokens.
    fn number(&mut self) -> Result<i64, Diagnostic> {
        let start = self.pos;
        let rest = &self.text[self.pos..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let word = &rest[..len];
        self.pos += len;
        let span = Span::new(start, self.pos);
        let (digits, radix, what) =
            if let Some(hex) = word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
                (hex, 16, "hexadecimal digits after '0x'")
            } else if word.len() > 1 && word.starts_with('0') {
                (&word[1..], 8, "octal digits (0-7) after a leading '0'")
            } else {
                (word, 10, "decimal digits")
            };
        let bad = || {
            Diagnostic::new(
                span,
                format!("bad number '{word}': expected {what}"),
                Some(what.to_string()),
            )
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return Err(bad());
        }
        let value = u64::from_str_radix(digits, radix).map_err(|_| {
            Diagnostic::new(
                span,
                format!("number '{word}' does not fit in 64 bits"),
                Some("a number below 2^64".to_string()),
            )
        })?;
        // Literals above i64::MAX wrap, as SystemTap's 64-bit longs do.
        Ok(value as i64)
    }

    /// A string literal; `self.pos` is at its opening quote.
    fn string(&mut self) -> Result<String, Diagnostic> {
        let start = self.pos;
        self.pos += 1;
        let mut value = String::new();
        let unterminated = |pos: usize| {
            Diagnostic::new(
                Span::new(start, pos),
                "unterminated string: expected '\"' before the end of the line",
                Some("'\"'".to_string()),
            )
        };
        loop {
            let Some(c) = self.peek_char() else {
                return Err(unterminated(self.pos));
            };
            match c {
                '"' => {
                    self.pos += 1;
                    return Ok(value);
                }
                '\n' => return Err(unterminated(self.pos)),
                '\\' => value.push(self.escape()?),
                c => {
                    self.pos += c.len_utf8();
                    value.push(c);
                }
            }
        }
    }

    /// One C escape; `self.pos` is at its backslash.
    fn escape(&mut self) -> Result<char, Diagnostic> {
        let start = self.pos;
        self.pos += 1;
        let Some(c) = self.peek_char().filter(|c| *c != '\n') else {
            return Err(Diagnostic::new(
                Span::new(start, self.pos),
                "unterminated string: expected '\"' before the end of the line",
                Some("'\"'".to_string()),
            ));
        };
        self.pos += c.len_utf8();
        let simple = match c {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'v' => Some('\x0b'),
            '\\' | '"' | '\'' | '?' => Some(c),
            _ => None,
        };
        if let Some(c) = simple {
            return Ok(c);
        }
        let (radix, max_digits, digits_start) = match c {
            '0'..='7' => (8, 3, self.pos - 1),
            'x' => (16, 2, self.pos),
            _ => {
                return Err(Diagnostic::new(
                    Span::new(start, self.pos),
                    format!(
                        "unknown escape '\\{c}': expected one of \\n \\t \\r \\a \\b \\f \\v \\\\ \\\" \\' \\? \\NNN \\xHH"
                    ),
                    Some("a C escape".to_string()),
                ));
            }
        };
        let rest = &self.text[digits_start..];
        let len = rest
            .char_indices()
            .take(max_digits)
            .take_while(|(_, c)| c.is_digit(radix))
            .count();
        self.pos = digits_start + len;
        let span = Span::new(start, self.pos);
        let value = u8::from_str_radix(&rest[..len], radix)
            .ok()
            .filter(|v| v.is_ascii());
        value.map(char::from).ok_or_else(|| {
            Diagnostic::new(
                span,
                format!(
                    "bad escape '{}': expected a character code from 0 to 127",
                    &self.text[start..self.pos]
                ),
                Some("a character code from 0 to 127".to_string()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        let mut lexer = Lexer::new(text);
        let mut out = Vec::new();
        loop {
            let token = lexer.next_token().unwrap();
            if token.kind == TokenKind::Eof {
                return out;
            }
            out.push(token.kind);
        }
    }

    #[test]
    fn script_arguments_stand_for_numbers_and_strings() {
        let args = ["42".to_string(), "eth0".to_string(), "-0x10".to_string()];
        let mut lexer = Lexer::with_args("$1 @2 $3 @1 @count <<< s", &args);
        let mut seen = Vec::new();
        loop {
            let token = lexer.next_token().unwrap();
            if token.kind == TokenKind::Eof {
                break;
            }
            seen.push(token.kind);
        }
        assert_eq!(
            seen,
            [
                TokenKind::Int(42),
                TokenKind::Str("eth0".into()),
                TokenKind::Int(-16),
                TokenKind::Str("42".into()),
                TokenKind::Ident("@count".into()),
                TokenKind::Punct("<<<"),
                TokenKind::Ident("s".into()),
            ]
        );
        let err = Lexer::with_args("$2", &args[1..2])
            .next_token()
            .unwrap_err();
        assert!(err.message.contains("only 1 was given"), "{}", err.message);
        let err = Lexer::with_args("$1", &args[1..2])
            .next_token()
            .unwrap_err();
        assert_eq!(
            err.message,
            "'$1' is 'eth0', which is not a number; '@1' gives it as a string"
        );
    }

    fn error(text: &str) -> Diagnostic {
        let mut lexer = Lexer::new(text);
        loop {
            match lexer.next_token() {
                Err(d) => return d,
                Ok(t) if t.kind == TokenKind::Eof => panic!("no error in {text:?}"),
                Ok(_) => {}
            }
        }
    }

    #[test]
    fn words_keywords_and_target_variables() {
        assert_eq!(
            kinds("probe foo_1 $prev_comm if"),
            vec![
                TokenKind::Keyword(Keyword::Probe),
                TokenKind::Ident("foo_1".into()),
                TokenKind::Target("prev_comm".into()),
                TokenKind::Keyword(Keyword::If),
            ]
        );
        assert_eq!(Keyword::Continue.text(), "continue");
    }

    #[test]
    fn integers_in_every_radix() {
        assert_eq!(
            kinds("0 42 0x1F 0X10 017 0xffffffffffffffff"),
            vec![
                TokenKind::Int(0),
                TokenKind::Int(42),
                TokenKind::Int(31),
                TokenKind::Int(16),
                TokenKind::Int(15),
                TokenKind::Int(-1),
            ]
        );
    }

    #[test]
    fn strings_decode_c_escapes() {
        assert_eq!(
            kinds(r#""a\n\t\"b\\" "\101\x42\0" "\?\'\a\b\f\v\r""#),
            vec![
                TokenKind::Str("a\n\t\"b\\".into()),
                TokenKind::Str("AB\0".into()),
                TokenKind::Str("?'\x07\x08\x0c\x0b\r".into()),
            ]
        );
    }

    #[test]
    fn operators_take_the_longest_match() {
        let ops: Vec<_> = kinds("<<= << <= < ->-- - .= . ++ +")
            .into_iter()
            .map(|k| match k {
                TokenKind::Punct(p) => p,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            ops,
            [
                "<<=", "<<", "<=", "<", "->", "--", "-", ".=", ".", "++", "+"
            ]
        );
    }

    #[test]
    fn comments_of_every_form_are_skipped() {
        assert_eq!(
            kinds("# hash\na // slash\n/* block\n * more */ b/**/c #end"),
            vec![
                TokenKind::Ident("a".into()),
                TokenKind::Ident("b".into()),
                TokenKind::Ident("c".into()),
            ]
        );
    }

    #[test]
    fn a_backslash_at_the_end_of_a_line_does_not_continue_the_string() {
        let d = error("\"ab\\\ncd\"");
        assert_eq!(d.span, Span::new(3, 4));
        assert_eq!(d.expected.as_deref(), Some("'\"'"));
    }

    #[test]
    fn eof_sits_after_the_last_token() {
        let mut lexer = Lexer::new("ab  \n# c\n");
        lexer.next_token().unwrap();
        let eof = lexer.next_token().unwrap();
        assert_eq!(
            eof,
            Token {
                kind: TokenKind::Eof,
                span: Span::new(2, 2)
            }
        );
        assert_eq!(lexer.next_token().unwrap().kind, TokenKind::Eof);
    }

    #[test]
    fn malformed_input_is_an_error_at_its_position() {
        let cases: &[(&str, Span, &str)] = &[
            (
                "a \"abc",
                Span::new(2, 6),
                "unterminated string: expected '\"' before the end of the line",
            ),
            (
                "\"ab\ncd\"",
                Span::new(0, 3),
                "unterminated string: expected '\"' before the end of the line",
            ),
            (
                "\"ab\\",
                Span::new(3, 4),
                "unterminated string: expected '\"' before the end of the line",
            ),
            (
                "x /* never",
                Span::new(2, 4),
                "unterminated comment: expected '*/' before the end of the file",
            ),
            ("a @ b", Span::new(2, 3), "unexpected character '@'"),
            ("a \u{e9}", Span::new(2, 4), "unexpected character '\u{e9}'"),
            (
                "0x",
                Span::new(0, 2),
                "bad number '0x': expected hexadecimal digits after '0x'",
            ),
            (
                "09",
                Span::new(0, 2),
                "bad number '09': expected octal digits (0-7) after a leading '0'",
            ),
            (
                "12ab",
                Span::new(0, 4),
                "bad number '12ab': expected decimal digits",
            ),
            (
                "99999999999999999999",
                Span::new(0, 20),
                "number '99999999999999999999' does not fit in 64 bits",
            ),
            (
                "$ x",
                Span::new(0, 1),
                "expected a target variable name after '$', found white space",
            ),
            (
                "$",
                Span::new(0, 1),
                "expected a target variable name after '$', found end of file",
            ),
            (
                "$1",
                Span::new(0, 2),
                "'$1' is script argument 1, but none was given (arguments follow the script: kscope probe script.stp ARG...)",
            ),
            (
                "\"\\q\"",
                Span::new(1, 3),
                "unknown escape '\\q': expected one of \\n \\t \\r \\a \\b \\f \\v \\\\ \\\" \\' \\? \\NNN \\xHH",
            ),
            (
                "\"\\xzz\"",
                Span::new(1, 3),
                "bad escape '\\x': expected a character code from 0 to 127",
            ),
            (
                "\"\\377\"",
                Span::new(1, 5),
                "bad escape '\\377': expected a character code from 0 to 127",
            ),
        ];
        for (text, span, message) in cases {
            let d = error(text);
            assert_eq!((d.span, d.message.as_str()), (*span, *message), "{text:?}");
        }
    }
}
