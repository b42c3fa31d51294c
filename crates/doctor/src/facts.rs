//! The facts a diagnosis rests on: what the kernel showed when doctor
//! looked (files read, files opened, the BPF and perf syscalls tried),
//! recorded as plain data with no verdict in it. [`Facts::gather`]
//! collects them from the running kernel (through `sys`, which does
//! every read and call, itself or through the file readers it alone
//! calls); [`Facts::judge`] decides from them
//! alone. So a diagnosis can be replayed on facts recorded elsewhere
//! (`kscope doctor --facts` prints them as JSON) and each verdict tested
//! with the syscall answer it depends on (EPERM, ENOENT, ...) made up.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::KernelIdentity;
use crate::debuginfo::DebugCandidate;
use crate::parse::config::{KernelConfig, OptionValue, describe};
use crate::parse::events::EventList;
use crate::parse::kallsyms::KallsymsSummary;
use crate::parse::limits::Limit;

/// The perf PMU directory of uprobes.
pub(crate) const UPROBE_PMU: &str = "/sys/bus/event_source/devices/uprobe";
/// The perf PMU directory of kprobes.
pub(crate) const KPROBE_PMU: &str = "/sys/bus/event_source/devices/kprobe";
/// The perf PMU directory of tracepoints.
pub(crate) const TRACEPOINT_PMU: &str = "/sys/bus/event_source/devices/tracepoint";
/// The kernel's own BTF.
pub(crate) const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
/// How much memory is reserved for a crash kernel, in bytes.
pub(crate) const KEXEC_CRASH_SIZE: &str = "/sys/kernel/kexec_crash_size";
/// `1` when a crash kernel is loaded.
pub(crate) const KEXEC_CRASH_LOADED: &str = "/sys/kernel/kexec_crash_loaded";
/// Where securityfs is when nothing says otherwise.
pub(crate) const SECURITYFS: &str = "/sys/kernel/security";

/// The kernel options the verdicts quote or weigh: the only ones a
/// [`ConfigFacts`] keeps.
pub(crate) const CONSULTED_OPTIONS: &[&str] = &[
    "CONFIG_BPF_SYSCALL",
    "CONFIG_CRASH_DUMP",
    "CONFIG_FTRACE_SYSCALLS",
    "CONFIG_FUNCTION_TRACER",
    "CONFIG_KEXEC",
    "CONFIG_KEXEC_FILE",
    "CONFIG_KPROBES",
    "CONFIG_KPROBE_EVENTS",
    "CONFIG_MODULES",
    "CONFIG_PROC_KCORE",
    "CONFIG_SECURITY_LOCKDOWN_LSM",
    "CONFIG_UPROBE_EVENTS",
];

/// The kernel command-line parameters the verdicts quote: the only ones a
/// [`Facts`] keeps (the rest of a command line says nothing doctor needs).
pub(crate) const CONSULTED_PARAMETERS: &[&str] = &["lockdown=", "crashkernel="];

/// Everything doctor looked at, in one value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// The kernel's identity (osrelease, version, the build-id of
    /// /sys/kernel/notes).
    pub kernel: KernelIdentity,
    /// The options of the kernel's configuration that the verdicts
    /// consult, when a configuration was found.
    pub config: Option<ConfigFacts>,
    /// tracefs, and what was seen inside it.
    pub tracefs: TracefsFacts,
    /// Which perf PMUs sysfs lists.
    pub pmus: Pmus,
    /// Settings read from /proc/sys and /sys/kernel.
    pub settings: Settings,
    /// The parameters of /proc/cmdline that the verdicts consult
    /// ([`CONSULTED_PARAMETERS`]), in their order there.
    pub kernel_parameters: Vec<String>,
    /// Where securityfs is mounted and whether doctor mounted it, when it
    /// could be found or mounted.
    pub securityfs: Option<Securityfs>,
    /// The lockdown file of securityfs ([`lockdown_file`]), trimmed.
    pub lockdown: Result<String, Failure>,
    /// Loading a two-instruction tracepoint program with BPF_PROG_LOAD.
    pub bpf_load: Result<(), Failure>,
    /// Opening a disabled software task-clock counter with
    /// perf_event_open(2).
    pub perf_open: Result<(), Failure>,
    /// The head of /sys/kernel/btf/vmlinux.
    pub btf: Result<BtfHead, Failure>,
    /// /proc/kallsyms, summarised.
    pub kallsyms: Result<KallsymsSummary, Failure>,
    /// /proc/sys/kernel/core_pattern, trimmed (empty when unreadable).
    pub core_pattern: String,
    /// RLIMIT_CORE of the diagnosing process, from /proc/self/limits.
    pub core_limit: Option<Limit>,
    /// The first four bytes of /proc/kcore.
    pub kcore: Result<[u8; 4], Failure>,
    /// How many lines /proc/modules has.
    pub modules: Result<usize, Failure>,
    /// The vmlinux files found where distributions put them, inspected
    /// (none when the build-id is unknown).
    pub vmlinux: Vec<DebugCandidate>,
    /// The journals of kscope sessions that died without undoing their
    /// changes.
    pub leftovers: Leftovers,
}

