//! `StateGuard`: the only way this crate changes the kernel. Every change
//! (an instance, a control value, a probe definition, a trigger, and the
//! temporary directory of a recording) is written to this process's
//! journal under /run/kscope before it is made (see `journal`), kept with
//! what is needed to undo it, and undone in reverse order on `restore`, on
//! drop, on a panic of the owning thread (or of the main thread, whose end
//! ends the process), and on SIGINT, SIGTERM, SIGHUP and SIGQUIT once
//! `restore_on_signals` has been called. What a SIGKILL leaves, the next
//! kscope undoes from the journal.
//!
//! The in-memory journal is locked while a change is made, so a signal that
//! arrives mid-change waits for the change to be recorded and then undoes
//! it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, TryLockError, Weak};
use std::thread::ThreadId;

use crate::control::{self, WriteMode};
use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::journal::{self, Change};
use crate::mount::Tracefs;
use crate::namespace::{KernelFs, mount_privately};
use crate::sys;

#[derive(Debug)]
struct Journal {
    owner: ThreadId,
    /// Each change with its id in the persistent journal, oldest first.
    changes: Vec<(u64, Change)>,
}

type SharedJournal = Arc<Mutex<Journal>>;

/// Every journal that is still alive, so that a signal or a panic can
/// restore them all.
static LIVE: Mutex<Vec<Weak<Mutex<Journal>>>> = Mutex::new(Vec::new());
static PANIC_HOOK: Once = Once::new();
static SIGNAL_THREAD: Once = Once::new();

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the data consistent for us:
    // each change is pushed only once it is complete.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Which kind of probe file a definition goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeFile {
    /// `uprobe_events`, group `uprobes` by default.
    Uprobe,
    /// `kprobe_events`, group `kprobes` by default.
    Kprobe,
}

impl ProbeFile {
    fn path(self, fs: &Tracefs) -> PathBuf {
        fs.root().join(self.file_name())
    }

    fn file_name(self) -> &'static str {
        match self {
            ProbeFile::Uprobe => "uprobe_events",
            ProbeFile::Kprobe => "kprobe_events",
        }
    }

    fn default_group(self) -> &'static str {
        match self {
            ProbeFile::Uprobe => "uprobes",
            ProbeFile::Kprobe => "kprobes",
        }
    }
}

/// Records every change made to tracefs and undoes them all when dropped.
///
/// ```no_run
/// use kscope_tracefs::StateGuard;
/// let guard = StateGuard::new();
/// let fs = guard.tracefs()?;
/// let instance = guard.private_instance(&fs)?;
/// guard.enable_event(&instance, "sched", "sched_switch")?;
/// // ... read the instance's buffers ...
/// guard.restore()?; // or let it drop
/// # Ok::<(), kscope_tracefs::Error>(())
/// ```
#[derive(Debug)]
pub struct StateGuard {
    journal: SharedJournal,
}

impl Default for StateGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl StateGuard {
    /// A guard with nothing recorded yet, owned by the calling thread.
    pub fn new() -> StateGuard {
        PANIC_HOOK.call_once(install_panic_hook);
        let journal = Arc::new(Mutex::new(Journal {
            owner: std::thread::current().id(),
            changes: Vec::new(),
        }));
        let mut live = lock(&LIVE);
        live.retain(|weak| weak.strong_count() > 0);
        live.push(Arc::downgrade(&journal));
        StateGuard { journal }
    }

    /// How many changes are recorded and not yet undone.
    pub fn pending(&self) -> usize {
        lock(&self.journal).changes.len()
    }

    /// The mounted tracefs; when there is none and we are root, mounts it
    /// in this process's private mount namespace (see
    /// [`mount_privately`]), where it vanishes with the process: nothing
    /// is recorded, nothing global changes.
    pub fn tracefs(&self) -> Result<Tracefs> {
        if let Some(fs) = Tracefs::find()? {
            return Ok(fs);
        }
        mount_privately(&[KernelFs::Tracefs])?;
        Tracefs::find()?.ok_or_else(|| Error::NotMounted {
            what: KernelFs::Tracefs.fstype().to_string(),
            hint: String::new(),
        })
    }

    /// Records `change` in the persistent journal, runs `apply` (which
    /// makes it), and keeps it for undoing when `apply` succeeded. Called
    /// with the in-memory journal locked.
    fn make(
        journal: &mut Journal,
        change: Change,
        apply: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let id = journal::record(&change)?;
        match apply() {
            Ok(()) => {
                journal.changes.push((id, change));
                Ok(())
            }
            Err(err) => {
                // Never made: nothing to undo. A journal that cannot say
                // so only makes a later run undo what is already undone.
                let _ = journal::settle(id);
                Err(err)
            }
        }
    }

