//! Helpers for kscope's tests only (`publish = false`).
//!
//! - [`live`]: the gate of every test that needs the real kernel. It runs
//!   the test when the machine can, prints why it skips when it cannot, and
//!   under `KSCOPE_REQUIRE_LIVE=1` (CI) turns that skip into a failure.
//! - [`TracefsLock`]: one test at a time may change tracefs or its mount,
//!   across threads and test processes.
//! - [`tracefs_snapshot`], [`snapshot_differences`] and
//!   [`assert_tracefs_unchanged_by`]: the contents of every tracefs control
//!   file, to prove that something left tracefs as it found it, byte for
//!   byte.
//! - [`elf`]: builders of ELF cores, notes and their descriptors.
//!
//! ```no_run
//! use kscope_testkit::{live, TracefsLock};
//! if !live("tracefs", kscope_testkit::missing_root()) {
//!     return;
//! }
//! let _lock = TracefsLock::acquire();
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

pub mod elf;
mod vmcores;
pub use vmcores::{VmcoreVariant, regressions_dir, regressions_with, vmcore_variants, vmcores_dir};

/// Decides whether a live test runs. `missing` is `None` when the machine
/// has what the test needs, or the reason it does not. Returns true to
/// run; prints the reason and returns false to skip; panics instead of
/// skipping when `KSCOPE_REQUIRE_LIVE=1`.
pub fn live(what: &str, missing: Option<String>) -> bool {
    let Some(reason) = missing else {
        return true;
    };
    if std::env::var("KSCOPE_REQUIRE_LIVE").as_deref() == Ok("1") {
        panic!("live test of {what} cannot run here ({reason}) and KSCOPE_REQUIRE_LIVE=1");
    }
    eprintln!("skipped: live test of {what}: {reason}");
    false
}