/// A file operation or syscall that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The kernel's errno, when the failure came from the kernel.
    pub errno: Option<i32>,
    /// The error as it was displayed.
    pub message: String,
}

impl Failure {
    /// The failure an I/O error describes.
    pub fn from_io(err: &io::Error) -> Failure {
        Failure {
            errno: err.raw_os_error(),
            message: err.to_string(),
        }
    }

    /// The kernel's answer `errno`, as a syscall would have returned it.
    pub fn errno(errno: i32) -> Failure {
        Failure::from_io(&io::Error::from_raw_os_error(errno))
    }

    /// True for EPERM and EACCES: the kernel has it but refuses us.
    pub(crate) fn is_denial(&self) -> bool {
        matches!(self.errno, Some(libc::EPERM | libc::EACCES))
    }

    /// True for ENOENT.
    pub(crate) fn is_not_found(&self) -> bool {
        self.errno == Some(libc::ENOENT)
    }

    /// `EPERM (permission denied)` for the errnos a check tells apart,
    /// the error's own text otherwise.
    pub(crate) fn errno_name(&self) -> String {
        let Some(errno) = self.errno else {
            return self.message.clone();
        };
        let name = match errno {
            libc::EPERM => "EPERM",
            libc::EACCES => "EACCES",
            libc::ENOENT => "ENOENT",
            libc::EINVAL => "EINVAL",
            libc::ENODEV => "ENODEV",
            libc::EOPNOTSUPP => "EOPNOTSUPP",
            libc::ENOSYS => "ENOSYS",
            libc::EBUSY => "EBUSY",
            _ => return self.message.clone(),
        };
        format!("{name} ({})", io::Error::from_raw_os_error(errno).kind())
    }
}

/// The consulted options of a kernel configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFacts {
    /// The file it was read from.
    pub source: PathBuf,
    /// How many options it lists (set or not).
    pub options: usize,
    /// Each of the consulted options: its value (`n` for "is not set"),
    /// or `None` when the configuration does not mention it.
    pub consulted: BTreeMap<String, Option<String>>,
}

impl ConfigFacts {
    /// The consulted options of `config`.
    pub(crate) fn of(config: &KernelConfig) -> ConfigFacts {
        ConfigFacts {
            source: config.source.clone(),
            options: config.len(),
            consulted: CONSULTED_OPTIONS
                .iter()
                .map(|name| (name.to_string(), config.raw(name).map(str::to_string)))
                .collect(),
        }
    }

    /// One option's value as the file spells it. Asking for an option
    /// that was not recorded is a bug of the verdicts (it would read as
    /// absent).
    fn raw(&self, name: &str) -> Option<&str> {
        debug_assert!(
            self.consulted.contains_key(name),
            "{name} is not in CONSULTED_OPTIONS"
        );
        self.consulted.get(name).and_then(Option::as_deref)
    }

    /// One option's value.
    pub(crate) fn get(&self, name: &str) -> OptionValue<'_> {
        OptionValue::of(self.raw(name))
    }

    /// `CONFIG_X=y`, `CONFIG_X is not set` or `CONFIG_X is absent`.
    pub(crate) fn describe(&self, name: &str) -> String {
        describe(name, self.raw(name))
    }
}

/// tracefs as doctor found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TracefsFacts {
    /// Mounted and readable, with what was seen inside.
    Usable(TracefsLook),
    /// Mounted, but this user may not list it (mode 0700, root only).
    Unreadable {
        /// The mount point.
        root: PathBuf,
        /// True when doctor mounted it in its private mount namespace.
        mounted_by_us: bool,
        /// Listing the mount point.
        listing: Failure,
    },
    /// Not mounted, and it could not be mounted.
    Absent {
        /// Why it could not be found or mounted.
        error: String,
        /// True when /proc/filesystems lists tracefs.
        known_filesystem: bool,
    },
}

