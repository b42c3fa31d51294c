//! The persistent journal: every change a `StateGuard` makes is written to
//! a file under /run/kscope (one per process) and flushed before it is
//! made, and marked undone once it is undone; the file is deleted when
//! nothing is left to undo. The process holds an flock on its file while it
//! lives, so a file whose lock is free was left by a kscope that died
//! (SIGKILL, a crash, a power cut) with changes still made: a later run
//! undoes them ([`undo_leftovers`]), or names them with the commands that
//! undo them, and `kscope doctor` lists them ([`find_leftovers`]). A lock,
//! not a pid, tells the dead from the living: pids are reused and differ
//! across pid namespaces.
//!
//! The format is line-oriented text, version 1:
//!
//! ```text
//! kscope-journal 1
//! pid 1234
//! +1 instance /sys/kernel/tracing kscope-1234
//! +2 control /sys/kernel/tracing instances/kscope-1234/tracing_on value 0
//! +3 probe /sys/kernel/tracing uprobe_events uprobes/p_1
//! +4 trigger /sys/kernel/tracing events/sched/sched_switch/trigger traceoff
//! +5 tempdir /tmp/.kscope-record-1234
//! -3
//! ```
//!
//! `+ID KIND FIELD...` is a change about to be made, `-ID` one undone (or
//! never made). Fields are separated by one space; in a field a backslash,
//! and every byte that is not a printable ASCII character other than
//! space, is written `\\` or `\xHH`, and an empty field is `\e`. A last
//! line without its newline was cut by the death of its writer and is
//! ignored: its change was not made yet. A journal is read as input from
//! outside the process: anything else malformed makes it corrupt, reported
//! and left alone.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::control::{self, Restore, WriteMode};
use crate::error::{Error, Result};
use crate::mountinfo::{DEFAULT_MOUNT, read_mountinfo};
use crate::sys;
use kscope_outfile::PrivateDir;

/// Where root's journals live.
pub const RUN_DIR: &str = "/run/kscope";

const HEADER: &str = "kscope-journal 1";
const SUFFIX: &str = ".journal";

/// The journal directory in use: `KSCOPE_RUN_DIR` when set (for tests,
/// which must not share it with real sessions), else [`RUN_DIR`] for root,
/// else `$XDG_RUNTIME_DIR/kscope` for a user who may change tracefs
/// without being root (a tracefs mounted with a group, say).
pub fn run_dir() -> PathBuf {
    let from_env = |name| std::env::var_os(name).filter(|dir| !dir.is_empty());
    if let Some(dir) = from_env("KSCOPE_RUN_DIR") {
        return PathBuf::from(dir);
    }
    match from_env("XDG_RUNTIME_DIR") {
        Some(dir) if !sys::is_root() => PathBuf::from(dir).join("kscope"),
        _ => PathBuf::from(RUN_DIR),
    }
}

/// One change to the kernel (or the disk) and what is needed to undo it.
/// Tracefs paths are kept as the tracefs root and a path relative to it,
/// so that a later run, whose tracefs may be mounted elsewhere, can find
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// `instances/NAME` was created: tracing_on 0, then rmdir.
    Instance { root: PathBuf, name: String },
    /// A control file was written: write back what it held.
    Control {
        root: PathBuf,
        file: PathBuf,
        restore: Restore,
    },
    /// A uprobe or kprobe was defined in `file`: `-:NAME`.
    Probe {
        root: PathBuf,
        file: PathBuf,
        name: String,
    },
    /// A trigger was added to an event's `trigger` file: `!TRIGGER`.
    Trigger {
        root: PathBuf,
        file: PathBuf,
        trigger: String,
    },
    /// A temporary directory was made: delete it and what it holds.
    TempDir(PathBuf),
}

/// The `error_log` of the tracing directory that holds `file`.
fn error_log_of(root: &Path, file: &Path) -> PathBuf {
    let mut parts = file.components();
    match (parts.next(), parts.next()) {
        (Some(first), Some(name)) if first.as_os_str() == "instances" => root
            .join("instances")
            .join(name.as_os_str())
            .join("error_log"),
        _ => root.join("error_log"),
    }
}