    /// Creates `instances/NAME` and records it. When the top-level buffer
    /// has not been expanded yet, also records how to leave it at its
    /// expanded size (see `Restore::ExpandedSize`): on kernels before 6.2,
    /// using an instance flips the top buffer's global "expanded" flag.
    pub fn create_instance(&self, fs: &Tracefs, name: &str) -> Result<Instance> {
        let dir = fs.root().join("instances").join(name);
        let top_buffer = fs.top().file("buffer_size_kb");
        let unexpanded = control::read(&top_buffer)
            .ok()
            .and_then(|text| control::unexpanded_size(&text));
        let mut journal = lock(&self.journal);
        if let Some(size) = unexpanded {
            let change = Change::Control {
                root: fs.root().to_path_buf(),
                file: PathBuf::from("buffer_size_kb"),
                restore: control::Restore::ExpandedSize(size),
            };
            Self::make(&mut journal, change, || Ok(()))?;
        }
        let change = Change::Instance {
            root: fs.root().to_path_buf(),
            name: name.to_string(),
        };
        Self::make(&mut journal, change, || {
            std::fs::create_dir(&dir).map_err(|source| Error::Instance {
                action: "create",
                path: dir.clone(),
                source,
            })
        })?;
        Ok(Instance::new(dir, Some(name.to_string())))
    }

    /// Creates this process's private instance, `instances/kscope-<pid>`.
    pub fn private_instance(&self, fs: &Tracefs) -> Result<Instance> {
        self.create_instance(fs, &private_instance_name())
    }

    /// Writes `value` to the control file `relative` of `instance` after
    /// recording how to restore what it held. Triggers and probe
    /// definitions have calls of their own.
    pub fn set(&self, instance: &Instance, relative: &str, value: &str) -> Result<()> {
        let path = instance.file(relative);
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(use_instead) = control::dedicated_call(&file_name) {
            return Err(Error::NotAPlainSetting { path, use_instead });
        }
        let error_log = instance.error_log();
        let mut journal = lock(&self.journal);
        let previous = control::read(&path)?;
        let (root, file) = instance.in_root(relative);
        let change = Change::Control {
            root,
            file,
            restore: control::restore_for(&file_name, &previous),
        };
        Self::make(&mut journal, change, || {
            control::write(&path, value, WriteMode::Replace, Some(&error_log))
        })
    }

    /// Turns recording on or off in `instance`.
    pub fn set_tracing_on(&self, instance: &Instance, on: bool) -> Result<()> {
        self.set(instance, "tracing_on", if on { "1" } else { "0" })
    }

    /// Sets the per-CPU buffer size of `instance`.
    pub fn set_buffer_size_kb(&self, instance: &Instance, kb: u64) -> Result<()> {
        self.set(instance, "buffer_size_kb", &kb.to_string())
    }

    /// Enables one event in `instance`.
    pub fn enable_event(&self, instance: &Instance, system: &str, event: &str) -> Result<()> {
        let relative = format!("{}/enable", Instance::event_path(system, event));
        self.set(instance, &relative, "1")
    }

    /// Sets one event's filter in `instance` (kernel filter syntax).
    pub fn set_filter(
        &self,
        instance: &Instance,
        system: &str,
        event: &str,
        filter: &str,
    ) -> Result<()> {
        let relative = format!("{}/filter", Instance::event_path(system, event));
        self.set(instance, &relative, filter)
    }

    /// Adds a trigger (`traceoff`, `stacktrace`, `hist:...`) to one event;
    /// undone by writing it back with a leading `!`.
    pub fn add_trigger(
        &self,
        instance: &Instance,
        system: &str,
        event: &str,
        trigger: &str,
    ) -> Result<()> {
        let relative = format!("{}/trigger", Instance::event_path(system, event));
        let path = instance.file(&relative);
        let error_log = instance.error_log();
        let trigger = trigger.trim().to_string();
        let mut journal = lock(&self.journal);
        let (root, file) = instance.in_root(&relative);
        let change = Change::Trigger {
            root,
            file,
            trigger: trigger.clone(),
        };
        Self::make(&mut journal, change, || {
            control::write(&path, &trigger, WriteMode::Append, Some(&error_log))
        })
    }