/// What was seen inside a readable tracefs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracefsLook {
    /// The mount point.
    pub root: PathBuf,
    /// True when it is mounted read-only.
    pub read_only: bool,
    /// True when doctor mounted it in its private mount namespace.
    pub mounted_by_us: bool,
    /// How many instances `instances/` holds.
    pub instances: usize,
    /// `available_events`.
    pub events: EventsFacts,
    /// `uprobe_events`, opened for appending.
    pub uprobe_events: ControlFile,
    /// `kprobe_events`, opened for appending.
    pub kprobe_events: ControlFile,
    /// `available_tracers`, trimmed (empty when unreadable).
    pub available_tracers: String,
    /// `set_ftrace_filter`, opened for reading.
    pub set_ftrace_filter: Result<(), Failure>,
}

/// `available_events`, read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventsFacts {
    /// Read, and summarised.
    Listed(EventList),
    /// Opening or reading it failed.
    Unreadable(Failure),
    /// Any other error of the tracefs reader.
    Failed(String),
}

/// A probe-definition file, opened for writing without O_TRUNC (which
/// shows whether probes may be defined and changes nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlFile {
    /// It does not exist.
    Absent,
    /// It opens for writing.
    Writable,
    /// It exists but refuses to open for writing.
    Refused(Failure),
}

/// Which perf PMUs sysfs lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pmus {
    /// [`UPROBE_PMU`] exists.
    pub uprobe: bool,
    /// [`KPROBE_PMU`] exists.
    pub kprobe: bool,
    /// [`TRACEPOINT_PMU`] exists.
    pub tracepoint: bool,
}

/// One-line settings of /proc/sys and /sys/kernel, trimmed; `None` when
/// unreadable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// /proc/sys/kernel/ftrace_enabled.
    pub ftrace_enabled: Option<String>,
    /// /proc/sys/net/core/bpf_jit_enable.
    pub bpf_jit_enable: Option<String>,
    /// /proc/sys/kernel/unprivileged_bpf_disabled.
    pub unprivileged_bpf_disabled: Option<String>,
    /// /proc/sys/kernel/perf_event_paranoid.
    pub perf_event_paranoid: Option<String>,
    /// /proc/sys/kernel/kptr_restrict.
    pub kptr_restrict: Option<String>,
    /// /proc/sys/kernel/core_pipe_limit.
    pub core_pipe_limit: Option<String>,
    /// /proc/sys/fs/suid_dumpable.
    pub suid_dumpable: Option<String>,
    /// [`KEXEC_CRASH_SIZE`].
    pub kexec_crash_size: Option<String>,
    /// [`KEXEC_CRASH_LOADED`].
    pub kexec_crash_loaded: Option<String>,
}

/// Where securityfs is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Securityfs {
    /// The mount point.
    pub path: PathBuf,
    /// True when doctor mounted it in its private mount namespace.
    pub mounted_by_us: bool,
}

/// The lockdown file: in the securityfs found, or where it usually is.
pub(crate) fn lockdown_file(securityfs: Option<&Securityfs>) -> PathBuf {
    securityfs
        .map_or(Path::new(SECURITYFS), |s| s.path.as_path())
        .join("lockdown")
}

/// The size and magic of a BTF blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BtfHead {
    /// Its size in bytes.
    pub size: u64,
    /// Its first two bytes.
    pub magic: [u8; 2],
}

/// The journals of kscope sessions that died without undoing their
/// changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leftovers {
    /// The journal directory.
    pub run_dir: PathBuf,
    /// The journals without a live owner, or why they could not be read.
    pub found: Result<Vec<LeftoverJournal>, String>,
}

/// One journal a dead kscope left (`kscope_tracefs::Leftover`, as data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftoverJournal {
    /// The journal file.
    pub journal: PathBuf,
    /// The pid the dead kscope had, when recorded.
    pub pid: Option<u32>,
    /// What was left, newest first.
    pub changes: Vec<String>,
    /// Shell commands that undo it by hand.
    pub commands: Vec<String>,
    /// Why the journal could not be read, when it could not.
    pub corrupt: Option<String>,
}