/// Single quotes for a shell, as the commands that undo by hand need.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

impl Change {
    /// The tracefs root the change was made under, if it is in tracefs.
    pub(crate) fn root(&self) -> Option<&Path> {
        match self {
            Change::Instance { root, .. }
            | Change::Control { root, .. }
            | Change::Probe { root, .. }
            | Change::Trigger { root, .. } => Some(root),
            Change::TempDir(_) => None,
        }
    }

    /// The same change under another tracefs root.
    fn rebased(&self, new_root: &Path) -> Change {
        let mut change = self.clone();
        match &mut change {
            Change::Instance { root, .. }
            | Change::Control { root, .. }
            | Change::Probe { root, .. }
            | Change::Trigger { root, .. } => *root = new_root.to_path_buf(),
            Change::TempDir(_) => {}
        }
        change
    }

    /// Undoes the change.
    pub(crate) fn undo(&self) -> Result<()> {
        match self {
            Change::Instance { root, name } => {
                let dir = root.join("instances").join(name);
                // A dead owner's instance may still be tracing; stop it
                // first. A live owner has restored tracing_on already.
                let _ = control::write(&dir.join("tracing_on"), "0", WriteMode::Replace, None);
                remove_instance(&dir)
            }
            Change::Control {
                root,
                file,
                restore,
            } => control::apply_restore(&root.join(file), restore, Some(&error_log_of(root, file))),
            Change::Probe { root, file, name } => control::write(
                &root.join(file),
                &format!("-:{name}"),
                WriteMode::Append,
                Some(&error_log_of(root, file)),
            ),
            Change::Trigger {
                root,
                file,
                trigger,
            } => control::write(
                &root.join(file),
                &format!("!{trigger}"),
                WriteMode::Append,
                Some(&error_log_of(root, file)),
            ),
            Change::TempDir(dir) => match std::fs::remove_dir_all(dir) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => Err(Error::TempDir {
                    path: dir.clone(),
                    source: err,
                }),
                _ => Ok(()),
            },
        }
    }

    /// What the change is, for a person.
    pub(crate) fn describe(&self) -> String {
        match self {
            Change::Instance { name, .. } => format!("instance {name}"),
            Change::Control { file, restore, .. } => match restore {
                Restore::Value(value) => format!("{} (was {value:?})", file.display()),
                Restore::List(entries) => {
                    format!("{} (was a list of {})", file.display(), entries.len())
                }
                Restore::ExpandedSize(size) => {
                    format!("{} (expanded size {size})", file.display())
                }
            },
            Change::Probe { name, .. } => format!("probe {name}"),
            Change::Trigger { file, trigger, .. } => {
                format!("trigger {trigger} on {}", file.display())
            }
            Change::TempDir(dir) => format!("temporary directory {}", dir.display()),
        }
    }

    /// True for a change inside one of the instances `instances` (which
    /// removing the instance undoes too).
    fn inside(&self, instances: &[&str]) -> bool {
        let file = match self {
            Change::Control { file, .. } | Change::Trigger { file, .. } => file,
            _ => return false,
        };
        let mut parts = file.components();
        parts.next().is_some_and(|p| p.as_os_str() == "instances")
            && parts
                .next()
                .is_some_and(|p| instances.iter().any(|name| p.as_os_str() == *name))
    }

    /// A shell command that undoes the change.
    pub(crate) fn undo_command(&self) -> String {
        let quoted = |path: &Path| shell_quote(&path.to_string_lossy());
        match self {
            Change::Instance { root, name } => {
                let dir = root.join("instances").join(name);
                format!(
                    "echo 0 > {}; rmdir {}",
                    quoted(&dir.join("tracing_on")),
                    quoted(&dir)
                )
            }
            Change::Control {
                root,
                file,
                restore,
            } => {
                let path = quoted(&root.join(file));
                match restore {
                    Restore::Value(value) | Restore::ExpandedSize(value) => {
                        format!("echo {} > {path}", shell_quote(value))
                    }
                    Restore::List(entries) => std::iter::once(format!(": > {path}"))
                        .chain(
                            entries
                                .iter()
                                .map(|e| format!("echo {} >> {path}", shell_quote(e))),
                        )
                        .collect::<Vec<_>>()
                        .join("; "),
                }
            }
            Change::Probe { root, file, name } => format!(
                "echo {} >> {}",
                shell_quote(&format!("-:{name}")),
                quoted(&root.join(file))
            ),
            Change::Trigger {
                root,
                file,
                trigger,
            } => format!(
                "echo {} >> {}",
                shell_quote(&format!("!{trigger}")),
                quoted(&root.join(file))
            ),
            Change::TempDir(dir) => format!("rm -r {}", quoted(dir)),
        }
    }

    /// The change as the fields of a `+ID` line.
    fn fields(&self) -> Vec<Vec<u8>> {
        let bytes = |path: &Path| path.as_os_str().as_bytes().to_vec();
        let text = |s: &str| s.as_bytes().to_vec();
        match self {
            Change::Instance { root, name } => vec![text("instance"), bytes(root), text(name)],
            Change::Control {
                root,
                file,
                restore,
            } => {
                let mut fields = vec![text("control"), bytes(root), bytes(file)];
                match restore {
                    Restore::Value(value) => fields.extend([text("value"), text(value)]),
                    Restore::ExpandedSize(size) => fields.extend([text("expanded"), text(size)]),
                    Restore::List(entries) => {
                        fields.push(text("list"));
                        fields.extend(entries.iter().map(|e| text(e)));
                    }
                }
                fields
            }
            Change::Probe { root, file, name } => {
                vec![text("probe"), bytes(root), bytes(file), text(name)]
            }
            Change::Trigger {
                root,
                file,
                trigger,
            } => vec![text("trigger"), bytes(root), bytes(file), text(trigger)],
            Change::TempDir(dir) => vec![text("tempdir"), bytes(dir)],
        }
    }

    /// The change a `+ID` line's fields describe.
    fn from_fields(fields: Vec<Vec<u8>>) -> std::result::Result<Change, String> {
        let mut fields = fields.into_iter();
        let kind = fields.next().ok_or("no kind")?;
        let mut next = |what: &str| fields.next().ok_or(format!("no {what}"));
        let path = |bytes: Vec<u8>| PathBuf::from(std::ffi::OsString::from_vec(bytes));
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|_| "text is not UTF-8");
        let change = match kind.as_slice() {
            b"instance" => Change::Instance {
                root: path(next("root")?),
                name: text(next("name")?)?,
            },
            b"control" => {
                let root = path(next("root")?);
                let file = path(next("file")?);
                let restore = match next("restore kind")?.as_slice() {
                    b"value" => Restore::Value(text(next("value")?)?),
                    b"expanded" => Restore::ExpandedSize(text(next("size")?)?),
                    b"list" => {
                        let entries = fields
                            .by_ref()
                            .map(text)
                            .collect::<std::result::Result<_, _>>()?;
                        Restore::List(entries)
                    }
                    other => {
                        return Err(format!(
                            "unknown restore kind {:?}",
                            String::from_utf8_lossy(other)
                        ));
                    }
                };
                Change::Control {
                    root,
                    file,
                    restore,
                }
            }
            b"probe" => Change::Probe {
                root: path(next("root")?),
                file: path(next("file")?),
                name: text(next("name")?)?,
            },
            b"trigger" => Change::Trigger {
                root: path(next("root")?),
                file: path(next("file")?),
                trigger: text(next("trigger")?)?,
            },
            b"tempdir" => Change::TempDir(path(next("path")?)),
            other => {
                return Err(format!(
                    "unknown change {:?}",
                    String::from_utf8_lossy(other)
                ));
            }
        };
        match fields.next() {
            Some(_) => Err("a field too many".into()),
            None => Ok(change),
        }
    }
}

