//! The event filters of `-F`: comparisons of a record's fields with
//! numbers or strings, joined by `&&` and `||`, with `!` and
//! parentheses — the part of the kernel's (and trace-cmd's) filter
//! language that reports use (`trace-cmd report -F`). A filter is
//! parsed for one event, whose fields it may name (and `COMM`, the task's
//! name), and evaluated on that event's records.
//!
//! ```
//! use kscope_traceevent::EventFormat;
//! use kscope_traceevent::filter::Filter;
//! let format = EventFormat::parse("name: demo\nID: 7\nformat:\n\
//! \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
//! \tfield:int prio;\toffset:8;\tsize:4;\tsigned:1;\n\
//! \nprint fmt: \"prio=%d\", REC->prio\n")?;
//! let filter = Filter::parse("prio > 100 && COMM ~ \"kwork*\"", &format)?;
//! let mut record = vec![7, 0, 0, 0, 42, 0, 0, 0];
//! record.extend_from_slice(&120i32.to_le_bytes());
//! assert!(filter.matches(&format, &record, "kworker/0:1"));
//! assert!(!filter.matches(&format, &record, "bash"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::EventFormat;
use crate::common::common_pid;
use crate::printfmt::{FieldValue, field_values};

/// Why a filter did not parse; the text says where when it can.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(String);

macro_rules! bail {
    ($($arg:tt)*) => {
        return Err(FilterError(format!($($arg)*)))
    };
}

/// How deeply a filter may nest: each parenthesis and `!`, and each
/// `&&` or `||` of a chain, is one level (parser, evaluation and drop
/// all recurse).
pub const MAX_DEPTH: usize = 128;

/// A parsed filter.
#[derive(Debug)]
pub struct Filter(Node);

#[derive(Debug)]
enum Node {
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Compare { field: String, op: Op, value: Value },
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Glob,
    And,
}

#[derive(Debug)]
enum Value {
    Number(i128),
    Text(String),
    /// The pattern of a `~`, compiled once; `None` for one that is not a
    /// glob, which matches nothing.
    Glob(Option<glob::Pattern>),
}

impl Filter {
    /// Parses `text` for `format`, whose fields it may name.
    pub fn parse(text: &str, format: &EventFormat<'_>) -> Result<Filter, FilterError> {
        let tokens = tokenize(text)?;
        let mut parser = Parser {
            tokens,
            at: 0,
            end: text.len(),
            depth: 0,
            format,
        };
        let node = parser.or()?;
        if let Some((_, token)) = parser.tokens.get(parser.at) {
            bail!("unexpected {token:?} in the filter");
        }
        Ok(Filter(node))
    }

    /// Whether `record`, of the event the filter was parsed for, passes;
    /// `comm` is its task's name (what `COMM` compares).
    pub fn matches(&self, format: &EventFormat<'_>, record: &[u8], comm: &str) -> bool {
        let mut values = field_values(format, record);
        let pid = common_pid(record);
        values.push(("common_pid", FieldValue::Signed(i64::from(pid))));
        values.push(("COMM", FieldValue::Text(comm.to_string())));
        eval(&self.0, &values)
    }
}

