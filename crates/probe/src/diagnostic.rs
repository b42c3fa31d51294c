//! Errors in a script: [`Diagnostic`] holds where (a [`Span`]), what went
//! wrong, and what was expected there; [`Diagnostic::render`] shows it the way
//! compilers do, `file:line:col: error: ...` followed by the source line and a
//! caret line under the span.

use crate::source::{SourceFile, Span};

/// One error found in a script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Diagnostic {
    /// The bytes the error is about.
    pub span: Span,
    /// The full message, e.g. `expected ')' after the condition, found '{'`.
    pub message: String,
    /// What would have been accepted at `span`, when that is known
    /// (e.g. `')' after the condition`); the message already says it.
    pub expected: Option<String>,
    /// Other places that explain the error, such as where a variable got
    /// the type that clashes here; each is shown after the error.
    pub notes: Vec<(Span, String)>,
}

impl Diagnostic {
    /// An error at `span` whose message says what was found instead of
    /// `expected`: `expected EXPECTED, found FOUND`.
    pub fn expected(span: Span, expected: impl Into<String>, found: &str) -> Diagnostic {
        let expected = expected.into();
        Diagnostic {
            span,
            message: format!("expected {expected}, found {found}"),
            expected: Some(expected),
            notes: Vec::new(),
        }
    }

    /// An error at `span` with a message and, if any, what was expected.
    pub fn new(span: Span, message: impl Into<String>, expected: Option<String>) -> Diagnostic {
        Diagnostic {
            span,
            message: message.into(),
            expected,
            notes: Vec::new(),
        }
    }

    /// The same error with a note about another place.
    pub fn with_note(mut self, span: Span, note: impl Into<String>) -> Diagnostic {
        self.notes.push((span, note.into()));
        self
    }

    /// The error as a user reads it: `file:line:col: error: MESSAGE`, the
    /// line of `file` that holds the start of the span, and a line of carets
    /// under the span (cut at the end of that line, at least one caret).
    /// Tabs in the source line are kept in the caret line so the carets stay
    /// aligned.
    pub fn render(&self, file: &SourceFile) -> String {
        let mut out = render_one(file, self.span, "error", &self.message);
        for (span, note) in &self.notes {
            out.push_str(&render_one(file, *span, "note", note));
        }
        out
    }
}

/// One `file:line:col: LEVEL: MESSAGE` block with its source line and carets.
fn render_one(file: &SourceFile, this: Span, level: &str, message: &str) -> String {
    let (line, col) = file.line_col(this.start);
    let (text, line_start) = file.line_at(this.start);
    let start = (this.start.max(line_start) - line_start).min(text.len());
    let end = this.end.clamp(line_start + start, line_start + text.len()) - line_start;
    let pad: String = text
        .get(..start)
        .unwrap_or("")
        .chars()
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let width = text.get(start..end).map_or(0, |s| s.chars().count()).max(1);
    format!(
        "{}:{line}:{col}: {level}: {message}\n{text}\n{pad}{}\n",
        file.name,
        "^".repeat(width)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_puts_carets_under_the_span() {
        let file = SourceFile::new("a.stp", "probe begin {\n  x = (1 + 2\n}\n");
        let d = Diagnostic::expected(Span::new(27, 28), "')'", "'}'");
        assert_eq!(
            d.render(&file),
            "a.stp:3:1: error: expected ')', found '}'\n}\n^\n"
        );
        let d = Diagnostic::new(Span::new(16, 17), "bad", None);
        assert_eq!(
            d.render(&file),
            "a.stp:2:3: error: bad\n  x = (1 + 2\n  ^\n"
        );
    }

    #[test]
    fn render_keeps_tabs_and_cuts_the_span_at_the_line_end() {
        let file = SourceFile::new("t.stp", "\tfoo bar\nbaz");
        let d = Diagnostic::new(Span::new(5, 12), "long", None);
        assert_eq!(
            d.render(&file),
            "t.stp:1:6: error: long\n\tfoo bar\n\t    ^^^\n"
        );
    }

    #[test]
    fn render_at_the_end_of_the_text_shows_one_caret() {
        let file = SourceFile::new("t.stp", "probe");
        let d = Diagnostic::expected(Span::new(5, 5), "a probe point", "end of file");
        assert_eq!(
            d.render(&file),
            "t.stp:1:6: error: expected a probe point, found end of file\nprobe\n     ^\n"
        );
        assert_eq!(d.expected.as_deref(), Some("a probe point"));
        assert_eq!(d.to_string(), d.message);
    }
}