/// rmdir of an instance fails with EBUSY while the kernel still holds a
/// reference from a reader that just closed; that lasts milliseconds.
fn remove_instance(dir: &Path) -> Result<()> {
    let mut attempts = 0;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::EBUSY) && attempts < 50 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(source) => {
                return Err(Error::Instance {
                    action: "remove",
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
}

fn escape(field: &[u8], out: &mut String) {
    if field.is_empty() {
        out.push_str(r"\e");
    }
    for &byte in field {
        match byte {
            b'\\' => out.push_str(r"\\"),
            b'!'..=b'~' => out.push(char::from(byte)),
            _ => out.push_str(&format!(r"\x{byte:02x}")),
        }
    }
}

fn unescape(field: &str) -> std::result::Result<Vec<u8>, String> {
    if field == r"\e" {
        return Ok(Vec::new());
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte != b'\\' {
            out.push(byte);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let hex = bytes
                    .get(i + 2..i + 4)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad \\x escape in {field:?}"))?;
                out.push(hex);
                i += 4;
            }
            _ => return Err(format!("bad escape in {field:?}")),
        }
    }
    Ok(out)
}

/// The `+ID ...` line that records `change`.
fn change_line(id: u64, change: &Change) -> String {
    let mut line = format!("+{id}");
    for field in change.fields() {
        line.push(' ');
        escape(&field, &mut line);
    }
    line.push('\n');
    line
}

/// What a journal says: whose it was, and the changes not undone, oldest
/// first.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub(crate) pid: Option<u32>,
    pub(crate) pending: Vec<(u64, Change)>,
}

