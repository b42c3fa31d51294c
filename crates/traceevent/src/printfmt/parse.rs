//! The `print fmt` line parsed once into a format string and argument
//! expressions: `"pid=%d comm=%s", REC->pid, REC->comm`.

use super::lex::{Token, tokenize};
use super::{PrintFmtError, PrintFmtProblem};
use crate::ctype::CType;

/// How deeply a print fmt's expressions may nest: each parenthesis, cast,
/// unary operator, `?:`, call, brace, and each step of a chain of binary
/// operators, indexes or members is one level. The deepest print fmts of
/// 6.18 nest between 17 and 24 levels (long `|` chains of flags); a
/// file's print fmt may be hostile, and the parser, the evaluator and the
/// expression tree's drop all recurse. 128 levels fit a test thread's 2 MiB
/// stack in a debug build.
pub const MAX_DEPTH: usize = 128;

/// A C expression of a print fmt argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr<'a> {
    /// An integer or character literal.
    Int(u64),
    /// A string literal (adjacent literals joined), escapes resolved.
    Str(String),
    /// `REC->field`.
    Field(&'a str),
    /// A bare identifier (an enum constant the preprocessor left).
    Name(&'a str),
    /// `-x`, `!x`, `~x`, `*x`, `&x`, `+x`.
    Unary(&'static str, Box<Expr<'a>>),
    /// `a OP b`.
    Binary(&'static str, Box<Expr<'a>>, Box<Expr<'a>>),
    /// `c ? a : b`.
    Ternary(Box<Expr<'a>>, Box<Expr<'a>>, Box<Expr<'a>>),
    /// `(type) x`, the type's words joined by spaces (`unsigned long *`).
    Cast(CType, Box<Expr<'a>>),
    /// `sizeof(type)`.
    SizeOf(String),
    /// `name(args)`: the kernel's helpers (`__print_flags`, `__get_str`).
    Call(&'a str, Vec<Expr<'a>>),
    /// `{ a, b }`: an entry of a flags or symbols table.
    Braces(Vec<Expr<'a>>),
    /// `a[i]`.
    Index(Box<Expr<'a>>, Box<Expr<'a>>),
    /// `a.m` or `a->m` on something that is not REC.
    Member(Box<Expr<'a>>, &'a str),
    /// A GNU statement expression `({ int x = a; ...; x < b ? x : b; })`,
    /// as min() and max() expand to; its value is its last statement's.
    Block(Vec<Statement<'a>>),
}

/// A statement of a statement expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement<'a> {
    /// `TYPE name [= init]` (arrays too: `char *names[] = { ... }`).
    Let(&'a str, Option<Expr<'a>>),
    /// `target = value`.
    Assign(Expr<'a>, Expr<'a>),
    /// An expression.
    Expr(Expr<'a>),
}

/// A parsed print fmt: the format text and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintFmt<'a> {
    /// The format string with escapes resolved.
    pub format: String,
    /// One expression per argument.
    pub args: Vec<Expr<'a>>,
}

impl<'a> PrintFmt<'a> {
    /// Parses the text after `print fmt: `.
    pub fn parse(text: &'a str) -> Result<PrintFmt<'a>, PrintFmtError> {
        let tokens = tokenize(text)?;
        let mut parser = Parser {
            tokens,
            pos: 0,
            end: text.len(),
            depth: 0,
        };
        let format = match parser.expr()? {
            Expr::Str(s) => s,
            _ => return Err(PrintFmtError::new(0, "a quoted format string first")),
        };
        let mut args = Vec::new();
        while parser.eat(",") {
            args.push(parser.expr()?);
        }
        if parser.pos < parser.tokens.len() {
            return Err(PrintFmtError::new(
                parser.offset(),
                "',' or the end of the arguments",
            ));
        }
        Ok(PrintFmt { format, args })
    }
}

struct Parser<'a> {
    tokens: Vec<(usize, Token<'a>)>,
    pos: usize,
    end: usize,
    /// Levels of nesting entered and not yet left (see [`MAX_DEPTH`]).
    depth: usize,
}

/// Binary operators by precedence, lowest first.
const LEVELS: &[&[&str]] = &[
    &["||"],
    &["&&"],
    &["|"],
    &["^"],
    &["&"],
    &["==", "!="],
    &["<", "<=", ">", ">="],
    &["<<", ">>"],
    &["+", "-"],
    &["*", "/", "%"],
];

/// Words that start a type in a cast or sizeof.
fn is_type_word(word: &str) -> bool {
    matches!(
        word,
        "unsigned"
            | "signed"
            | "int"
            | "long"
            | "short"
            | "char"
            | "void"
            | "bool"
            | "_Bool"
            | "const"
            | "volatile"
            | "struct"
            | "union"
            | "enum"
            | "float"
            | "double"
            | "u8"
            | "u16"
            | "u32"
            | "u64"
            | "s8"
            | "s16"
            | "s32"
            | "s64"
            | "uint"
            | "ulong"
            | "ushort"
            | "uchar"
    ) || word.ends_with("_t")
        || word.starts_with("__u")
        || word.starts_with("__s")
        || word.starts_with("__le")
        || word.starts_with("__be")
}

impl<'a> Parser<'a> {
    fn offset(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(o, _)| *o)
    }

    fn peek(&self) -> Option<&Token<'a>> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Token<'a>> {
        self.tokens.get(self.pos + ahead).map(|(_, t)| t)
    }

    fn eat(&mut self, punct: &str) -> bool {
        if matches!(self.peek(), Some(Token::Punct(p)) if *p == punct) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, punct: &'static str, expected: &'static str) -> Result<(), PrintFmtError> {
        if self.eat(punct) {
            Ok(())
        } else {
            Err(PrintFmtError::new(self.offset(), expected))
        }
    }

    /// One level deeper, or the error when that passes [`MAX_DEPTH`]; the
    /// caller leaves it by restoring `depth`.
    fn enter(&mut self) -> Result<(), PrintFmtError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(PrintFmtError {
                offset: self.offset(),
                problem: PrintFmtProblem::TooDeep,
            });
        }
        Ok(())
    }

    /// `parse` one level deeper.
    fn nested<T>(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<T, PrintFmtError>,
    ) -> Result<T, PrintFmtError> {
        self.enter()?;
        let parsed = parse(self);
        self.depth -= 1;
        parsed
    }

    fn expr(&mut self) -> Result<Expr<'a>, PrintFmtError> {
        self.nested(Self::ternary)
    }

    fn ternary(&mut self) -> Result<Expr<'a>, PrintFmtError> {
        let condition = self.binary(0)?;
        if !self.eat("?") {
            return Ok(condition);
        }
        let then = self.expr()?;
        self.expect(":", "':' of a '?:'")?;
        let otherwise = self.expr()?;
        Ok(Expr::Ternary(
            Box::new(condition),
            Box::new(then),
            Box::new(otherwise),
        ))
    }

    /// Binary operators of `min_level` or higher, by precedence climbing
    /// (one frame per operand, not per level, for the stack's sake).
    fn binary(&mut self, min_level: usize) -> Result<Expr<'a>, PrintFmtError> {
        let depth = self.depth;
        let mut left = self.unary()?;
        loop {
            let found = match self.peek() {
                Some(Token::Punct(p)) => LEVELS
                    .iter()
                    .enumerate()
                    .skip(min_level)
                    .find_map(|(level, ops)| ops.iter().find(|o| **o == *p).map(|o| (level, *o))),
                _ => None,
            };
            let Some((level, op)) = found else {
                self.depth = depth;
                return Ok(left);
            };
            // Each operator of a chain puts the left side one level down.
            self.enter()?;
            self.pos += 1;
            let right = self.binary(level + 1)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
    }

    /// The type words of a cast or sizeof, when the tokens from here up to
    /// a ')' are one.
    fn type_name(&self) -> Option<(String, usize)> {
        let mut words = Vec::new();
        let mut i = 0;
        loop {
            match self.peek_at(i)? {
                Token::Ident(w) => words.push(*w),
                Token::Punct("*") => words.push("*"),
                Token::Punct(")") => break,
                _ => return None,
            }
            i += 1;
        }
        let first = words.first()?;
        is_type_word(first).then(|| (words.join(" "), i))
    }

    fn unary(&mut self) -> Result<Expr<'a>, PrintFmtError> {
        if let Some(Token::Punct(p)) = self.peek() {
            let p = *p;
            if matches!(p, "-" | "!" | "~" | "*" | "&" | "+") {
                self.pos += 1;
                let operand = self.nested(Self::unary)?;
                return Ok(Expr::Unary(p, Box::new(operand)));
            }
            if p == "(" {
                self.pos += 1;
                if let Some((type_name, len)) = self.type_name() {
                    self.pos += len + 1;
                    let operand = self.nested(Self::unary)?;
                    return Ok(Expr::Cast(CType::new(type_name), Box::new(operand)));
                }
                self.pos -= 1;
            }
        }
        if self.peek() == Some(&Token::Ident("sizeof")) {
            self.pos += 1;
            self.expect("(", "'(' after sizeof")?;
            let (type_name, len) = self
                .type_name()
                .ok_or_else(|| PrintFmtError::new(self.offset(), "a type in sizeof()"))?;
            self.pos += len + 1;
            return Ok(Expr::SizeOf(type_name));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr<'a>, PrintFmtError> {
        let depth = self.depth;
        let mut expr = self.primary()?;
        loop {
            if matches!(self.peek(), Some(Token::Punct("[" | "->" | "." | "("))) {
                // Each step of a chain puts what it follows one level down.
                self.enter()?;
            }
            if self.eat("[") {
                let index = self.expr()?;
                self.expect("]", "']'")?;
                expr = Expr::Index(Box::new(expr), Box::new(index));
            } else if self.eat("->") || self.eat(".") {
                let Some(Token::Ident(member)) = self.peek().cloned() else {
                    return Err(PrintFmtError::new(self.offset(), "a member name"));
                };
                self.pos += 1;
                expr = match expr {
                    Expr::Name("REC") => Expr::Field(member),
                    other => Expr::Member(Box::new(other), member),
                };
            } else if self.eat("(") {
                let Expr::Name(name) = expr else {
                    return Err(PrintFmtError::new(
                        self.offset(),
                        "a function name before '('",
                    ));
                };
                let mut args = Vec::new();
                if !self.eat(")") {
                    loop {
                        args.push(self.expr()?);
                        if self.eat(")") {
                            break;
                        }
                        self.expect(",", "',' or ')' in a call")?;
                    }
                }
                expr = Expr::Call(name, args);
            } else {
                self.depth = depth;
                return Ok(expr);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr<'a>, PrintFmtError> {
        let offset = self.offset();
        let Some(token) = self.peek().cloned() else {
            return Err(PrintFmtError::new(offset, "an expression"));
        };
        self.pos += 1;
        match token {
            Token::Int(v) | Token::Char(v) => Ok(Expr::Int(v)),
            Token::Str(s) => {
                let mut text = unescape(s);
                while let Some(Token::Str(more)) = self.peek().cloned() {
                    self.pos += 1;
                    text.push_str(&unescape(more));
                }
                Ok(Expr::Str(text))
            }
            Token::Ident(name) => Ok(Expr::Name(name)),
            Token::Punct("(") if self.eat("{") => {
                let mut statements = Vec::new();
                while !self.eat("}") {
                    statements.push(self.statement()?);
                    if !self.eat(";") && !matches!(self.peek(), Some(Token::Punct("}"))) {
                        return Err(PrintFmtError::new(
                            self.offset(),
                            "';' or '}' in a statement expression",
                        ));
                    }
                }
                self.expect(")", "')' after a statement expression")?;
                Ok(Expr::Block(statements))
            }
            Token::Punct("(") => {
                let inner = self.expr()?;
                self.expect(")", "')'")?;
                Ok(inner)
            }
            Token::Punct("{") => {
                let mut items = Vec::new();
                if !self.eat("}") {
                    loop {
                        items.push(self.expr()?);
                        if self.eat("}") {
                            break;
                        }
                        self.expect(",", "',' or '}' in a table entry")?;
                    }
                }
                Ok(Expr::Braces(items))
            }
            Token::Punct(_) => Err(PrintFmtError::new(offset, "an expression")),
        }
    }
}

impl<'a> Parser<'a> {
    /// A declaration, an assignment or an expression.
    fn statement(&mut self) -> Result<Statement<'a>, PrintFmtError> {
        let declares = match self.peek() {
            Some(Token::Ident(word)) => {
                is_type_word(word) || matches!(*word, "static" | "union" | "struct" | "enum")
            }
            _ => false,
        };
        if declares {
            // Type words and stars, up to the name: the identifier that an
            // '=', ';', '[' or '}' follows.
            loop {
                match (self.peek().cloned(), self.peek_at(1)) {
                    (Some(Token::Ident(name)), Some(Token::Punct("=" | ";" | "[" | "}"))) => {
                        self.pos += 1;
                        if self.eat("[") {
                            while !self.eat("]") {
                                if self.peek().is_none() {
                                    return Err(PrintFmtError::new(self.offset(), "']'"));
                                }
                                self.pos += 1;
                            }
                        }
                        let init = if self.eat("=") {
                            Some(self.expr()?)
                        } else {
                            None
                        };
                        return Ok(Statement::Let(name, init));
                    }
                    (Some(Token::Ident(_)) | Some(Token::Punct("*")), _) => self.pos += 1,
                    _ => return Err(PrintFmtError::new(self.offset(), "a declaration")),
                }
            }
        }
        let target = self.expr()?;
        if self.eat("=") {
            return Ok(Statement::Assign(target, self.expr()?));
        }
        Ok(Statement::Expr(target))
    }
}

/// Resolves C escapes in a string literal (or a printk_formats line).
pub(crate) fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_arguments_are_split() {
        let p = PrintFmt::parse(r#""pid=%d comm=%s\n", REC->pid, REC->comm"#).unwrap();
        assert_eq!(p.format, "pid=%d comm=%s\n");
        assert_eq!(p.args, [Expr::Field("pid"), Expr::Field("comm")]);
    }

    #[test]
    fn precedence_ternary_casts_and_calls() {
        let p = PrintFmt::parse(
            r#""%s %lu", REC->a & 1 ? __print_flags(REC->a, "|", { 1, "X" }) : "R", (unsigned long)REC->b + 2 * 3"#,
        )
        .unwrap();
        let Expr::Ternary(cond, then, _) = &p.args[0] else {
            panic!("{:?}", p.args[0]);
        };
        assert!(matches!(**cond, Expr::Binary("&", _, _)));
        let Expr::Call("__print_flags", args) = &**then else {
            panic!("{then:?}");
        };
        assert_eq!(
            args[2],
            Expr::Braces(vec![Expr::Int(1), Expr::Str("X".into())])
        );
        let Expr::Binary("+", left, right) = &p.args[1] else {
            panic!("{:?}", p.args[1]);
        };
        assert_eq!(
            **left,
            Expr::Cast(
                CType::new("unsigned long".into()),
                Box::new(Expr::Field("b"))
            )
        );
        assert!(matches!(**right, Expr::Binary("*", _, _)));
    }

    #[test]
    fn parenthesised_fields_are_not_casts_and_sizeof_takes_a_type() {
        let p = PrintFmt::parse(r#""%d %d", (REC->x), sizeof(struct foo *)"#).unwrap();
        assert_eq!(p.args[0], Expr::Field("x"));
        assert_eq!(p.args[1], Expr::SizeOf("struct foo *".into()));
    }

    #[test]
    fn statement_expressions_parse_as_min_expands() {
        let p = PrintFmt::parse(
            r#""%d", ({ int __x = (REC->a); int __y = (128); ((__x) < (__y) ? (__x) : (__y)); })"#,
        )
        .unwrap();
        let Expr::Block(statements) = &p.args[0] else {
            panic!("{:?}", p.args[0]);
        };
        assert_eq!(statements.len(), 3);
        assert_eq!(statements[0], Statement::Let("__x", Some(Expr::Field("a"))));
        assert!(matches!(statements[2], Statement::Expr(Expr::Ternary(..))));
        let q = PrintFmt::parse(
            r#""%s", ({ const char *s = f(p); static const char *n[] = { "a", "b" }; union u r; r.w = REC->x; s; })"#,
        )
        .unwrap();
        let Expr::Block(statements) = &q.args[0] else {
            panic!();
        };
        assert_eq!(statements.len(), 5);
        assert!(matches!(statements[3], Statement::Assign(..)));
    }

    #[test]
    fn adjacent_strings_join_and_escapes_resolve() {
        let p = PrintFmt::parse(r#""a" "b\t" "\"c\"""#).unwrap();
        assert_eq!(p.format, "ab\t\"c\"");
    }

    #[test]
    fn malformed_input_is_an_error_never_a_panic() {
        for text in [
            "",
            "42",
            "\"x\" REC",
            "\"x\", (",
            "\"x\", REC->",
            "\"x\", f(1,",
            "\"x\", { 1, ",
            "\"x\", a ? b",
            "\"x\", sizeof(1)",
        ] {
            assert!(PrintFmt::parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_never_a_stack_overflow() {
        let deep = 100_000;
        let opened = format!("\"%d\", {}", "(".repeat(deep));
        let negated = format!("\"%d\", {}1", "- ".repeat(deep));
        let cast = format!("\"%d\", {}1", "(int)".repeat(deep));
        let ternary = format!("\"%d\", {}1", "1 ? ".repeat(deep));
        let called = format!("\"%d\", {}", "f(".repeat(deep));
        let braced = format!("\"%d\", {}", "{ ".repeat(deep));
        let summed = format!("\"%d\", 1{}", " + 1".repeat(deep));
        let indexed = format!("\"%d\", a{}", "[0]".repeat(deep));
        let members = format!("\"%d\", a{}", ".b".repeat(deep));
        for text in [
            &opened, &negated, &cast, &ternary, &called, &braced, &summed, &indexed, &members,
        ] {
            let err = PrintFmt::parse(text).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "print fmt, byte {}: expression nested deeper than {MAX_DEPTH}",
                    err.offset
                ),
                "{}",
                &text[..20]
            );
            assert!(err.offset > 5 && err.offset < text.len(), "{}", err.offset);
        }
        let fits = format!(
            "\"%d\", {}1{}",
            "(".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        );
        assert_eq!(PrintFmt::parse(&fits).unwrap().args, [Expr::Int(1)]);
    }
}