/// Runs `program` with `args` (a tool a test builds or inspects with:
/// cc, nm, addr2line) and gives its stdout; panics with its stderr when
/// it fails.
pub fn run_tool(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A command that starts `program` with the termination signals (SIGINT,
/// SIGTERM, SIGHUP, SIGQUIT) at their default action, except those in
/// `ignored` (names without SIG, like `"INT"`), which it starts ignoring,
/// as `nohup` or a background job would. A test's own dispositions (a
/// runner started in the background ignores SIGINT) must not leak into
/// what it checks. coreutils' `env` sets them and execs `program`, so the
/// pid is the program's.
pub fn command_with_signals(program: impl AsRef<std::ffi::OsStr>, ignored: &[&str]) -> Command {
    let mut command = Command::new("env");
    command.arg("--default-signal=INT,TERM,HUP,QUIT");
    if !ignored.is_empty() {
        command.arg(format!("--ignore-signal={}", ignored.join(",")));
    }
    command.arg("--").arg(program);
    command
}

/// `None` when running as root, else the reason to skip.
pub fn missing_root() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_string();
    (euid != "0").then(|| format!("needs root (effective uid is {euid})"))
}

/// An exclusive lock held while a test changes tracefs or its mount.
pub struct TracefsLock {
    _dir: File,
}

/// What the lock is taken on: an flock on the `/sys/kernel` directory,
/// which every process of the machine sees as the same inode (in a
/// private mount namespace too, and readable by any user), so the lock
/// also orders separate test processes and the bench scripts
/// (`flock /sys/kernel CMD`), and no lock file is left anywhere. Not
/// `/sys/kernel/tracing`: that is sysfs's directory or tracefs's root
/// depending on what is mounted there.
pub const TRACEFS_LOCK: &str = "/sys/kernel";

impl TracefsLock {
    /// Blocks until no other test holds the lock.
    pub fn acquire() -> TracefsLock {
        let dir =
            File::open(TRACEFS_LOCK).unwrap_or_else(|e| panic!("cannot open {TRACEFS_LOCK}: {e}"));
        dir.lock()
            .unwrap_or_else(|e| panic!("cannot lock {TRACEFS_LOCK}: {e}"));
        TracefsLock { _dir: dir }
    }
}

/// Files whose contents change by themselves or whose reading has an
/// effect: they are not control files and stay out of a snapshot.
const NOT_CONTROL_FILES: &[&str] = &[
    "trace",
    "trace_pipe",
    "trace_pipe_raw",
    "trace_marker",
    "trace_marker_raw",
    "snapshot",
    "snapshot_raw",
    "free_buffer",
    "saved_cmdlines",
    "saved_tgids",
    "uprobe_profile",
    "kprobe_profile",
    "enabled_functions",
    "touched_functions",
    "dyn_ftrace_total_info",
    "stats",
    "hist",
    "inject",
    "id",
    "format",
    "available_filter_functions",
    "available_filter_functions_addrs",
    "per_cpu",
    "printk_formats",
    "function_profile_enabled",
    "trace_stat",
    "README",
];

/// Reads every control file under a tracefs root into a map from relative
/// path to contents (or to the error a read gave: some files refuse
/// reads, and that too must not change). Instances appear as a listing
/// entry per name, not their contents.
pub fn tracefs_snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if NOT_CONTROL_FILES.contains(&name.as_str()) {
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        if path.is_dir() {
            if relative == "instances" {
                let names: Vec<String> = std::fs::read_dir(&path)
                    .map(|it| {
                        it.filter_map(|e| e.ok())
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                let mut names = names;
                names.sort();
                out.insert(relative, names.join("\n"));
            } else {
                walk(root, &path, out);
            }
            continue;
        }
        let contents = match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(err) => format!("<unreadable: {err}>"),
        };
        out.insert(relative, contents);
    }
}

/// Runs `body`, then asserts that every control file under the tracefs
/// `root` holds the same bytes as before it. `what` names the actor in the
/// failure message.
pub fn assert_tracefs_unchanged_by(what: &str, root: &Path, body: impl FnOnce()) {
    let before = tracefs_snapshot(root);
    assert!(
        before.len() > 100,
        "{} does not look like tracefs: a real one has hundreds of control files",
        root.display()
    );
    body();
    let differences = snapshot_differences(&before, &tracefs_snapshot(root));
    assert!(
        differences.is_empty(),
        "{what} changed tracefs:\n{}",
        differences.join("\n")
    );
}

/// The frame of a live test that touches tracefs: skips (or fails under
/// KSCOPE_REQUIRE_LIVE=1) when not root, holds the tracefs lock, mounts
/// tracefs for the test when it is absent, runs `body`, asserts that every
/// control file is as before, and unmounts what it mounted.
pub fn with_unchanged_tracefs(what: &str, body: impl FnOnce(&kscope_tracefs::Tracefs)) {
    if !live(what, missing_root()) {
        return;
    }
    let _lock = TracefsLock::acquire();
    let outer = kscope_tracefs::StateGuard::new();
    let fs = outer.tracefs().expect("tracefs");
    assert_tracefs_unchanged_by(what, fs.root(), || body(&fs));
    outer.restore().expect("restore the tracefs mount");
}

/// The differences between two snapshots, one line each; empty when equal.
pub fn snapshot_differences(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut differences = Vec::new();
    for (path, old) in before {
        match after.get(path) {
            None => differences.push(format!("{path}: disappeared")),
            Some(new) if new != old => differences.push(format!(
                "{path}: was {:?}, now {:?}",
                abbreviate(old),
                abbreviate(new)
            )),
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        differences.push(format!("{path}: appeared"));
    }
    differences
}

/// At most 300 characters of a file's contents, for messages.
fn abbreviate(text: &str) -> String {
    const LIMIT: usize = 300;
    match text.char_indices().nth(LIMIT) {
        Some((end, _)) => format!("{}... ({} bytes in all)", &text[..end], text.len()),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SigIgn mask a program started by `command_with_signals` has.
    fn ignored_mask(ignored: &[&str]) -> u64 {
        let output = command_with_signals("grep", ignored)
            .args(["^SigIgn:", "/proc/self/status"])
            .output()
            .expect("run env grep");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let hex = text.trim().trim_start_matches("SigIgn:").trim();
        u64::from_str_radix(hex, 16).expect("a hex mask")
    }

    #[test]
    fn a_command_starts_with_the_signals_it_is_given() {
        // Bits are signal - 1: HUP 0, INT 1, QUIT 2, TERM 14.
        let terminating = 1 << 0 | 1 << 1 | 1 << 2 | 1 << 14;
        assert_eq!(ignored_mask(&[]) & terminating, 0);
        assert_eq!(ignored_mask(&["INT"]) & terminating, 1 << 1);
    }

    #[test]
    fn a_present_capability_runs_the_test() {
        assert!(live("anything", None));
    }

    #[test]
    fn snapshots_see_changed_added_and_removed_files() {
        let root_holder = tempfile::Builder::new()
            .prefix("kscope-snap-")
            .tempdir()
            .expect("a temp dir");
        let root = root_holder.path().to_path_buf();
        std::fs::create_dir_all(root.join("events/sched/sched_switch")).unwrap();
        std::fs::create_dir_all(root.join("instances/a")).unwrap();
        std::fs::create_dir_all(root.join("per_cpu/cpu0")).unwrap();
        std::fs::write(root.join("tracing_on"), "1\n").unwrap();
        std::fs::write(root.join("events/sched/sched_switch/enable"), "0\n").unwrap();
        std::fs::write(root.join("per_cpu/cpu0/stats"), "now: 1\n").unwrap();
        let before = tracefs_snapshot(&root);
        assert_eq!(before.len(), 3, "{before:?}");
        assert!(snapshot_differences(&before, &tracefs_snapshot(&root)).is_empty());

        std::fs::write(root.join("tracing_on"), "0\n").unwrap();
        std::fs::write(root.join("per_cpu/cpu0/stats"), "now: 2\n").unwrap();
        std::fs::create_dir_all(root.join("instances/b")).unwrap();
        std::fs::remove_file(root.join("events/sched/sched_switch/enable")).unwrap();
        std::fs::write(root.join("current_tracer"), "nop\n").unwrap();
        let differences = snapshot_differences(&before, &tracefs_snapshot(&root));
        assert_eq!(differences.len(), 4, "{differences:#?}");
    }
}