/// Reads a journal's text; the error says which line is wrong and why.
pub(crate) fn parse(text: &[u8]) -> std::result::Result<Recorded, String> {
    let text = std::str::from_utf8(text).map_err(|_| "not text".to_string())?;
    // A last line without its newline was cut short: ignored.
    let Some(end) = text.rfind('\n') else {
        // Its writer died before the header was complete: nothing was
        // changed yet.
        return Ok(Recorded::default());
    };
    let complete = &text[..end];
    let mut lines = complete.split('\n').enumerate();
    match lines.next() {
        Some((_, HEADER)) => {}
        Some((_, other)) if other.starts_with("kscope-journal ") => {
            return Err(format!("line 1: unknown version: {other:?}"));
        }
        _ => return Err("line 1: not a kscope journal".into()),
    }
    let mut recorded = Recorded::default();
    let mut pending = BTreeMap::new();
    for (index, line) in lines {
        let bad = |why: String| format!("line {}: {why}", index + 1);
        let mut words = line.split(' ');
        let head = words.next().unwrap_or_default();
        let id = |digits: &str| {
            digits
                .parse::<u64>()
                .map_err(|_| bad(format!("bad id {digits:?}")))
        };
        if let Some(digits) = head.strip_prefix('+') {
            let id = id(digits)?;
            let fields = words.map(unescape).collect::<std::result::Result<_, _>>();
            let change = Change::from_fields(fields.map_err(&bad)?).map_err(&bad)?;
            if pending.insert(id, change).is_some() {
                return Err(bad(format!("id {id} recorded twice")));
            }
        } else if let Some(digits) = head.strip_prefix('-') {
            pending.remove(&id(digits)?);
        } else if head == "pid" {
            let value = words.next().unwrap_or_default();
            recorded.pid = Some(
                value
                    .parse()
                    .map_err(|_| bad(format!("bad pid {value:?}")))?,
            );
        } else {
            return Err(bad(format!("unknown line {line:?}")));
        }
    }
    recorded.pending = pending.into_iter().collect();
    Ok(recorded)
}

/// This process's journal file, open for writing and locked.
#[derive(Debug)]
struct Writer {
    dir: PrivateDir,
    name: String,
    file: File,
    path: PathBuf,
    /// Changes recorded and not yet settled.
    open: usize,
    next_id: u64,
}