fn eval(node: &Node, values: &[(&str, FieldValue)]) -> bool {
    match node {
        Node::And(a, b) => eval(a, values) && eval(b, values),
        Node::Or(a, b) => eval(a, values) || eval(b, values),
        Node::Not(a) => !eval(a, values),
        Node::Compare { field, op, value } => {
            let Some((_, have)) = values.iter().find(|(n, _)| *n == field) else {
                return false;
            };
            let number = match have {
                FieldValue::Signed(n) => Some(i128::from(*n)),
                FieldValue::Unsigned(n) => Some(i128::from(*n)),
                _ => None,
            };
            match (number, have, value) {
                (Some(n), _, Value::Number(v)) => match op {
                    Op::Eq => n == *v,
                    Op::Ne => n != *v,
                    Op::Lt => n < *v,
                    Op::Le => n <= *v,
                    Op::Gt => n > *v,
                    Op::Ge => n >= *v,
                    Op::And => n & *v != 0,
                    Op::Glob => false,
                },
                (_, FieldValue::Text(t), Value::Glob(pattern)) => {
                    pattern.as_ref().is_some_and(|p| p.matches(t))
                }
                (_, FieldValue::Text(t), Value::Text(v)) => match op {
                    Op::Eq => t == v,
                    Op::Ne => t != v,
                    Op::Glob => false,
                    Op::Lt => t.as_str() < v.as_str(),
                    Op::Le => t.as_str() <= v.as_str(),
                    Op::Gt => t.as_str() > v.as_str(),
                    Op::Ge => t.as_str() >= v.as_str(),
                    Op::And => false,
                },
                _ => false,
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Op(&'static str),
}

/// The tokens of `text`, each with its byte offset.
fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, FilterError> {
    const OPS: [&str; 13] = [
        "&&", "||", "==", "!=", "<=", ">=", "~", "<", ">", "!", "(", ")", "&",
    ];
    let mut tokens = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let offset = text.len() - rest.len();
        if let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) {
            tokens.push((offset, Token::Op(op)));
            rest = &rest[op.len()..];
        } else if let Some(body) = rest.strip_prefix('"') {
            let Some(end) = body.find('"') else {
                bail!("a string in the filter has no closing quote");
            };
            tokens.push((offset, Token::Str(body[..end].to_string())));
            rest = &body[end + 1..];
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || "&|=!<>~()\"".contains(c))
                .unwrap_or(rest.len());
            if end == 0 {
                bail!("unexpected {:?} in the filter", &rest[..1]);
            }
            tokens.push((offset, Token::Word(rest[..end].to_string())));
            rest = &rest[end..];
        }
        rest = rest.trim_start();
    }
    Ok(tokens)
}

struct Parser<'t, 'f> {
    tokens: Vec<(usize, Token)>,
    at: usize,
    /// The text's length: the offset of its end.
    end: usize,
    /// Levels of nesting entered and not yet left (see [`MAX_DEPTH`]).
    depth: usize,
    format: &'t EventFormat<'f>,
}

impl Parser<'_, '_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(_, token)| token)
    }

    /// One level deeper, or the error when that passes [`MAX_DEPTH`];
    /// the caller leaves it by restoring `depth`.
    fn enter(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let offset = self.tokens.get(self.at).map_or(self.end, |(o, _)| *o);
            bail!("filter, byte {offset}: expression nested deeper than {MAX_DEPTH}");
        }
        Ok(())
    }

    fn eat(&mut self, op: &'static str) -> bool {
        let found = self.peek() == Some(&Token::Op(op));
        if found {
            self.at += 1;
        }
        found
    }

    fn or(&mut self) -> Result<Node, FilterError> {
        let depth = self.depth;
        let mut node = self.and()?;
        while self.eat("||") {
            // Each operator of a chain puts the left side one level down.
            self.enter()?;
            node = Node::Or(Box::new(node), Box::new(self.and()?));
        }
        self.depth = depth;
        Ok(node)
    }

    fn and(&mut self) -> Result<Node, FilterError> {
        let depth = self.depth;
        let mut node = self.unary()?;
        while self.eat("&&") {
            self.enter()?;
            node = Node::And(Box::new(node), Box::new(self.unary()?));
        }
        self.depth = depth;
        Ok(node)
    }

    fn unary(&mut self) -> Result<Node, FilterError> {
        let depth = self.depth;
        if self.eat("!") {
            self.enter()?;
            let node = Node::Not(Box::new(self.unary()?));
            self.depth = depth;
            return Ok(node);
        }
        if self.eat("(") {
            self.enter()?;
            let node = self.or()?;
            if !self.eat(")") {
                bail!("a '(' in the filter is not closed");
            }
            self.depth = depth;
            return Ok(node);
        }
        let Some(Token::Word(field)) = self.peek().cloned() else {
            bail!("expected a field name in the filter");
        };
        self.at += 1;
        if self.format.field(&field).is_none() && field != "COMM" {
            let names: Vec<&str> = self.format.fields.iter().map(|f| f.name).collect();
            bail!(
                "{} has no field {field:?} (it has {})",
                self.format.name,
                names.join(", ")
            );
        }
        let op = match self.peek() {
            Some(Token::Op("==")) => Op::Eq,
            Some(Token::Op("!=")) => Op::Ne,
            Some(Token::Op("<")) => Op::Lt,
            Some(Token::Op("<=")) => Op::Le,
            Some(Token::Op(">")) => Op::Gt,
            Some(Token::Op(">=")) => Op::Ge,
            Some(Token::Op("~")) => Op::Glob,
            Some(Token::Op("&")) => Op::And,
            _ => bail!("expected a comparison after {field:?} in the filter"),
        };
        self.at += 1;
        let value = match self.peek().cloned() {
            Some(Token::Str(s)) => Value::Text(s),
            Some(Token::Word(w)) => match parse_number(&w) {
                Some(n) => Value::Number(n),
                None => Value::Text(w),
            },
            _ => bail!("expected a value after the comparison on {field:?}"),
        };
        let value = match (op, value) {
            (Op::Glob, Value::Text(text)) => Value::Glob(glob::Pattern::new(&text).ok()),
            (_, value) => value,
        };
        self.at += 1;
        Ok(Node::Compare { field, op, value })
    }
}

