//! The mounts of the calling thread's namespace, read from
//! /proc/thread-self/mountinfo, and where tracefs belongs: what `mount`
//! looks through to find tracefs, and `namespace` to know what it must
//! mount.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where tracefs lives on current kernels, and where kscope mounts it in
/// its private mount namespace.
pub const DEFAULT_MOUNT: &str = "/sys/kernel/tracing";

/// One mount from /proc/self/mountinfo, the fields we need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Filesystem type ("tracefs", "debugfs", ...).
    pub fstype: String,
    /// True when mounted read-only.
    pub read_only: bool,
}

/// The mounts of the calling thread's mount namespace: the thread's, not
/// the process's (/proc/self is the main thread), because a private
/// namespace made by a thread of a process that has threads holds that
/// thread only (see `namespace`).
pub(crate) const MOUNTINFO: &str = "/proc/thread-self/mountinfo";

/// Reads and parses [`MOUNTINFO`].
pub(crate) fn read_mountinfo() -> Result<Vec<MountEntry>> {
    let path = Path::new(MOUNTINFO);
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_mountinfo(&text))
}

/// Parses a mountinfo file (see proc(5)); lines that do not have the
/// documented shape are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let mut fields = line.split(' ');
    let mount_point = fields.nth(4)?;
    let options = fields.next()?;
    // Optional fields run up to a lone "-", then the filesystem type.
    fields.by_ref().find(|f| *f == "-")?;
    let fstype = fields.next()?;
    Some(MountEntry {
        mount_point: PathBuf::from(unescape_octal(mount_point)),
        fstype: fstype.to_string(),
        read_only: options.split(',').any(|o| o == "ro"),
    })
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
pub(crate) fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