static WRITER: Mutex<Option<Writer>> = Mutex::new(None);

fn writer() -> std::sync::MutexGuard<'static, Option<Writer>> {
    // Each write is complete or the error is returned: a panic while
    // holding the lock leaves nothing half-done in memory.
    WRITER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Writer {
    /// Creates a new journal in `dir`, safely (kscope-outfile's private
    /// directory: checked or made 0700, the file created O_EXCL without
    /// following a link), locks it, and checks that it is still under its
    /// name (a scan may have taken a file between its creation and its
    /// lock for a dead one's, and deleted it).
    fn create(dir: &Path) -> Result<Writer> {
        let dir = PrivateDir::open_or_create(dir)?;
        let pid = std::process::id();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let failed = |path: &Path, source| Error::Journal {
            path: path.to_path_buf(),
            source,
        };
        for attempt in 0..100u32 {
            let name = format!("{pid}-{nanos:x}-{attempt}{SUFFIX}");
            let path = dir.path().join(&name);
            let file = match dir.create_file(&name) {
                Ok(file) => file,
                Err(kscope_outfile::Error::Io { source, .. })
                    if source.kind() == io::ErrorKind::AlreadyExists =>
                {
                    continue;
                }
                Err(err) => return Err(err.into()),
            };
            file.lock().map_err(|source| failed(&path, source))?;
            if !dir.still_holds(&name, &file)? {
                continue;
            }
            let mut writer = Writer {
                dir,
                name,
                file,
                path,
                open: 0,
                next_id: 1,
            };
            writer
                .append(&format!("{HEADER}\npid {pid}\n"))
                .map_err(|source| failed(&writer.path, source))?;
            return Ok(writer);
        }
        Err(failed(
            dir.path(),
            io::Error::new(io::ErrorKind::AlreadyExists, "no free journal name"),
        ))
    }

    /// Appends `text` in one write and flushes it to the file.
    fn append(&mut self, text: &str) -> io::Result<()> {
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()
    }
}

/// Records `change` in this process's journal, creating the journal on
/// the first change, before the change is made. Returns its id, for
/// [`settle`].
pub(crate) fn record(change: &Change) -> Result<u64> {
    let mut slot = writer();
    let writer = match slot.take() {
        Some(writer) => writer,
        None => Writer::create(&run_dir())?,
    };
    let writer = slot.insert(writer);
    let id = writer.next_id;
    writer
        .append(&change_line(id, change))
        .map_err(|source| Error::Journal {
            path: writer.path.clone(),
            source,
        })?;
    writer.next_id += 1;
    writer.open += 1;
    Ok(id)
}

/// Marks change `id` undone (or never made). The journal is deleted when
/// no change is left in it.
pub(crate) fn settle(id: u64) -> Result<()> {
    let mut slot = writer();
    let Some(writer) = slot.as_mut() else {
        return Ok(());
    };
    let failed = |path: &Path, source| Error::Journal {
        path: path.to_path_buf(),
        source,
    };
    writer
        .append(&format!("-{id}\n"))
        .map_err(|source| failed(&writer.path, source))?;
    writer.open = writer.open.saturating_sub(1);
    if writer.open == 0 {
        // Deleted while still locked, then closed.
        writer.dir.remove_file(&writer.name)?;
        *slot = None;
    }
    Ok(())
}

/// The path of this process's journal, while it has one.
#[cfg(test)]
pub(crate) fn current_path() -> Option<PathBuf> {
    writer().as_ref().map(|w| w.path.clone())
}

/// A journal left by a kscope that ended without undoing its changes.
#[derive(Debug, Clone)]
pub struct Leftover {
    /// The journal file.
    pub journal: PathBuf,
    /// The pid the dead kscope had (in its pid namespace), when recorded.
    pub pid: Option<u32>,
    /// What was left, newest first: one entry per change, but for the
    /// changes inside a left instance, which its removal undoes too.
    pub changes: Vec<String>,
    /// Shell commands that undo it by hand, newest first, the journal's
    /// own deletion last.
    pub commands: Vec<String>,
    /// Why the journal could not be read, when it could not.
    pub corrupt: Option<String>,
    pending: Vec<Change>,
}

