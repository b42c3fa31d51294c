//! Where things are in a script: [`Span`], a byte range that every token,
//! AST node and diagnostic carries, and [`SourceFile`], the script's name and
//! text, which turns a byte offset into the line and column a user reads.

/// A byte range `start..end` in a script's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// The span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest span that covers both `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// A probe script: the name shown in diagnostics and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The name diagnostics print, usually the path the script came from.
    pub name: String,
    /// The script itself.
    pub text: String,
}

impl SourceFile {
    /// A script named `name` with the text `text`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }

    /// The 1-based line and column (counted in characters) of byte `offset`.
    /// An offset past the end, or inside a character, is taken to be at the
    /// nearest character boundary before it.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = self.boundary(offset);
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = self.text[line_start..offset].chars().count() + 1;
        (line, col)
    }

    /// The text of the line holding byte `offset`, without its line end,
    /// and the byte offset where that line starts.
    pub fn line_at(&self, offset: usize) -> (&str, usize) {
        let offset = self.boundary(offset);
        let start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let end = self.text[offset..]
            .find('\n')
            .map_or(self.text.len(), |i| offset + i);
        let line = &self.text[start..end];
        (line.strip_suffix('\r').unwrap_or(line), start)
    }

    fn boundary(&self, offset: usize) -> usize {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_lines_and_characters() {
        let file = SourceFile::new("t.stp", "ab\nc\u{e9}d\n\nx");
        assert_eq!(file.line_col(0), (1, 1));
        assert_eq!(file.line_col(2), (1, 3));
        assert_eq!(file.line_col(3), (2, 1));
        // 'd' follows a two-byte character: byte 6, column 3.
        assert_eq!(file.line_col(6), (2, 3));
        assert_eq!(file.line_col(8), (3, 1));
        assert_eq!(file.line_col(9), (4, 1));
        assert_eq!(file.line_col(100), (4, 2));
    }

    #[test]
    fn offsets_inside_a_character_move_back_to_its_start() {
        let file = SourceFile::new("t.stp", "a\u{e9}b");
        assert_eq!(file.line_col(2), (1, 2));
    }

    #[test]
    fn line_at_returns_the_whole_line_without_its_end() {
        let file = SourceFile::new("t.stp", "one\r\ntwo\nthree");
        assert_eq!(file.line_at(1), ("one", 0));
        assert_eq!(file.line_at(6), ("two", 5));
        assert_eq!(file.line_at(12), ("three", 9));
        assert_eq!(file.line_at(14), ("three", 9));
    }

    #[test]
    fn span_to_covers_both() {
        assert_eq!(Span::new(4, 6).to(Span::new(1, 2)), Span::new(1, 6));
    }
}