    /// Defines a uprobe or kprobe (`p:GROUP/EVENT TARGET ...`, `r:...`).
    /// The definition must name its event so that it can be removed again;
    /// returns `GROUP/EVENT`.
    pub fn add_probe(&self, fs: &Tracefs, file: ProbeFile, definition: &str) -> Result<String> {
        let name = probe_name(definition, file.default_group())?;
        let path = file.path(fs);
        let error_log = fs.top().error_log();
        let mut journal = lock(&self.journal);
        let change = Change::Probe {
            root: fs.root().to_path_buf(),
            file: PathBuf::from(file.file_name()),
            name: name.clone(),
        };
        Self::make(&mut journal, change, || {
            control::write(&path, definition, WriteMode::Append, Some(&error_log))
        })?;
        Ok(name)
    }

    /// Records a temporary directory (a recording's per-CPU files) so that
    /// it is deleted with everything in it on restore, and by a later
    /// kscope if this one is killed. Call it before creating the directory,
    /// or right after when creating it is what chooses its name.
    pub fn journal_temp_dir(&self, dir: &Path) -> Result<()> {
        let dir = std::path::absolute(dir).map_err(|source| Error::TempDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut journal = lock(&self.journal);
        Self::make(&mut journal, Change::TempDir(dir), || Ok(()))
    }

    /// Undoes every recorded change, newest first. Every change is tried;
    /// the failures are returned together.
    pub fn restore(self) -> Result<()> {
        restore_journal(&mut lock(&self.journal))
    }
}

impl Drop for StateGuard {
    fn drop(&mut self) {
        if let Err(err) = restore_journal(&mut lock(&self.journal)) {
            // Drop has no caller to return to; this is the one place where
            // the library speaks for itself.
            eprintln!("kscope: {err}");
        }
    }
}

/// `kscope-<pid>`: the name of this process's private instance.
pub fn private_instance_name() -> String {
    format!("kscope-{}", std::process::id())
}

/// Extracts `GROUP/EVENT` from a probe definition.
fn probe_name(definition: &str, default_group: &str) -> Result<String> {
    let bad = |reason| Error::ProbeDefinition {
        definition: definition.to_string(),
        reason,
    };
    let head = definition
        .split_whitespace()
        .next()
        .ok_or_else(|| bad("empty"))?;
    let (kind, name) = head
        .split_once(':')
        .ok_or_else(|| bad("it must be named: p:GROUP/EVENT or r:GROUP/EVENT"))?;
    let mut kind_chars = kind.chars();
    if !matches!(kind_chars.next(), Some('p' | 'r')) || !kind_chars.all(|c| c.is_ascii_digit()) {
        return Err(bad(
            "it must start with p: or r: (removals are done by the guard)",
        ));
    }
    if name.is_empty() || name.ends_with('/') {
        return Err(bad("the event name is empty"));
    }
    Ok(if name.contains('/') {
        name.to_string()
    } else {
        format!("{default_group}/{name}")
    })
}

fn restore_journal(journal: &mut Journal) -> Result<()> {
    let mut failures = Vec::new();
    while let Some((id, change)) = journal.changes.pop() {
        // A change that could not be undone stays in the persistent
        // journal, for a later run to retry or name.
        match change.undo().and_then(|()| journal::settle(id)) {
            Ok(()) => {}
            Err(err) => failures.push(err),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Restore(failures))
    }
}

/// Restores every live journal that `select` picks, newest first, as drops
/// would: a later guard may have changed what an earlier one changed, or
/// work inside an earlier one's mount. Uses `try_lock` when called from a
/// panic, whose thread may hold a journal's lock.
fn restore_live(select: impl Fn(&Journal) -> bool, blocking: bool) {
    let live: Vec<SharedJournal> = lock(&LIVE).iter().filter_map(Weak::upgrade).collect();
    for journal in live.into_iter().rev() {
        let mut guard = if blocking {
            lock(&journal)
        } else {
            match journal.try_lock() {
                Ok(guard) => guard,
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => continue,
            }
        };
        if select(&guard)
            && let Err(err) = restore_journal(&mut guard)
        {
            eprintln!("kscope: {err}");
        }
    }
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        let current = std::thread::current();
        // The end of the main thread ends the process and every other
        // thread with it, without their drops.
        let is_main = current.name() == Some("main");
        let id = current.id();
        restore_live(|journal| is_main || journal.owner == id, false);
    }));
}

static GRACEFUL_INTERRUPT: AtomicBool = AtomicBool::new(false);
/// The signal that interrupted a graceful program; 0 before one came.
static INTERRUPTING: AtomicI32 = AtomicI32::new(0);

/// Makes the first SIGINT (Ctrl-C), SIGTERM or SIGHUP only set
/// [`interrupted`], for a program that stops what it is doing and restores
/// by itself (a trace stream that still prints what it has, and must close
/// its per-CPU files before its instance can be removed), then ends with
/// [`end_as_interrupted`]. A second such signal, and SIGQUIT, still
/// restore at once and end the process.
pub fn handle_interrupt_gracefully() {
    GRACEFUL_INTERRUPT.store(true, Ordering::SeqCst);
}