impl Leftover {
    fn new(journal: PathBuf, text: &[u8], rebase: &dyn Fn(&Change) -> Change) -> Leftover {
        let (pid, pending, corrupt) = match parse(text) {
            Ok(recorded) => (
                recorded.pid,
                recorded
                    .pending
                    .iter()
                    .rev()
                    .map(|(_, change)| rebase(change))
                    .collect(),
                None,
            ),
            Err(why) => (None, Vec::new(), Some(why)),
        };
        let commands = pending
            .iter()
            .map(Change::undo_command)
            .chain(std::iter::once(format!(
                "rm {}",
                shell_quote(&journal.to_string_lossy())
            )))
            .collect();
        let instances: Vec<&str> = pending
            .iter()
            .filter_map(|change| match change {
                Change::Instance { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        let changes = pending
            .iter()
            .filter(|change| !change.inside(&instances))
            .map(Change::describe)
            .collect();
        Leftover {
            journal,
            pid,
            changes,
            commands,
            corrupt,
            pending,
        }
    }

    /// Undoes every change, newest first; a change whose file is gone
    /// (its instance removed by someone else, a probe already deleted)
    /// counts as undone.
    fn undo(&self) -> Result<()> {
        let mut failures = Vec::new();
        for change in &self.pending {
            match change.undo() {
                Err(err) if !is_not_found(&err) => failures.push(err),
                _ => {}
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Error::Restore(failures))
        }
    }
}

fn is_not_found(err: &Error) -> bool {
    let source = match err {
        Error::Write { source, .. }
        | Error::Read { source, .. }
        | Error::Instance { source, .. } => source,
        _ => return false,
    };
    source.kind() == io::ErrorKind::NotFound
}

/// Where to undo a change recorded under tracefs root `recorded`: a
/// journal's root may be a mount point of a dead process's private
/// namespace, or tracefs may be mounted elsewhere here. Every tracefs
/// mount shows the one tree, so a recorded root that is kscope's own
/// mount point or a tracefs mount here maps to `current`, the tracefs
/// this run uses; any other root (a plain directory) is kept.
pub(crate) fn rebase_root<'a>(
    recorded: &'a Path,
    tracefs_mounts: &[PathBuf],
    current: Option<&'a Path>,
) -> &'a Path {
    let is_tracefs =
        recorded == Path::new(DEFAULT_MOUNT) || tracefs_mounts.iter().any(|m| m == recorded);
    match current {
        Some(current) if is_tracefs => current,
        _ => recorded,
    }
}

/// One leftover journal and what happened to it.
#[derive(Debug)]
pub enum LeftoverOutcome {
    /// Everything was undone and the journal deleted.
    Undone(Leftover),
    /// Something could not be undone (or the journal is corrupt): the
    /// journal stays, and `Leftover::commands` undo it by hand.
    Failed(Leftover, Error),
}

/// One journal found by [`scan`], locked while it is looked at.
struct Found<'a> {
    dir: &'a PrivateDir,
    name: &'a str,
    path: PathBuf,
}

impl Found<'_> {
    /// Deletes the journal (through its directory, never through a link).
    fn remove(&self) -> Result<()> {
        Ok(self.dir.remove_file(self.name)?)
    }
}

