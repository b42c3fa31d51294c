//! `/proc/sys/kernel/core_pattern` (see core(5)): where the kernel sends a
//! crashing process's core: a file name template, a pipe to a program, or
//! (kernels 6.17+) a socket.

/// What a core_pattern asks the kernel to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorePattern {
    /// Write a file named by the template (`%p`, `%e`, ... expanded);
    /// relative templates land in the crashing process's working directory.
    File {
        /// The template as written.
        template: String,
        /// The `%` specifiers it uses, in order (`'p'`, `'e'`, ...).
        specifiers: Vec<char>,
    },
    /// Pipe the core to a program's standard input (`|/path args`).
    Pipe {
        /// The program.
        program: String,
        /// Its arguments, still with their `%` specifiers.
        args: Vec<String>,
    },
    /// Send the core to a unix socket (`@/path`; `@@/path` for the
    /// protocol where the receiver asks for the core).
    Socket {
        /// The socket's path.
        path: String,
        /// True for the `@@` form.
        requests: bool,
    },
}

/// The kernel keeps at most this many bytes of a pattern (CORENAME_MAX_SIZE
/// 128, with the terminating NUL).
pub const MAX_PATTERN_BYTES: usize = 127;

impl CorePattern {
    /// Parses the text of core_pattern (a trailing newline is ignored).
    pub fn parse(text: &str) -> CorePattern {
        let text = text.trim_end_matches('\n');
        if let Some(command) = text.strip_prefix('|') {
            let mut words = command.split_whitespace().map(str::to_string);
            return CorePattern::Pipe {
                program: words.next().unwrap_or_default(),
                args: words.collect(),
            };
        }
        if let Some(rest) = text.strip_prefix('@') {
            let (path, requests) = match rest.strip_prefix('@') {
                Some(path) => (path, true),
                None => (rest, false),
            };
            return CorePattern::Socket {
                path: path.to_string(),
                requests,
            };
        }
        let mut specifiers = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '%'
                && let Some(s) = chars.next()
            {
                specifiers.push(s);
            }
        }
        CorePattern::File {
            template: text.to_string(),
            specifiers,
        }
    }

    /// True when the kernel hands the core to another program (pipe or
    /// socket), which receives it whatever RLIMIT_CORE is (except 1).
    pub fn is_handed_over(&self) -> bool {
        !matches!(self, CorePattern::File { .. })
    }

    /// One sentence saying where cores go.
    pub fn describe(&self) -> String {
        match self {
            CorePattern::File {
                template,
                specifiers,
            } => {
                let place = if template.starts_with('/') {
                    "at that path"
                } else {
                    "in the crashing process's working directory"
                };
                let pid_note = if specifiers.contains(&'p') || specifiers.contains(&'P') {
                    ""
                } else {
                    " (no %p: each core overwrites the last unless core_uses_pid is 1)"
                };
                format!("cores are written as files named {template:?} {place}{pid_note}")
            }
            CorePattern::Pipe { program, .. } => {
                format!("cores are piped to {program}")
            }
            CorePattern::Socket { path, requests } => format!(
                "cores are sent to the unix socket {path}{}",
                if *requests { " (request protocol)" } else { "" }
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_pattern_is_a_relative_file() {
        let pattern = CorePattern::parse("core\n");
        assert_eq!(
            pattern,
            CorePattern::File {
                template: "core".into(),
                specifiers: vec![]
            }
        );
        assert!(!pattern.is_handed_over());
        assert!(pattern.describe().contains("working directory"));
        assert!(pattern.describe().contains("no %p"));
    }

    #[test]
    fn file_specifiers_are_listed_in_order() {
        let pattern = CorePattern::parse("/var/crash/core.%e.%p.%t");
        let CorePattern::File { specifiers, .. } = &pattern else {
            panic!("{pattern:?}");
        };
        assert_eq!(specifiers, &['e', 'p', 't']);
        assert!(pattern.describe().contains("at that path"));
    }

    #[test]
    fn a_pipe_names_its_program_and_arguments() {
        let pattern = CorePattern::parse(
            "|/usr/lib/systemd/systemd-coredump %P %u %g %s %t 9223372036854775808 %h\n",
        );
        let CorePattern::Pipe { program, args } = &pattern else {
            panic!("{pattern:?}");
        };
        assert_eq!(program, "/usr/lib/systemd/systemd-coredump");
        assert_eq!(args.len(), 7);
        assert_eq!(args[0], "%P");
        assert!(pattern.is_handed_over());
    }

    #[test]
    fn both_socket_forms_are_recognised() {
        assert_eq!(
            CorePattern::parse("@/run/systemd/coredump"),
            CorePattern::Socket {
                path: "/run/systemd/coredump".into(),
                requests: false
            }
        );
        assert_eq!(
            CorePattern::parse("@@/run/cores.sock"),
            CorePattern::Socket {
                path: "/run/cores.sock".into(),
                requests: true
            }
        );
    }

    #[test]
    fn odd_patterns_do_not_panic() {
        for text in ["", "%", "|", "@", "@@", "%%%", "core%"] {
            let _ = CorePattern::parse(text).describe();
        }
    }
}
