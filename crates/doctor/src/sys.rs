//! Every side effect of this crate: the reads of /proc, /sys and tracefs,
//! the probe-definition files opened for appending (which changes
//! nothing), the BPF program loaded and unloaded, the perf counter opened
//! and closed, and (through kscope-tracefs) the private mounts of an
//! absent tracefs or securityfs. The readers of the kernel config
//! (`KernelConfig::find`) and of vmlinux files (`debuginfo::inspect`) are
//! called from here only. [`gather`] records what they showed as
//! [`Facts`]; nothing here decides a verdict.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::path::Path;

use kscope_bpf::{Insn, PerfEvent, Program, ProgramType, SoftwareEvent};
use kscope_tracefs::{StateGuard, Tracefs};

use crate::KernelIdentity;
use crate::debuginfo;
use crate::facts::{
    BtfHead, CONSULTED_PARAMETERS, ConfigFacts, ControlFile, EventsFacts, Facts, Failure,
    KEXEC_CRASH_LOADED, KEXEC_CRASH_SIZE, KPROBE_PMU, LeftoverJournal, Leftovers, Pmus, Securityfs,
    Settings, TRACEPOINT_PMU, TracefsFacts, TracefsLook, UPROBE_PMU, VMLINUX_BTF, lockdown_file,
};
use crate::parse::config::KernelConfig;
use crate::parse::events::EventList;
use crate::parse::kallsyms::KallsymsSummary;
use crate::parse::{limits, notes};

/// Looks at the running kernel.
pub(crate) fn gather() -> Facts {
    let release = read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default();
    let version = read_trimmed("/proc/sys/kernel/version").unwrap_or_default();
    let build_id = std::fs::read("/sys/kernel/notes")
        .ok()
        .and_then(|data| notes::build_id(&data))
        .map(|id| notes::hex(&id));
    let config = KernelConfig::find(&release).map(|config| ConfigFacts::of(&config));
    let tracefs = tracefs(StateGuard::new().tracefs());
    let securityfs = kscope_tracefs::securityfs()
        .ok()
        .map(|(path, mounted_by_us)| Securityfs {
            path,
            mounted_by_us,
        });
    let lockdown =
        read_trimmed(lockdown_file(securityfs.as_ref())).map_err(|e| Failure::from_io(&e));
    let vmlinux = match &build_id {
        Some(id) => debuginfo::vmlinux_candidates(&release, Some(id))
            .iter()
            .filter_map(|path| debuginfo::inspect(path))
            .collect(),
        None => Vec::new(),
    };
    Facts {
        kernel: KernelIdentity {
            release,
            version,
            machine: std::env::consts::ARCH.to_string(),
            build_id,
        },
        config,
        tracefs,
        pmus: Pmus {
            uprobe: Path::new(UPROBE_PMU).exists(),
            kprobe: Path::new(KPROBE_PMU).exists(),
            tracepoint: Path::new(TRACEPOINT_PMU).exists(),
        },
        settings: settings(),
        kernel_parameters: read_trimmed("/proc/cmdline")
            .unwrap_or_default()
            .split_whitespace()
            .filter(|word| CONSULTED_PARAMETERS.iter().any(|p| word.starts_with(p)))
            .map(str::to_string)
            .collect(),
        securityfs,
        lockdown,
        bpf_load: bpf_load(),
        perf_open: perf_open(),
        btf: btf(),
        kallsyms: std::fs::read_to_string("/proc/kallsyms")
            .map(|text| KallsymsSummary::parse(&text))
            .map_err(|e| Failure::from_io(&e)),
        core_pattern: read_trimmed("/proc/sys/kernel/core_pattern").unwrap_or_default(),
        core_limit: limits::find_limit(
            &std::fs::read_to_string("/proc/self/limits").unwrap_or_default(),
            "Max core file size",
        ),
        kcore: kcore(),
        modules: std::fs::read_to_string("/proc/modules")
            .map(|text| text.lines().count())
            .map_err(|e| Failure::from_io(&e)),
        vmlinux,
        leftovers: leftovers(),
    }
}

/// The running kernel's configuration, when one of the usual places has it.
pub(crate) fn running_config() -> Option<KernelConfig> {
    KernelConfig::find(&read_trimmed("/proc/sys/kernel/osrelease").ok()?)
}

fn read_trimmed(path: impl AsRef<Path>) -> io::Result<String> {
    std::fs::read_to_string(path).map(|s| s.trim_end().to_string())
}

