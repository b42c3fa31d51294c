//! A cache of inflated DWARF sections, one file per build-id, so that the
//! second look at a program (or at any program using the same libc) reads
//! its debug sections as they are instead of inflating them again.
//!
//! A file is `KSDWARF1`, a u32 count, then per section a u8 name length,
//! the name, a u64 length and the bytes (little-endian). It is written to a
//! temporary name and renamed, so readers never see half a file; a file
//! that does not parse is ignored (and rewritten when next stored). The
//! build-id names the file, so a cached section cannot belong to another
//! build of the same library. The directory is private (kscope-outfile's
//! `PrivateDir`: made 0700, or else owned by the user and writable by no
//! one else, and not a link); one that is not is neither read nor written,
//! and links in it are not followed.

use std::io::Write;
use std::path::{Path, PathBuf};

use kscope_outfile::PrivateDir;

use crate::sys::SharedBytes;

/// The first bytes of a cache file.
const MAGIC: &[u8; 8] = b"KSDWARF1";

/// The most sections a cache file may list.
const MAX_SECTIONS: u32 = 32;

/// Where inflated DWARF is kept.
#[derive(Debug, Clone)]
pub struct DwarfCache {
    dir: PathBuf,
}

impl DwarfCache {
    /// A cache in `dir` (made when first stored to).
    pub fn new(dir: impl Into<PathBuf>) -> DwarfCache {
        DwarfCache { dir: dir.into() }
    }

    /// The user's cache: `$KSCOPE_CACHE_DIR/dwarf`, else
    /// `$XDG_CACHE_HOME/kscope/dwarf`, else `~/.cache/kscope/dwarf`;
    /// `None` when none of them is set.
    pub fn user() -> Option<DwarfCache> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let root = var("KSCOPE_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| var("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("kscope")))
            .or_else(|| var("HOME").map(|d| PathBuf::from(d).join(".cache/kscope")))?;
        Some(DwarfCache::new(root.join("dwarf")))
    }

    /// The directory of the cache files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cache file's name for `build_id`.
    fn name(build_id: &[u8]) -> String {
        let hex: String = build_id.iter().map(|b| format!("{b:02x}")).collect();
        format!("{hex}.dwarf")
    }

    /// The sections cached for `build_id`; `None` when there is no file or
    /// it does not parse.
    pub(crate) fn load(&self, build_id: &[u8]) -> Option<Vec<(String, SharedBytes)>> {
        // Mapped: a cache file is replaced by rename, never rewritten in
        // place, so the mapping keeps the bytes it was made with.
        let dir = PrivateDir::open(&self.dir).ok()?;
        let file = dir.open_file(&DwarfCache::name(build_id)).ok()?;
        parse(&SharedBytes::map(&file).ok()?)
    }

    /// Stores `sections` for `build_id`. Failing to write (a read-only
    /// home, a full disk, a directory that is not private) only costs the
    /// next run the inflation.
    pub(crate) fn store(&self, build_id: &[u8], sections: &[(&str, &[u8])]) {
        let Ok(dir) = PrivateDir::open_or_create(&self.dir) else {
            return;
        };
        let Ok(out) = dir.atomic_file(&DwarfCache::name(build_id)) else {
            return;
        };
        let written = (|| {
            let mut file = std::io::BufWriter::new(out.file());
            file.write_all(MAGIC)?;
            let count = u32::try_from(sections.len()).map_err(std::io::Error::other)?;
            file.write_all(&count.to_le_bytes())?;
            for (name, data) in sections {
                let len = u8::try_from(name.len()).map_err(std::io::Error::other)?;
                file.write_all(&[len])?;
                file.write_all(name.as_bytes())?;
                file.write_all(&(data.len() as u64).to_le_bytes())?;
                file.write_all(data)?;
            }
            file.into_inner().map_err(|e| e.into_error())?.sync_data()
        })();
        // Uncommitted, the temporary file is removed.
        if written.is_ok() {
            let _ = out.commit();
        }
    }
}

/// The sections of a cache file, or `None` when it is not one.
fn parse(file: &SharedBytes) -> Option<Vec<(String, SharedBytes)>> {
    let rest = file.strip_prefix(MAGIC)?;
    let (count, mut rest) = rest.split_first_chunk::<4>()?;
    let count = u32::from_le_bytes(*count);
    if count > MAX_SECTIONS {
        return None;
    }
    let mut sections = Vec::new();
    for _ in 0..count {
        let (len, after) = rest.split_first()?;
        let (name, after) = after.split_at_checked(usize::from(*len))?;
        let (size, after) = after.split_first_chunk::<8>()?;
        let size = usize::try_from(u64::from_le_bytes(*size)).ok()?;
        let (data, after) = after.split_at_checked(size)?;
        let start = file.len() - after.len() - data.len();
        let data = file.slice(start..start + size)?;
        sections.push((String::from_utf8(name.to_vec()).ok()?, data));
        rest = after;
    }
    rest.is_empty().then_some(sections)
}

#[cfg(test)]
mod tests {
    use super::DwarfCache;

    #[test]
    fn stored_sections_load_back_by_build_id() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DwarfCache::new(dir.path().join("dwarf"));
        assert!(cache.load(b"\x12\x34").is_none());
        cache.store(
            b"\x12\x34",
            &[(".debug_info", b"info"), (".debug_line", b"")],
        );
        let sections = cache.load(b"\x12\x34").unwrap();
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].0, ".debug_info");
        assert_eq!(&*sections[0].1, b"info");
        assert!(sections[1].1.is_empty());
        assert!(dir.path().join("dwarf/1234.dwarf").exists());
        // No temporary file is left.
        assert_eq!(
            std::fs::read_dir(dir.path().join("dwarf")).unwrap().count(),
            1
        );
        assert!(cache.load(b"\x12\x35").is_none());
    }

    #[test]
    fn a_damaged_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DwarfCache::new(dir.path());
        cache.store(b"\xab", &[(".debug_info", b"0123456789")]);
        let path = dir.path().join("ab.dwarf");
        let bytes = std::fs::read(&path).unwrap();
        for cut in 0..bytes.len() {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            assert!(cache.load(b"\xab").is_none(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        std::fs::write(&path, &longer).unwrap();
        assert!(cache.load(b"\xab").is_none());
        let mut many = bytes;
        many[8] = 0xff;
        std::fs::write(&path, &many).unwrap();
        assert!(cache.load(b"\xab").is_none());
    }

    #[test]
    fn links_at_the_directory_or_the_file_are_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let victim = root.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let elsewhere = root.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let linked = root.path().join("linked");
        std::os::unix::fs::symlink(&elsewhere, &linked).unwrap();
        DwarfCache::new(&linked).store(b"\xab", &[(".debug_info", b"x")]);
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

        let dir = root.path().join("dwarf");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("ab.dwarf")).unwrap();
        let cache = DwarfCache::new(&dir);
        assert!(cache.load(b"\xab").is_none());
        cache.store(b"\xab", &[(".debug_info", b"x")]);
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(cache.load(b"\xab").is_some());
    }
}
