//! Finding an object's separate debug file, the way gdb does: by build-id
//! under `/usr/lib/debug/.build-id/`, then by `.gnu_debuglink` next to the
//! object, in its `.debug/` subdirectory and under `/usr/lib/debug/`.

use std::path::{Path, PathBuf};

use crate::ObjectFile;

/// The global debug directory, below the sysroot.
const DEBUG_DIR: &str = "usr/lib/debug";

/// Where separate debug files are looked for, and the check each must pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidate {
    /// A file named after the build-id; it must carry the same build-id.
    BuildId(PathBuf),
    /// A file named by `.gnu_debuglink`; its CRC32 must match the link's.
    Debuglink(PathBuf),
}

/// The separate-debug-file finder.
#[derive(Debug)]
pub struct DebugFiles;

impl DebugFiles {
    /// Finds and opens `object`'s separate debug file, or `None` when no
    /// candidate exists or none passes its check. `sysroot` prefixes the
    /// global debug directory (`<sysroot>/usr/lib/debug`); `None` means `/`.
    pub fn find(object: &ObjectFile, sysroot: Option<&Path>) -> Option<ObjectFile> {
        DebugFiles::candidates(object, sysroot)
            .into_iter()
            .find_map(|candidate| DebugFiles::check(object, &candidate))
    }

    /// The paths [`DebugFiles::find`] tries, in order.
    pub fn candidates(object: &ObjectFile, sysroot: Option<&Path>) -> Vec<Candidate> {
        let global = sysroot.unwrap_or(Path::new("/")).join(DEBUG_DIR);
        let mut candidates = Vec::new();
        if let Some(id) = object.build_id()
            && let Some((first, rest)) = id.split_first()
        {
            let mut name: String = rest.iter().map(|byte| format!("{byte:02x}")).collect();
            name.push_str(".debug");
            let path = global
                .join(".build-id")
                .join(format!("{first:02x}"))
                .join(name);
            candidates.push(Candidate::BuildId(path));
        }
        // A debuglink is relative to the object's directory; bytes from
        // memory have none.
        if let Some((name, _)) = object.debuglink()
            && let Some(path) = object.path()
        {
            let dir = path
                .parent()
                .filter(|dir| !dir.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            // gdb resolves symlinks first, so /usr/lib/debug/<dir> is the
            // real directory.
            let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
            candidates.push(Candidate::Debuglink(dir.join(name)));
            candidates.push(Candidate::Debuglink(dir.join(".debug").join(name)));
            let relative = dir.strip_prefix("/").unwrap_or(&dir);
            candidates.push(Candidate::Debuglink(global.join(relative).join(name)));
        }
        candidates
    }

    fn check(object: &ObjectFile, candidate: &Candidate) -> Option<ObjectFile> {
        match candidate {
            Candidate::BuildId(path) => {
                let debug = ObjectFile::open(path).ok()?;
                (debug.build_id() == object.build_id()).then_some(debug)
            }
            Candidate::Debuglink(path) => {
                // The object itself may be where its link points (same dir,
                // same name); a file is never its own debug file.
                if Some(path.as_path()) == object.path() {
                    return None;
                }
                let (_, crc) = object.debuglink()?;
                let debug = ObjectFile::open(path).ok()?;
                (debug.crc32() == crc).then_some(debug)
            }
        }
    }
}