fn tracefs(found: Result<Tracefs, kscope_tracefs::Error>) -> TracefsFacts {
    let fs = match found {
        Err(err) => {
            let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
            return TracefsFacts::Absent {
                error: err.to_string(),
                known_filesystem: filesystems.lines().any(|l| l.ends_with("\ttracefs")),
            };
        }
        Ok(fs) => fs,
    };
    if let Err(err) = std::fs::read_dir(fs.root()) {
        return TracefsFacts::Unreadable {
            root: fs.root().to_path_buf(),
            mounted_by_us: fs.mounted_by_us(),
            listing: Failure::from_io(&err),
        };
    }
    let root = fs.root();
    let events = match kscope_tracefs::control::read(&root.join("available_events")) {
        Ok(text) => EventsFacts::Listed(EventList::parse(&text)),
        Err(kscope_tracefs::Error::Read { source, .. }) => {
            EventsFacts::Unreadable(Failure::from_io(&source))
        }
        Err(other) => EventsFacts::Failed(other.to_string()),
    };
    // Opening set_ftrace_filter for reading has no effect at all; where the
    // function tracer is refused, even that open fails.
    let set_ftrace_filter = std::fs::File::open(root.join("set_ftrace_filter"))
        .map(drop)
        .map_err(|e| Failure::from_io(&e));
    TracefsFacts::Usable(TracefsLook {
        root: root.to_path_buf(),
        read_only: fs.read_only(),
        mounted_by_us: fs.mounted_by_us(),
        instances: fs.instance_names().unwrap_or_default().len(),
        events,
        uprobe_events: control_file(&fs.uprobe_events()),
        kprobe_events: control_file(&fs.kprobe_events()),
        available_tracers: read_trimmed(root.join("available_tracers")).unwrap_or_default(),
        set_ftrace_filter,
    })
}

/// Opens a probe-definition file for writing without O_TRUNC: that shows
/// whether we may define probes, and changes nothing (only a truncating
/// open clears the definitions).
fn control_file(path: &Path) -> ControlFile {
    if !path.exists() {
        return ControlFile::Absent;
    }
    match OpenOptions::new().append(true).open(path) {
        Ok(_) => ControlFile::Writable,
        Err(err) => ControlFile::Refused(Failure::from_io(&err)),
    }
}

fn settings() -> Settings {
    let read = |path: &str| read_trimmed(path).ok();
    Settings {
        ftrace_enabled: read("/proc/sys/kernel/ftrace_enabled"),
        bpf_jit_enable: read("/proc/sys/net/core/bpf_jit_enable"),
        unprivileged_bpf_disabled: read("/proc/sys/kernel/unprivileged_bpf_disabled"),
        perf_event_paranoid: read("/proc/sys/kernel/perf_event_paranoid"),
        kptr_restrict: read("/proc/sys/kernel/kptr_restrict"),
        core_pipe_limit: read("/proc/sys/kernel/core_pipe_limit"),
        suid_dumpable: read("/proc/sys/fs/suid_dumpable"),
        kexec_crash_size: read(KEXEC_CRASH_SIZE),
        kexec_crash_loaded: read(KEXEC_CRASH_LOADED),
    }
}

/// Loads a two-instruction tracepoint program and unloads it.
fn bpf_load() -> Result<(), Failure> {
    let program = [Insn::mov64_imm(0, 0), Insn::exit()];
    Program::load(ProgramType::Tracepoint, "kscope_doctor", &program)
        .map(drop)
        .map_err(|err| bpf_failure(&err))
}

/// Opens a disabled software counter and closes it.
fn perf_open() -> Result<(), Failure> {
    PerfEvent::software_counter(SoftwareEvent::TaskClock)
        .map(drop)
        .map_err(|err| bpf_failure(&err))
}

/// A kscope-bpf error as a failure: its text, and the kernel's errno
/// when the syscall itself failed.
fn bpf_failure(err: &kscope_bpf::Error) -> Failure {
    let errno = match err {
        kscope_bpf::Error::Load { source, .. } | kscope_bpf::Error::PerfOpen { source, .. } => {
            source.raw_os_error()
        }
        _ => None,
    };
    Failure {
        errno,
        message: err.to_string(),
    }
}

fn btf() -> Result<BtfHead, Failure> {
    let mut magic = [0u8; 2];
    std::fs::File::open(VMLINUX_BTF)
        .and_then(|mut f| {
            f.read_exact(&mut magic)?;
            f.metadata()
        })
        .map(|meta| BtfHead {
            size: meta.len(),
            magic,
        })
        .map_err(|e| Failure::from_io(&e))
}

fn kcore() -> Result<[u8; 4], Failure> {
    let mut header = [0u8; 4];
    std::fs::File::open("/proc/kcore")
        .and_then(|mut f| f.read_exact(&mut header))
        .map(|()| header)
        .map_err(|e| Failure::from_io(&e))
}

fn leftovers() -> Leftovers {
    Leftovers {
        run_dir: kscope_tracefs::run_dir(),
        found: kscope_tracefs::find_leftovers()
            .map(|found| {
                found
                    .into_iter()
                    .map(|l| LeftoverJournal {
                        journal: l.journal,
                        pid: l.pid,
                        changes: l.changes,
                        commands: l.commands,
                        corrupt: l.corrupt,
                    })
                    .collect()
            })
            .map_err(|e| e.to_string()),
    }
}
