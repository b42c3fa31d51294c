//! Text output helpers: colour only on a terminal and only when NO_COLOR is
//! unset (https://no-color.org convention).

use std::io::IsTerminal;

/// Whether to colour text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// ANSI colours.
    Colour,
    /// Plain text.
    Plain,
}

/// The colours used for meanings, as SGR codes.
#[derive(Debug, Clone, Copy)]
pub enum Tone {
    /// Works.
    Good,
    /// Does not exist.
    Bad,
    /// Exists but refused.
    Warn,
    /// Secondary text.
    Dim,
}

impl Style {
    /// Colour when stdout is a terminal and NO_COLOR is not set.
    pub fn detect() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if std::io::stdout().is_terminal() && !no_color {
            Style::Colour
        } else {
            Style::Plain
        }
    }

    /// `text` in `tone`, or unchanged when plain.
    pub fn paint(self, tone: Tone, text: &str) -> String {
        let code = match tone {
            Tone::Good => "32",
            Tone::Bad => "31",
            Tone::Warn => "33",
            Tone::Dim => "2",
        };
        match self {
            Style::Colour => format!("\x1b[{code}m{text}\x1b[0m"),
            Style::Plain => text.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_has_no_escape_codes() {
        assert_eq!(Style::Plain.paint(Tone::Bad, "missing"), "missing");
        assert_eq!(Style::Colour.paint(Tone::Good, "ok"), "\x1b[32mok\x1b[0m");
    }
}
