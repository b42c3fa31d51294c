//! Kernel debuginfo: a vmlinux with DWARF whose build-id matches the
//! running kernel. SystemTap and crash need one; kscope does not, but a
//! user who has one (or has the wrong one) should know.

use std::fs::File;
use std::path::{Path, PathBuf};

use object::read::ReadCache;
use object::{Object, ObjectSection};
use serde::{Deserialize, Serialize};

use crate::parse::notes;

/// A vmlinux found on disk and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebugCandidate {
    /// Where it is.
    pub path: PathBuf,
    /// Its GNU build-id in lower-case hex, when it has one.
    pub build_id: Option<String>,
    /// True when it has a `.debug_info` section.
    pub has_dwarf: bool,
}

/// The places distributions put a vmlinux for `release`, and the
/// build-id path under /usr/lib/debug when the build-id (in hex) is known.
pub fn vmlinux_candidates(release: &str, build_id: Option<&str>) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = [
        format!("/usr/lib/debug/boot/vmlinux-{release}"),
        format!("/usr/lib/debug/lib/modules/{release}/vmlinux"),
        format!("/usr/lib/debug/vmlinux-{release}"),
        format!("/boot/vmlinux-{release}"),
        format!("/lib/modules/{release}/vmlinux"),
        format!("/lib/modules/{release}/build/vmlinux"),
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect();
    if let Some(hex) = build_id.filter(|hex| hex.len() > 2) {
        paths.push(PathBuf::from(format!(
            "/usr/lib/debug/.build-id/{}/{}.debug",
            &hex[..2],
            &hex[2..]
        )));
    }
    paths
}

/// Reads a candidate's build-id and whether it has DWARF, reading only the
/// headers and the notes (a debug vmlinux is hundreds of MiB).
pub fn inspect(path: &Path) -> Option<DebugCandidate> {
    let file = File::open(path).ok()?;
    let cache = ReadCache::new(file);
    let elf = object::File::parse(&cache).ok()?;
    let build_id = elf
        .build_id()
        .ok()
        .flatten()
        .map(<[u8]>::to_vec)
        .or_else(|| {
            elf.section_by_name(".notes")
                .and_then(|s| s.data().ok())
                .and_then(notes::build_id)
        })
        .map(|id| notes::hex(&id));
    let has_dwarf = elf.section_by_name(".debug_info").is_some();
    Some(DebugCandidate {
        path: path.to_path_buf(),
        build_id,
        has_dwarf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_id_path_is_split_after_two_hex_digits() {
        // Whatever kernel runs here: the paths follow its release.
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let release = release.trim();
        let paths = vmlinux_candidates(release, Some("abcdef"));
        assert_eq!(
            paths.last().unwrap(),
            Path::new("/usr/lib/debug/.build-id/ab/cdef.debug")
        );
        assert!(paths.contains(&PathBuf::from(format!(
            "/usr/lib/debug/boot/vmlinux-{release}"
        ))));
        assert_eq!(vmlinux_candidates("x", None).len(), 6);
    }

    #[test]
    fn a_non_elf_file_is_no_candidate() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("notelf");
        std::fs::write(&path, b"not an elf file").unwrap();
        assert_eq!(inspect(&path), None);
    }

    #[test]
    fn this_test_binary_has_a_build_id() {
        // Rust test binaries are linked with a GNU build-id note by gcc/ld
        // on Debian; the point is that inspect reads one from a real ELF.
        let exe = std::env::current_exe().unwrap();
        let candidate = inspect(&exe).unwrap();
        assert!(candidate.build_id.is_some_and(|id| !id.is_empty()));
    }
}
