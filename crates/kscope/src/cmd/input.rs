//! The first look at an input file: an empty file, or one that starts
//! with none of the magic bytes of what a command reads (a text file
//! given to `trace report`, a trace.dat given to `crash`), is refused in
//! plain words, naming the file and what it starts with, before a parser
//! would name byte offsets and escaped magics. The magics are the
//! libraries' that parse each format; what is here is the wording and the
//! command that reads each kind.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// What a command reads: its name in a sentence, the magic bytes it may
/// start with, and those magics in words.
pub(crate) struct Expected {
    what: &'static str,
    magics: &'static [&'static [u8]],
    starts: &'static str,
}

/// A trace.dat (trace-cmd's format, versions 6 and 7).
pub(crate) const TRACE_DAT: Expected = Expected {
    what: "a trace.dat file",
    magics: &[kscope_tracedat::MAGIC],
    starts: "a trace.dat starts with the bytes 17 08 44 and \"tracing\"",
};

/// A user-space core dump.
pub(crate) const CORE: Expected = Expected {
    what: "a core dump",
    magics: &[kscope_coredump::ELF_MAGIC],
    starts: "a core dump is an ELF file (it starts with the bytes 7f 45 4c 46)",
};

/// A kernel crash dump in any of the forms `kscope crash` reads.
pub(crate) const VMCORE: Expected = Expected {
    what: "a kernel crash dump",
    magics: &[
        kscope_vmcore::ELF_MAGIC,
        kscope_vmcore::KDUMP_SIGNATURE,
        kscope_vmcore::DISKDUMP_SIGNATURE,
        kscope_vmcore::FLATTENED_SIGNATURE,
    ],
    starts: "a dump is an ELF vmcore (bytes 7f 45 4c 46), kdump-compressed \
             (\"KDUMP\") or flattened (\"makedumpfile\")",
};

/// Files another command reads, told by their magic: what each is, and
/// the command (FILE in it stands for the file). An ELF file is left
/// out: a process's core and a kernel's dump are both ELF cores.
const OTHER_KINDS: [(&[u8], &str, &str); 4] = [
    (
        kscope_tracedat::MAGIC,
        "a trace.dat file",
        "kscope trace report -i FILE",
    ),
    (
        kscope_vmcore::KDUMP_SIGNATURE,
        "a kernel crash dump (kdump-compressed)",
        "kscope crash FILE",
    ),
    (
        kscope_vmcore::DISKDUMP_SIGNATURE,
        "a kernel crash dump (diskdump)",
        "kscope crash FILE",
    ),
    (
        kscope_vmcore::FLATTENED_SIGNATURE,
        "a kernel crash dump (flattened)",
        "kscope crash FILE",
    ),
];

/// How many bytes of a file are looked at.
const LOOKED_AT: usize = 64;

/// Refuses `path`, whose first bytes are `start` (all of them, or at
/// least [`LOOKED_AT`]), when it is empty or is not what `expected` says.
pub(crate) fn check_start(path: &Path, start: &[u8], expected: &Expected) -> anyhow::Result<()> {
    if start.is_empty() {
        bail!("{} is empty", path.display());
    }
    if expected
        .magics
        .iter()
        .any(|magic| start.starts_with(magic) || magic.starts_with(start))
    {
        return Ok(());
    }
    if let Some((_, kind, command)) = OTHER_KINDS
        .iter()
        .find(|(magic, _, _)| start.starts_with(magic))
    {
        bail!(
            "{} is {kind}, not {}: read it with `{}`",
            path.display(),
            expected.what,
            command.replace("FILE", &path.display().to_string())
        );
    }
    bail!(
        "{} is not {}: it starts with {}, and {}",
        path.display(),
        expected.what,
        describe(start),
        expected.starts
    )
}

/// [`check_start`] on the file's first bytes, when it is a regular file
/// that can be read (otherwise the command's own open says why not).
pub(crate) fn check_file(path: &Path, expected: &Expected) -> anyhow::Result<()> {
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(());
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Ok(());
    }
    let mut start = Vec::with_capacity(LOOKED_AT);
    if file.take(LOOKED_AT as u64).read_to_end(&mut start).is_err() {
        return Ok(());
    }
    check_start(path, &start, expected)
}

/// The most characters of a text file's first line quoted.
const QUOTED: usize = 40;

/// The first line as quoted text when the bytes are printable text, or
/// the first 8 bytes in hex.
fn describe(start: &[u8]) -> String {
    let line = start.split(|&b| b == b'\n').next().unwrap_or_default();
    let printable = |b: &u8| b.is_ascii_graphic() || *b == b' ' || *b == b'\t';
    match std::str::from_utf8(line) {
        Ok(text) if !text.trim().is_empty() && line.iter().all(printable) => {
            let text = text.trim_end();
            match text.get(..QUOTED) {
                Some(head) if text.len() > QUOTED => format!("the text \"{head}...\""),
                _ => format!("the text \"{text}\""),
            }
        }
        _ => {
            let hex: Vec<String> = start.iter().take(8).map(|b| format!("{b:02x}")).collect();
            format!("the bytes {}", hex.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_are_told_as_text_or_bytes() {
        assert_eq!(describe(b"hello world\nmore"), "the text \"hello world\"");
        assert_eq!(
            describe(b"\x7fELF\x02\x01\x01\0\0"),
            "the bytes 7f 45 4c 46 02 01 01 00"
        );
        assert_eq!(describe(b"\n\n"), "the bytes 0a 0a");
        let path = Path::new("f");
        assert!(check_start(path, b"\x17\x08\x44tracing6", &TRACE_DAT).is_ok());
        // A file shorter than the magic is the parser's to judge.
        assert!(check_start(path, b"\x17\x08", &TRACE_DAT).is_ok());
        assert!(check_start(path, b"KDUMP   \x06", &VMCORE).is_ok());
        assert!(check_start(path, b"KDUMP   \x06", &CORE).is_err());
    }
}

/// The trace.dat `-i` names (`trace report`, `trace convert`).
#[derive(Debug, clap::Args)]
pub struct TraceDatInput {
    /// The trace.dat to read.
    #[arg(
        short = 'i',
        long = "input",
        value_name = "FILE",
        default_value = "trace.dat"
    )]
    pub path: PathBuf,
}

impl TraceDatInput {
    /// Maps the file.
    pub(crate) fn open(&self) -> anyhow::Result<kscope_tracedat::TraceFile> {
        kscope_tracedat::TraceFile::open(&self.path)
            .with_context(|| format!("cannot open {}", self.path.display()))
    }

    /// Parses the mapped file, naming it when it is not a trace.dat.
    pub(crate) fn parse<'f>(
        &self,
        file: &'f kscope_tracedat::TraceFile,
    ) -> anyhow::Result<kscope_tracedat::TraceData<'f>> {
        kscope_tracedat::parse(file.bytes())
            .with_context(|| format!("{} is not a trace.dat kscope can read", self.path.display()))
    }
}