/// The journals in `dir` whose lock is free, each locked while `each`
/// looks at it. A missing directory has none; one that is not private
/// (a link, another user's, writable by others) is refused.
fn scan(dir: &Path, mut each: impl FnMut(&Found<'_>, &[u8])) -> Result<()> {
    let dir = match PrivateDir::open(dir) {
        Ok(dir) => dir,
        Err(kscope_outfile::Error::MissingDirectory { .. }) => return Ok(()),
        Err(kscope_outfile::Error::Io { source, .. })
            if source.kind() == io::ErrorKind::NotFound =>
        {
            return Ok(());
        }
        // Root's journals, say, looked at by another user.
        Err(kscope_outfile::Error::Io { source, path, .. }) => {
            return Err(Error::Journal { path, source });
        }
        Err(err) => return Err(err.into()),
    };
    let mut names: Vec<String> = dir
        .names()?
        .into_iter()
        .filter_map(|name| name.into_string().ok())
        .filter(|name| name.ends_with(SUFFIX))
        .collect();
    names.sort();
    for name in &names {
        // Gone, a link, or unreadable: not a journal this run can judge.
        let Ok(mut file) = dir.open_file(name) else {
            continue;
        };
        // Held: its kscope is alive (this process's own included).
        if file.try_lock().is_err() || !dir.still_holds(name, &file).unwrap_or(false) {
            continue;
        }
        let mut text = Vec::new();
        if file.read_to_end(&mut text).is_err() {
            continue;
        }
        let found = Found {
            dir: &dir,
            name,
            path: dir.path().join(name),
        };
        each(&found, &text);
    }
    Ok(())
}

fn tracefs_mounts() -> Vec<PathBuf> {
    read_mountinfo()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.fstype == "tracefs")
        .map(|m| m.mount_point)
        .collect()
}

/// The leftovers in the journal directory, without changing anything (the
/// locks are taken only to tell the dead from the living).
pub fn find_leftovers() -> Result<Vec<Leftover>> {
    find_leftovers_in(&run_dir(), current_tracefs().as_deref())
}

fn current_tracefs() -> Option<PathBuf> {
    crate::Tracefs::find()
        .ok()
        .flatten()
        .map(|fs| fs.root().to_path_buf())
}

fn rebaser(current: Option<&Path>) -> impl Fn(&Change) -> Change + '_ {
    let mounts = tracefs_mounts();
    move |change: &Change| match change.root() {
        Some(root) => change.rebased(rebase_root(root, &mounts, current)),
        None => change.clone(),
    }
}

pub(crate) fn find_leftovers_in(dir: &Path, current: Option<&Path>) -> Result<Vec<Leftover>> {
    let rebase = rebaser(current);
    let mut found = Vec::new();
    scan(dir, |journal, text| {
        let leftover = Leftover::new(journal.path.clone(), text, &rebase);
        if leftover.corrupt.is_some() || !leftover.pending.is_empty() {
            found.push(leftover);
        } else {
            // Nothing left to undo: its owner died between its last undo
            // and the deletion.
            let _ = journal.remove();
        }
    })?;
    Ok(found)
}

/// Undoes what every dead kscope left, as its journal says, and deletes
/// each journal undone. Called at the start of every run that touches
/// tracefs.
pub fn undo_leftovers() -> Result<Vec<LeftoverOutcome>> {
    undo_leftovers_in(&run_dir(), current_tracefs().as_deref())
}

pub(crate) fn undo_leftovers_in(
    dir: &Path,
    current: Option<&Path>,
) -> Result<Vec<LeftoverOutcome>> {
    let rebase = rebaser(current);
    let mut outcomes = Vec::new();
    scan(dir, |journal, text| {
        let leftover = Leftover::new(journal.path.clone(), text, &rebase);
        let outcome = match &leftover.corrupt {
            Some(why) => Err(Error::CorruptJournal {
                path: journal.path.clone(),
                reason: why.clone(),
            }),
            None => leftover.undo().and_then(|()| journal.remove()),
        };
        match outcome {
            Ok(()) if leftover.pending.is_empty() => {}
            Ok(()) => outcomes.push(LeftoverOutcome::Undone(leftover)),
            Err(err) => outcomes.push(LeftoverOutcome::Failed(leftover, err)),
        }
    })?;
    Ok(outcomes)
}

#[cfg(test)]
mod tests;
