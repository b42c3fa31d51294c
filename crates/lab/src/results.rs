//! The result stream a guest writes to its second serial port: lines
//! `@@kscope NONCE WORD ARGS`, where WORD is `begin NAME`, `stdout NAME
//! BYTES` or `stderr NAME BYTES` (each followed by base64 lines), `end NAME
//! STATUS` or `done`. Lines with another nonce, or none, are ignored: only
//! this run's guest knows the nonce.

use std::collections::BTreeMap;

/// What one command did in the guest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandResult {
    /// Its name in the batch.
    pub name: String,
    /// The exit status; `None` when the command never finished.
    pub status: Option<i32>,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
}

impl CommandResult {
    /// stdout as text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Everything read from a result stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultStream {
    /// Commands that began, by name, in the order they began.
    pub commands: Vec<CommandResult>,
    /// True when the guest reported the end of the batch.
    pub done: bool,
}

impl ResultStream {
    /// A command's result by name.
    pub fn get(&self, name: &str) -> Option<&CommandResult> {
        self.commands.iter().find(|c| c.name == name)
    }
}

enum Collecting {
    Nothing,
    Stdout(usize),
    Stderr(usize),
}

/// Parses the stream. Damage (a missing line, bad base64) loses only the
/// bytes concerned, never the rest.
pub fn parse(raw: &[u8], nonce: &str) -> ResultStream {
    let text = String::from_utf8_lossy(raw);
    let marker = format!("@@kscope {nonce} ");
    let mut stream = ResultStream::default();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut collecting = Collecting::Nothing;
    for line in text.lines().map(|l| l.trim_end_matches('\r')) {
        let Some(rest) = line.strip_prefix(&marker) else {
            match collecting {
                Collecting::Stdout(i) => decode_into(line, &mut stream.commands[i].stdout),
                Collecting::Stderr(i) => decode_into(line, &mut stream.commands[i].stderr),
                Collecting::Nothing => {}
            }
            continue;
        };
        collecting = Collecting::Nothing;
        let words: Vec<&str> = rest.split_whitespace().collect();
        let slot = |name: &str, stream: &mut ResultStream, index: &mut BTreeMap<String, usize>| {
            *index.entry(name.to_string()).or_insert_with(|| {
                stream.commands.push(CommandResult {
                    name: name.to_string(),
                    ..CommandResult::default()
                });
                stream.commands.len() - 1
            })
        };
        match words.as_slice() {
            ["begin", name] => {
                slot(name, &mut stream, &mut index);
            }
            ["stdout", name, _bytes] => {
                collecting = Collecting::Stdout(slot(name, &mut stream, &mut index));
            }
            ["stderr", name, _bytes] => {
                collecting = Collecting::Stderr(slot(name, &mut stream, &mut index));
            }
            ["end", name, status] => {
                let i = slot(name, &mut stream, &mut index);
                stream.commands[i].status = status.parse().ok();
            }
            ["done"] => stream.done = true,
            _ => {}
        }
    }
    stream
}

/// Appends the bytes of one base64 line; a damaged line is dropped.
fn decode_into(line: &str, out: &mut Vec<u8>) {
    use base64::Engine;
    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(line.trim()) {
        out.extend_from_slice(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn output_spread_over_many_base64_lines_is_joined() {
        // base64(1) wraps at 76 columns; each line decodes on its own.
        let data: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        for chunk in data.chunks(57) {
            decode_into(&encode(chunk), &mut out);
        }
        decode_into("not base64 at all!", &mut out);
        assert_eq!(out, data);
    }

    #[test]
    fn a_whole_batch_is_read_back() {
        let raw = format!(
            "noise before\n@@kscope N1 begin first\n@@kscope N1 stdout first 6\n{}\n@@kscope N1 stderr first 4\n{}\n@@kscope N1 end first 3\n\
             @@kscope N1 begin second\n@@kscope N1 stdout second 0\n@@kscope N1 stderr second 0\n@@kscope N1 end second 0\n@@kscope N1 done\n",
            encode(b"hello\n"),
            encode(b"err\n")
        );
        let stream = parse(raw.as_bytes(), "N1");
        assert!(stream.done);
        assert_eq!(stream.commands.len(), 2);
        let first = stream.get("first").unwrap();
        assert_eq!(first.status, Some(3));
        assert_eq!(first.stdout, b"hello\n");
        assert_eq!(first.stderr, b"err\n");
        assert_eq!(stream.get("second").unwrap().status, Some(0));
    }

    #[test]
    fn a_command_cut_short_has_no_status_and_other_nonces_are_ignored() {
        let raw = "@@kscope OLD begin ghost\n@@kscope N2 begin crash\r\n@@kscope N2 stdout crash 3\nYWJj\n";
        let stream = parse(raw.as_bytes(), "N2");
        assert!(!stream.done);
        assert_eq!(stream.commands.len(), 1);
        let crash = stream.get("crash").unwrap();
        assert_eq!(crash.status, None);
        assert_eq!(crash.stdout, b"abc");
    }

    #[test]
    fn garbage_does_not_panic() {
        for raw in [
            &b"\xff\xfe@@kscope"[..],
            b"@@kscope N end x y z",
            b"@@kscope N end a notanumber",
        ] {
            let stream = parse(raw, "N");
            assert!(!stream.done);
        }
    }
}