fn parse_number(word: &str) -> Option<i128> {
    let (negative, digits) = match word.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, word),
    };
    let value = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => i128::from_str_radix(hex, 16).ok()?,
        None => digits.parse::<i128>().ok()?,
    };
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_an_error_never_a_stack_overflow() {
        let text = [
            "name: demo\nID: 7\nformat:",
            "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;",
            "\tfield:int prio;\toffset:8;\tsize:4;\tsigned:1;",
            "\nprint fmt: \"prio=%d\", REC->prio\n",
        ]
        .join("\n");
        let format = EventFormat::parse(&text).unwrap();
        let deep = 100_000;
        let opened = "(".repeat(deep);
        let negated = format!("{}prio == 1", "!".repeat(deep));
        let joined = format!("prio == 1{}", " && prio == 1".repeat(deep));
        let either = format!("prio == 1{}", " || prio == 1".repeat(deep));
        for text in [&opened, &negated, &joined, &either] {
            let err = Filter::parse(text, &format).expect_err("an error");
            let message = err.to_string();
            let offset: usize = message
                .strip_prefix("filter, byte ")
                .and_then(|rest| rest.split(':').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{message}"));
            assert_eq!(
                message,
                format!("filter, byte {offset}: expression nested deeper than {MAX_DEPTH}")
            );
            assert!(offset > 0 && offset < text.len(), "{offset}");
        }
        let fits = format!(
            "{}prio == 1{}",
            "(".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        );
        assert!(Filter::parse(&fits, &format).is_ok());
    }

    fn demo() -> String {
        [
            "name: demo\nID: 7\nformat:",
            "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;",
            "\tfield:int prio;\toffset:8;\tsize:4;\tsigned:1;",
            "\tfield:char comm[16];\toffset:12;\tsize:16;\tsigned:0;",
            "\nprint fmt: \"prio=%d\", REC->prio\n",
        ]
        .join("\n")
    }

    fn record(pid: i32, prio: i32, comm: &str) -> Vec<u8> {
        let mut data = vec![7, 0, 0, 0];
        data.extend_from_slice(&pid.to_le_bytes());
        data.extend_from_slice(&prio.to_le_bytes());
        let mut name = [0u8; 16];
        name[..comm.len()].copy_from_slice(comm.as_bytes());
        data.extend_from_slice(&name);
        data
    }

    #[test]
    fn comparisons_of_numbers_strings_globs_and_the_task_name() {
        let text = demo();
        let format = EventFormat::parse(&text).unwrap();
        let passes = |filter: &str, record: &[u8], comm: &str| {
            Filter::parse(filter, &format)
                .unwrap()
                .matches(&format, record, comm)
        };
        let bash = record(42, 120, "bash");
        assert!(passes("prio == 120", &bash, "x"));
        assert!(passes("prio >= 0x78 && prio < 121", &bash, "x"));
        assert!(!passes("prio != 120 || prio > 200", &bash, "x"));
        assert!(passes("!(prio < 100)", &bash, "x"));
        assert!(passes("prio & 8", &bash, "x"));
        assert!(!passes("prio & 1", &bash, "x"));
        assert!(passes("comm == \"bash\" && common_pid == 42", &bash, "x"));
        assert!(passes("comm ~ \"ba*\"", &bash, "x"));
        assert!(passes("COMM == sh", &bash, "sh"));
        assert!(!passes("COMM == sh", &bash, "bash"));
        assert!(passes("prio == -3", &record(1, -3, "a"), "a"));
        // A number compared with text, or text with a number, is false.
        assert!(!passes("comm == 5", &bash, "x"));
        assert!(!passes("prio == \"120\"", &bash, "x"));
    }

    #[test]
    fn malformed_filters_say_what_is_wrong() {
        let text = demo();
        let format = EventFormat::parse(&text).unwrap();
        let error = |filter: &str| {
            Filter::parse(filter, &format)
                .expect_err(filter)
                .to_string()
        };
        assert_eq!(
            error("prio == \"x"),
            "a string in the filter has no closing quote"
        );
        assert_eq!(error("(prio == 1"), "a '(' in the filter is not closed");
        assert_eq!(error("== 1"), "expected a field name in the filter");
        assert_eq!(
            error("prio 1"),
            "expected a comparison after \"prio\" in the filter"
        );
        assert_eq!(
            error("prio =="),
            "expected a value after the comparison on \"prio\""
        );
        assert_eq!(error("prio == 1 )"), "unexpected Op(\")\") in the filter");
        assert_eq!(
            error("pri == 1"),
            "demo has no field \"pri\" (it has prio, comm)"
        );
    }
}