/// True once a SIGINT, SIGTERM or SIGHUP arrived under
/// [`handle_interrupt_gracefully`].
pub fn interrupted() -> bool {
    INTERRUPTING.load(Ordering::SeqCst) != 0
}

/// For a program that stopped gracefully on a signal and has restored
/// what it changed: ends the process by that signal's default action, so
/// that its parent (a shell, a script's loop) sees it killed by the
/// signal, as it would have been without kscope's handler. Returns when
/// no signal interrupted it.
pub fn end_as_interrupted() {
    let signal = INTERRUPTING.load(Ordering::SeqCst);
    if signal == 0 {
        return;
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    end_by(signal)
}

/// Ends the process with `signal`'s own default action, so the exit
/// status tells what happened (128 + signal if that fails).
fn end_by(signal: i32) -> ! {
    if let Err(err) = signal_hook::low_level::emulate_default_handler(signal) {
        eprintln!("kscope: {err}");
    }
    std::process::exit(128 + signal)
}

/// Makes SIGINT, SIGTERM, SIGHUP and SIGQUIT restore every live guard and
/// then end the process as the signal would have. A signal this process
/// inherited as ignored (`nohup`, a background job of a non-interactive
/// shell) stays ignored. Call it once, early, in a program that changes
/// tracefs; later calls do nothing.
pub fn restore_on_signals() -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let mut result = Ok(());
    SIGNAL_THREAD.call_once(|| {
        let mut watched = Vec::new();
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGQUIT] {
            match sys::signal_ignored(signal) {
                Ok(true) => {}
                Ok(false) => watched.push(signal),
                Err(err) => {
                    result = Err(err);
                    return;
                }
            }
        }
        result = signal_hook::iterator::Signals::new(watched).and_then(|mut signals| {
            std::thread::Builder::new()
                .name("kscope-signals".into())
                .spawn(move || {
                    for signal in signals.forever() {
                        let graceful = signal != SIGQUIT
                            && GRACEFUL_INTERRUPT.load(Ordering::SeqCst)
                            && INTERRUPTING
                                .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
                                .is_ok();
                        if graceful {
                            continue;
                        }
                        restore_live(|_| true, true);
                        end_by(signal);
                    }
                })
                .map(drop)
        });
    });
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_names_are_taken_from_the_definition() {
        assert_eq!(
            probe_name("p:kscope/open /bin/true:0x10", "uprobes").unwrap(),
            "kscope/open"
        );
        assert_eq!(
            probe_name("r:myret /bin/true:0x10 $retval", "uprobes").unwrap(),
            "uprobes/myret"
        );
        assert_eq!(
            probe_name("r10:kp vfs_read", "kprobes").unwrap(),
            "kprobes/kp"
        );
    }

    #[test]
    fn unnamed_or_odd_probe_definitions_are_refused() {
        for bad in [
            "",
            "p /bin/true:0x10",
            "-:kscope/open",
            "x:a b",
            "p:grp/ b",
            "p: b",
        ] {
            assert!(probe_name(bad, "uprobes").is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_guard_restores_plain_files_in_reverse_order() {
        // Removed when dropped, a failing assertion included.
        let dir_holder = tempfile::Builder::new()
            .prefix("kscope-guard-")
            .tempdir()
            .expect("a temp dir");
        let dir = dir_holder.path().to_path_buf();
        std::fs::create_dir_all(dir.join("events/sched/sched_switch")).unwrap();
        std::fs::write(dir.join("tracing_on"), "1\n").unwrap();
        std::fs::write(dir.join("events/sched/sched_switch/filter"), "none\n").unwrap();
        std::fs::write(dir.join("set_event"), "a:b\n").unwrap();
        let instance = Instance::new(dir.clone(), None);
        let guard = StateGuard::new();
        guard.set_tracing_on(&instance, false).unwrap();
        guard.set_tracing_on(&instance, true).unwrap();
        guard.set(&instance, "tracing_on", "0").unwrap();
        guard
            .set_filter(&instance, "sched", "sched_switch", "pid == 1")
            .unwrap();
        guard.set(&instance, "set_event", "c:d").unwrap();
        assert_eq!(guard.pending(), 5);
        guard.restore().unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("tracing_on"))
                .unwrap()
                .trim_end()
                .to_string(),
            "1"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("events/sched/sched_switch/filter"))
                .unwrap()
                .trim_end()
                .to_string(),
            "0"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("set_event"))
                .unwrap()
                .trim_end()
                .to_string(),
            "a:b"
        );
    }

    #[test]
    fn triggers_and_probe_files_are_refused_by_the_plain_setter() {
        let instance = Instance::new(PathBuf::from("/nonexistent-kscope"), None);
        let guard = StateGuard::new();
        for file in [
            "events/sched/sched_switch/trigger",
            "uprobe_events",
            "trace",
        ] {
            let err = guard.set(&instance, file, "x").unwrap_err();
            assert!(
                matches!(err, Error::NotAPlainSetting { .. }),
                "{file}: {err}"
            );
        }
        assert_eq!(guard.pending(), 0);
    }

    #[test]
    fn a_change_is_journaled_before_it_is_made_and_marked_once_undone() {
        // Removed when dropped, a failing assertion included.
        let dir_holder = tempfile::Builder::new()
            .prefix("kscope-journaled-")
            .tempdir()
            .expect("a temp dir");
        let dir = dir_holder.path().to_path_buf();
        std::fs::write(dir.join("tracing_on"), "1\n").unwrap();
        let instance = Instance::new(dir.clone(), None);
        let guard = StateGuard::new();
        guard.set_tracing_on(&instance, false).unwrap();
        // A write that fails is journaled too (before it is tried), and
        // marked undone at once.
        let read_only = Instance::new(PathBuf::from("/proc"), None);
        assert!(guard.set(&read_only, "version", "1").is_err());
        let path = journal::current_path().expect("a journal while a change is held");
        let text = std::fs::read_to_string(&path).unwrap();
        let root = dir.to_string_lossy().into_owned();
        let ours = |text: &str| -> Vec<u64> {
            journal::parse(text.as_bytes())
                .unwrap()
                .pending
                .into_iter()
                .filter(|(_, change)| change.root() == Some(dir.as_path()))
                .map(|(id, _)| id)
                .collect()
        };
        assert!(
            text.contains(&format!(" control {root} tracing_on value 1\n")),
            "{text}"
        );
        let refused = text
            .lines()
            .find(|l| l.contains(" control /proc version value "))
            .expect("the refused write journaled");
        let id = refused
            .split(' ')
            .next()
            .unwrap_or_default()
            .replace('+', "-");
        assert!(text.lines().any(|l| l == id), "{text}");
        assert_eq!(ours(&text).len(), 1, "{text}");
        assert_eq!(
            std::fs::read_to_string(dir.join("tracing_on")).unwrap(),
            "0\n"
        );
        guard.restore().unwrap();
        // Deleted, or (another test's change still held) marked undone.
        if let Ok(text) = std::fs::read_to_string(&path) {
            assert!(ours(&text).is_empty(), "{text}");
        }
    }

    #[test]
    fn a_failed_write_records_nothing() {
        let instance = Instance::new(PathBuf::from("/nonexistent-kscope"), None);
        let guard = StateGuard::new();
        assert!(guard.set_tracing_on(&instance, true).is_err());
        assert_eq!(guard.pending(), 0);
    }

    #[test]
    fn a_panic_on_another_thread_restores_only_that_threads_guards() {
        // Removed when dropped, a failing assertion included.
        let dir_holder = tempfile::Builder::new()
            .prefix("kscope-panic-")
            .tempdir()
            .expect("a temp dir");
        let dir = dir_holder.path().to_path_buf();
        std::fs::write(dir.join("tracing_on"), "1").unwrap();
        std::fs::write(dir.join("buffer_size_kb"), "1408").unwrap();
        let instance = Instance::new(dir.clone(), None);
        let mine = StateGuard::new();
        mine.set_buffer_size_kb(&instance, 64).unwrap();
        let worker_instance = instance.clone();
        let outcome = std::thread::spawn(move || {
            let theirs = StateGuard::new();
            theirs.set_tracing_on(&worker_instance, false).unwrap();
            // Leak it so that only the panic hook can restore it.
            std::mem::forget(theirs);
            panic!("worker fails on purpose");
        })
        .join();
        assert!(outcome.is_err());
        assert_eq!(
            std::fs::read_to_string(dir.join("tracing_on"))
                .unwrap()
                .trim_end()
                .to_string(),
            "1"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("buffer_size_kb"))
                .unwrap()
                .trim_end()
                .to_string(),
            "64"
        );
        assert_eq!(mine.pending(), 1);
        drop(mine);
        assert_eq!(
            std::fs::read_to_string(dir.join("buffer_size_kb"))
                .unwrap()
                .trim_end()
                .to_string(),
            "1408"
        );
    }
}
