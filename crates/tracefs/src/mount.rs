//! Finding tracefs: where it is mounted (from `mountinfo`) and the
//! `Tracefs` handle that the rest of the crate works through. Finding never
//! changes anything; mounting, when tracefs is mounted nowhere, is done in
//! kscope's private mount namespace (see `namespace`).

use std::path::{Path, PathBuf};

use crate::control;
use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::mountinfo::{DEFAULT_MOUNT, MountEntry, read_mountinfo};

/// Picks the tracefs mount to use: /sys/kernel/tracing when it is one,
/// otherwise the first tracefs mount listed.
pub fn choose_tracefs(mounts: &[MountEntry]) -> Option<&MountEntry> {
    let tracefs = || mounts.iter().filter(|m| m.fstype == "tracefs");
    tracefs()
        .find(|m| m.mount_point == Path::new(DEFAULT_MOUNT))
        .or_else(|| tracefs().next())
}

/// A mounted tracefs.
#[derive(Debug, Clone)]
pub struct Tracefs {
    root: PathBuf,
    read_only: bool,
    mounted_by_us: bool,
}

impl Tracefs {
    /// Finds a mounted tracefs without changing anything; `Ok(None)` when
    /// there is none.
    pub fn find() -> Result<Option<Tracefs>> {
        Ok(choose_tracefs(&read_mountinfo()?).map(|m| Tracefs {
            root: m.mount_point.clone(),
            read_only: m.read_only,
            mounted_by_us: m.mount_point == Path::new(DEFAULT_MOUNT)
                && crate::namespace::mounted_privately(crate::namespace::KernelFs::Tracefs),
        }))
    }

    /// A handle on a tracefs tree at `root`, trusted to be one (for tests
    /// and for callers that know better than mountinfo).
    pub fn at(root: impl Into<PathBuf>) -> Tracefs {
        Tracefs {
            root: root.into(),
            read_only: false,
            mounted_by_us: false,
        }
    }

    /// The mount point.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True when the mount is read-only (nothing can be traced through it).
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// True when this process mounted it, in its private mount namespace
    /// (where it vanishes with the process; nobody else sees the mount).
    pub fn mounted_by_us(&self) -> bool {
        self.mounted_by_us
    }

    /// The top-level tracing directory (the global buffer).
    pub fn top(&self) -> Instance {
        Instance::new(self.root.clone(), None)
    }

    /// An existing instance by name.
    pub fn instance(&self, name: &str) -> Option<Instance> {
        let dir = self.root.join("instances").join(name);
        dir.is_dir()
            .then(|| Instance::new(dir, Some(name.to_string())))
    }

    /// The names of all instances, sorted.
    pub fn instance_names(&self) -> Result<Vec<String>> {
        let dir = self.root.join("instances");
        let entries = std::fs::read_dir(&dir).map_err(|source| Error::Read {
            path: dir.clone(),
            source,
        })?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every trace event as `(system, event)`, sorted, from
    /// `available_events`.
    pub fn events(&self) -> Result<Vec<(String, String)>> {
        let text = control::read(&self.root.join("available_events"))?;
        let mut events: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| l.trim().split_once(':'))
            .map(|(s, e)| (s.to_string(), e.to_string()))
            .collect();
        events.sort();
        events.dedup();
        Ok(events)
    }

    /// The tracers this kernel offers (`available_tracers`).
    pub fn tracers(&self) -> Result<Vec<String>> {
        let text = control::read(&self.root.join("available_tracers"))?;
        Ok(text.split_whitespace().map(str::to_string).collect())
    }

    /// The top-level trace options with their state (`trace_options`:
    /// `print-parent`, `nosym-offset`, ...), as `(name, enabled)`.
    pub fn options(&self) -> Result<Vec<(String, bool)>> {
        let text = control::read(&self.root.join("trace_options"))?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| match l.strip_prefix("no") {
                Some(name) => (name.to_string(), false),
                None => (l.to_string(), true),
            })
            .collect())
    }

    /// The text of an event's format file.
    pub fn event_format(&self, system: &str, event: &str) -> Result<String> {
        control::read(
            &self
                .root
                .join("events")
                .join(system)
                .join(event)
                .join("format"),
        )
    }

    /// The file that defines uprobes.
    pub fn uprobe_events(&self) -> PathBuf {
        self.root.join("uprobe_events")
    }

    /// The file that defines kprobes (absent on kernels without kprobes).
    pub fn kprobe_events(&self) -> PathBuf {
        self.root.join("kprobe_events")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mountinfo::{parse_mountinfo, unescape_octal};

    const SAMPLE: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw
23 1 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw
40 23 0:12 / /sys/kernel/debug rw,nosuid,nodev,noexec,relatime shared:15 - debugfs debugfs rw
41 40 0:13 / /sys/kernel/debug/tracing rw,nosuid,nodev,noexec,relatime shared:16 - tracefs tracefs rw
42 23 0:13 / /sys/kernel/tracing ro,nosuid,nodev,noexec,relatime shared:17 - tracefs nodev rw
43 1 8:1 / /mnt/with\\040space rw - ext4 /dev/sda1 rw
";

    #[test]
    fn mountinfo_fields_are_read_with_optional_fields_and_escapes() {
        let mounts = parse_mountinfo(SAMPLE);
        assert_eq!(mounts.len(), 6);
        assert_eq!(mounts[3].fstype, "tracefs");
        assert_eq!(
            mounts[3].mount_point,
            Path::new("/sys/kernel/debug/tracing")
        );
        assert!(!mounts[3].read_only);
        assert!(mounts[4].read_only);
        assert_eq!(mounts[5].mount_point, Path::new("/mnt/with space"));
    }

    #[test]
    fn the_standard_mount_point_is_preferred() {
        let mounts = parse_mountinfo(SAMPLE);
        let chosen = choose_tracefs(&mounts).unwrap();
        assert_eq!(chosen.mount_point, Path::new(DEFAULT_MOUNT));
    }

    #[test]
    fn any_tracefs_mount_is_used_when_the_standard_one_is_absent() {
        let mounts = parse_mountinfo(&SAMPLE.replace("/sys/kernel/tracing ", "/elsewhere "));
        let chosen = choose_tracefs(&mounts).unwrap();
        assert_eq!(chosen.mount_point, Path::new("/sys/kernel/debug/tracing"));
    }

    #[test]
    fn no_tracefs_means_none_and_malformed_lines_are_skipped() {
        let text = "garbage\n22 1 0:21 / /proc rw - proc proc rw\n1 2 3\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 1);
        assert!(choose_tracefs(&mounts).is_none());
    }

    #[test]
    fn a_backslash_not_followed_by_three_octal_digits_is_kept() {
        assert_eq!(unescape_octal("a\\b\\09"), "a\\b\\09");
        assert_eq!(unescape_octal("x\\134y"), "x\\y");
    }
}
