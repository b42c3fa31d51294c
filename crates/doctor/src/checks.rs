//! The checks themselves, in the order `kscope doctor` prints them. Each
//! reads what it needs from /proc, /sys and tracefs and returns a `Check`;
//! none changes anything (see the crate doc for the two probes that create
//! and close a kernel object).

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::path::Path;

use kscope_bpf::{Insn, PerfEvent, Program, ProgramType, SoftwareEvent};
use kscope_tracefs::{StateGuard, Tracefs};

use crate::parse::config::KernelConfig;
use crate::parse::core_pattern::{CorePattern, MAX_PATTERN_BYTES};
use crate::parse::kallsyms::KallsymsSummary;
use crate::parse::{limits, notes};
use crate::{Check, KernelIdentity, Report, SCHEMA_VERSION, Verdict, debuginfo};

/// Whether tracefs can be looked into.
enum TracefsState {
    /// Mounted and readable.
    Usable(Tracefs),
    /// Mounted, but this user may not look inside (mode 0700, root only).
    Unreadable(Tracefs, io::Error),
    /// Not mounted, and it could not be mounted.
    Absent(kscope_tracefs::Error),
}

/// What the checks share: the kernel's identity, its config, tracefs.
struct Context {
    kernel: KernelIdentity,
    config: Option<KernelConfig>,
    tracefs: TracefsState,
    /// Where securityfs is, and whether the diagnosis mounted it.
    securityfs: Option<(std::path::PathBuf, bool)>,
}

impl Context {
    /// `CONFIG_X=y` / `CONFIG_X is not set` from the config, or a note that
    /// the config is not readable.
    fn config_says(&self, option: &str) -> String {
        match &self.config {
            Some(config) => format!("{} ({})", config.describe(option), config.source.display()),
            None => format!("{option}: no kernel config to read"),
        }
    }

    fn config_enabled(&self, option: &str) -> Option<bool> {
        self.config.as_ref().map(|c| c.enabled(option))
    }

    fn tracefs(&self) -> Option<&Tracefs> {
        match &self.tracefs {
            TracefsState::Usable(fs) => Some(fs),
            _ => None,
        }
    }

    /// The usable tracefs, or the verdict for a check `id` that needs one.
    fn tracefs_for(&self, id: &'static str) -> Result<&Tracefs, Check> {
        match &self.tracefs {
            TracefsState::Usable(fs) => Ok(fs),
            TracefsState::Unreadable(fs, err) => Err(check(
                id,
                Verdict::Denied,
                format!("{} is not readable by this user", fs.root().display()),
            )
            .evidence(format!(
                "listing {}: {}",
                fs.root().display(),
                errno_name(err)
            ))
            .needs("root (tracefs is readable by root only)")),
            TracefsState::Absent(_) => {
                Err(
                    check(id, Verdict::Unknown, "tracefs is not available to look")
                        .needs("tracefs (see the tracefs line)"),
                )
            }
        }
    }
}

fn tracefs_state(found: Result<Tracefs, kscope_tracefs::Error>) -> TracefsState {
    match found {
        Err(err) => TracefsState::Absent(err),
        Ok(fs) => match std::fs::read_dir(fs.root()) {
            Ok(_) => TracefsState::Usable(fs),
            Err(err) => TracefsState::Unreadable(fs, err),
        },
    }
}

fn check(id: &'static str, verdict: Verdict, summary: impl Into<String>) -> Check {
    Check {
        id,
        verdict,
        summary: summary.into(),
        evidence: Vec::new(),
        needs: None,
        instead: None,
    }
}

impl Check {
    fn evidence(mut self, line: impl Into<String>) -> Check {
        self.evidence.push(line.into());
        self
    }

    fn needs(mut self, what: impl Into<String>) -> Check {
        self.needs = Some(what.into());
        self
    }

    fn instead(mut self, what: impl Into<String>) -> Check {
        self.instead = Some(what.into());
        self
    }
}

fn read_trimmed(path: impl AsRef<Path>) -> io::Result<String> {
    std::fs::read_to_string(path).map(|s| s.trim_end().to_string())
}

fn errno_name(err: &io::Error) -> String {
    let name = match err.raw_os_error() {
        Some(libc::EPERM) => "EPERM",
        Some(libc::EACCES) => "EACCES",
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::ENODEV) => "ENODEV",
        Some(libc::EOPNOTSUPP) => "EOPNOTSUPP",
        Some(libc::ENOSYS) => "ENOSYS",
        Some(libc::EBUSY) => "EBUSY",
        _ => return err.to_string(),
    };
    format!("{name} ({})", err.kind())
}

fn is_denial(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EPERM | libc::EACCES))
}

pub(crate) fn run() -> Report {
    let release = read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default();
    let version = read_trimmed("/proc/sys/kernel/version").unwrap_or_default();
    let build_id = std::fs::read("/sys/kernel/notes")
        .ok()
        .and_then(|data| notes::build_id(&data));
    let config = KernelConfig::find(&release);
    let context = Context {
        kernel: KernelIdentity {
            release,
            version,
            machine: std::env::consts::ARCH,
            build_id: build_id.as_deref().map(notes::hex),
        },
        tracefs: tracefs_state(StateGuard::new().tracefs()),
        securityfs: kscope_tracefs::securityfs().ok(),
        config,
    };
    let mounted_tracefs = match &context.tracefs {
        TracefsState::Usable(fs) | TracefsState::Unreadable(fs, _) => fs.mounted_by_us(),
        TracefsState::Absent(_) => false,
    };
    let checks = vec![
        tracefs(&context),
        tracepoints(&context),
        uprobes(&context),
        kprobes(&context),
        function_tracer(&context),
        bpf(&context),
        btf(),
        perf_events(),
        kallsyms(),
        kernel_config(&context),
        lockdown(&context),
        core_dumps(),
        kdump(&context),
        kcore(&context),
        modules(&context),
        debuginfo(&context, build_id.as_deref()),
        leftovers(kscope_tracefs::find_leftovers()),
    ];
    let config_source = context
        .config
        .as_ref()
        .map(|c| c.source.display().to_string());
    let kernel = context.kernel;
    Report {
        schema: SCHEMA_VERSION,
        kernel,
        config_source,
        mounted_tracefs,
        checks,
    }
}

fn tracefs(cx: &Context) -> Check {
    let fs = match &cx.tracefs {
        TracefsState::Usable(fs) => fs,
        TracefsState::Unreadable(fs, err) => {
            return check(
                "tracefs",
                Verdict::Denied,
                format!(
                    "mounted at {}, but not readable by this user",
                    fs.root().display()
                ),
            )
            .evidence(format!(
                "listing {}: {}",
                fs.root().display(),
                errno_name(err)
            ))
            .needs("root (tracefs is readable by root only)")
            .instead("perf events and BPF where perf_event_paranoid allows them");
        }
        TracefsState::Absent(err) => {
            let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
            let known = filesystems.lines().any(|l| l.ends_with("\ttracefs"));
            let (verdict, needs) = if known {
                (Verdict::Denied, "root (or CAP_SYS_ADMIN) to mount tracefs")
            } else {
                (Verdict::Missing, "CONFIG_TRACING=y (tracefs)")
            };
            return check("tracefs", verdict, err.to_string())
                .evidence(if known {
                    "/proc/filesystems lists tracefs"
                } else {
                    "/proc/filesystems does not list tracefs"
                })
                .needs(needs)
                .instead("perf events and BPF, which do not need tracefs");
        }
    };
    let root = fs.root().display().to_string();
    let mut result = if fs.read_only() {
        check(
            "tracefs",
            Verdict::Denied,
            format!("mounted read-only at {root}"),
        )
        .needs("a read-write tracefs mount (mount -o remount,rw tracefs)")
    } else {
        check(
            "tracefs",
            Verdict::Available,
            format!("mounted read-write at {root}"),
        )
    };
    if fs.mounted_by_us() {
        result = result.evidence(format!(
            "it was not mounted: kscope mounted it at {root} in a private mount namespace of its own for this check (nobody else sees that mount; it ends with doctor)"
        ));
    } else {
        result = result.evidence(format!("/proc/self/mountinfo: tracefs at {root}"));
    }
    let names = fs.instance_names().unwrap_or_default();
    result = result.evidence(format!("{} instance(s) in {root}/instances", names.len()));
    for name in names {
        let Some(pid) = name
            .strip_prefix("kscope-")
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            result = result.evidence(format!(
                "instance {name} was left by a kscope that was killed (pid {pid} is gone): rmdir {root}/instances/{name}"
            ));
        }
    }
    result
}

/// What kscope sessions killed before they could clean up left (their
/// journals under /run/kscope, whose lock no live process holds). Doctor
/// only lists them; any tracing command undoes them.
fn leftovers(found: Result<Vec<kscope_tracefs::Leftover>, kscope_tracefs::Error>) -> Check {
    let dir = kscope_tracefs::run_dir().display().to_string();
    let found = match found {
        Ok(found) => found,
        Err(err) => {
            return check(
                "leftovers",
                Verdict::Unknown,
                "cannot look for what killed kscope sessions left",
            )
            .evidence(err.to_string())
            .needs(format!("root (to read {dir})"));
        }
    };
    if found.is_empty() {
        return check(
            "leftovers",
            Verdict::Available,
            "no kscope session left changes behind",
        )
        .evidence(format!("no journal without a live owner in {dir}"));
    }
    let everything: Vec<String> = found
        .iter()
        .flat_map(|l| {
            l.changes.iter().cloned().chain(
                l.corrupt
                    .iter()
                    .map(|_| format!("unreadable journal {}", l.journal.display())),
            )
        })
        .collect();
    let mut result = check(
        "leftovers",
        Verdict::Denied,
        format!(
            "{} kscope session(s) died without cleaning up: {}",
            found.len(),
            everything.join(", ")
        ),
    );
    for leftover in &found {
        let owner = leftover
            .pid
            .map_or_else(String::new, |pid| format!(" (pid {pid})"));
        result = result.evidence(match &leftover.corrupt {
            Some(why) => format!(
                "{}{owner} cannot be read: {why}",
                leftover.journal.display()
            ),
            None => format!(
                "{}{owner}: {}; by hand: {}",
                leftover.journal.display(),
                leftover.changes.join(", "),
                leftover.commands.join("; ")
            ),
        });
    }
    result
        .needs("any tracing command (kscope trace list -t, for one) undoes them first; doctor changes nothing")
        .instead("the commands in the evidence, by hand")
}

fn tracepoints(cx: &Context) -> Check {
    let fs = match cx.tracefs_for("tracepoints") {
        Ok(fs) => fs,
        Err(verdict) => return verdict,
    };
    let path = fs.root().join("available_events");
    let text = match kscope_tracefs::control::read(&path) {
        Ok(text) => text,
        Err(kscope_tracefs::Error::Read { source: err, .. }) => {
            return check(
                "tracepoints",
                if is_denial(&err) {
                    Verdict::Denied
                } else {
                    Verdict::Missing
                },
                format!("cannot read {}: {}", path.display(), errno_name(&err)),
            )
            .needs("CONFIG_TRACEPOINTS=y and read access to tracefs");
        }
        Err(other) => return check("tracepoints", Verdict::Unknown, other.to_string()),
    };
    let events: Vec<&str> = text.lines().filter(|l| l.contains(':')).collect();
    let mut systems: Vec<&str> = events.iter().filter_map(|e| e.split(':').next()).collect();
    systems.dedup();
    systems.sort_unstable();
    systems.dedup();
    let enters = events
        .iter()
        .filter(|e| e.starts_with("syscalls:sys_enter_"))
        .count();
    let exits = events
        .iter()
        .filter(|e| e.starts_with("syscalls:sys_exit_"))
        .count();
    if events.is_empty() {
        return check(
            "tracepoints",
            Verdict::Missing,
            "no trace events are listed",
        )
        .evidence(format!("{} is empty", path.display()))
        .needs("CONFIG_TRACEPOINTS=y with CONFIG_EVENT_TRACING=y");
    }
    let summary = format!(
        "{} events in {} systems; syscalls: {enters} sys_enter and {exits} sys_exit events",
        events.len(),
        systems.len()
    );
    let mut result = check("tracepoints", Verdict::Available, summary).evidence(format!(
        "{}: {} lines",
        path.display(),
        events.len()
    ));
    if enters == 0 {
        result = result
            .evidence("no syscalls:* events")
            .evidence(cx.config_says("CONFIG_FTRACE_SYSCALLS"));
    }
    result
}

/// Opens a probe-definition file for writing without O_TRUNC: that shows
/// whether we may define probes, and changes nothing (only a truncating
/// open clears the definitions).
fn open_for_append(path: &Path) -> io::Result<()> {
    OpenOptions::new().append(true).open(path).map(drop)
}

fn uprobes(cx: &Context) -> Check {
    let pmu = Path::new("/sys/bus/event_source/devices/uprobe");
    let fs = match cx.tracefs_for("uprobes") {
        Ok(fs) => fs,
        Err(verdict) => {
            return verdict.evidence(format!("perf PMU {}: {}", pmu.display(), exists(pmu)));
        }
    };
    let file = fs.uprobe_events();
    if !file.exists() {
        return check(
            "uprobes",
            Verdict::Missing,
            "the kernel has no uprobe events",
        )
        .evidence(format!("{} does not exist", file.display()))
        .evidence(cx.config_says("CONFIG_UPROBE_EVENTS"))
        .needs("CONFIG_UPROBES=y and CONFIG_UPROBE_EVENTS=y")
        .instead("tracepoints, and user-space core dumps for post-mortem views");
    }
    match open_for_append(&file) {
        Ok(()) => check(
            "uprobes",
            Verdict::Available,
            "user-space probes can be defined",
        )
        .evidence(format!("{} opens for writing", file.display()))
        .evidence(format!("perf PMU {}: {}", pmu.display(), exists(pmu)))
        .evidence(cx.config_says("CONFIG_UPROBE_EVENTS")),
        Err(err) => check("uprobes", Verdict::Denied, "uprobe_events refuses writes")
            .evidence(format!(
                "opening {} for writing: {}",
                file.display(),
                errno_name(&err)
            ))
            .needs("root, and no lockdown or security module that refuses tracefs writes"),
    }
}

fn exists(path: &Path) -> &'static str {
    if path.exists() { "present" } else { "absent" }
}

fn kprobes(cx: &Context) -> Check {
    let pmu = Path::new("/sys/bus/event_source/devices/kprobe");
    let file = cx.tracefs().map(Tracefs::kprobe_events);
    let file_exists = file.as_deref().is_some_and(Path::exists);
    let evidence_file = match &file {
        Some(path) if file_exists => format!("{} exists", path.display()),
        Some(path) => format!("{} does not exist", path.display()),
        None => "tracefs is not available to this user to look for kprobe_events".to_string(),
    };
    if !file_exists && !pmu.exists() {
        let why = match cx.config_enabled("CONFIG_KPROBES") {
            Some(false) => "CONFIG_KPROBES is not set",
            Some(true) => "CONFIG_KPROBE_EVENTS is not set",
            None => "no kprobe support is visible",
        };
        return check("kprobes", Verdict::Missing, format!("no kprobes: {why}"))
            .evidence(evidence_file)
            .evidence(format!("perf PMU {}: absent", pmu.display()))
            .evidence(cx.config_says("CONFIG_KPROBES"))
            .evidence(cx.config_says("CONFIG_KPROBE_EVENTS"))
            .needs("CONFIG_KPROBES=y and CONFIG_KPROBE_EVENTS=y")
            .instead(
                "tracepoints: syscalls:sys_enter_read instead of a probe on vfs_read, \
                 sched:* and block:* for scheduling and I/O; uprobes for user space",
            );
    }
    let Some(file) = file.filter(|_| file_exists) else {
        return check(
            "kprobes",
            Verdict::Available,
            "kprobes through perf (BPF) only",
        )
        .evidence(evidence_file)
        .evidence(format!("perf PMU {}: present", pmu.display()));
    };
    match open_for_append(&file) {
        Ok(()) => check(
            "kprobes",
            Verdict::Available,
            "kernel probes can be defined",
        )
        .evidence(format!("{} opens for writing", file.display()))
        .evidence(format!("perf PMU {}: {}", pmu.display(), exists(pmu)))
        .evidence(cx.config_says("CONFIG_KPROBE_EVENTS")),
        Err(err) => check("kprobes", Verdict::Denied, "kprobe_events refuses writes")
            .evidence(format!(
                "opening {} for writing: {}",
                file.display(),
                errno_name(&err)
            ))
            .needs("root, and lockdown off (kprobes are refused in integrity mode)")
            .instead("tracepoints"),
    }
}

fn function_tracer(cx: &Context) -> Check {
    let fs = match cx.tracefs_for("function_tracer") {
        Ok(fs) => fs,
        Err(verdict) => return verdict,
    };
    let tracers_path = fs.root().join("available_tracers");
    let tracers = read_trimmed(&tracers_path).unwrap_or_default();
    let listed: Vec<&str> = tracers.split_whitespace().collect();
    if !listed.contains(&"function") {
        return check(
            "function_tracer",
            Verdict::Missing,
            "the function tracer is not built in",
        )
        .evidence(format!("{}: {}", tracers_path.display(), tracers))
        .evidence(cx.config_says("CONFIG_FUNCTION_TRACER"))
        .needs("CONFIG_FUNCTION_TRACER=y (and CONFIG_DYNAMIC_FTRACE=y)")
        .instead("tracepoints");
    }
    let graph = if listed.contains(&"function_graph") {
        "function and function_graph"
    } else {
        "function"
    };
    let tracers_evidence = format!("{}: {}", tracers_path.display(), tracers);
    let enabled = read_trimmed("/proc/sys/kernel/ftrace_enabled").ok();
    let enabled_evidence = format!(
        "/proc/sys/kernel/ftrace_enabled: {}",
        enabled.as_deref().unwrap_or("unreadable")
    );
    // Opening set_ftrace_filter for reading has no effect at all; where the
    // function tracer is refused, even that open fails.
    let filter = fs.root().join("set_ftrace_filter");
    match std::fs::File::open(&filter) {
        Err(err) if is_denial(&err) => check(
            "function_tracer",
            Verdict::Denied,
            format!("{graph} tracers are built in but the kernel refuses their control files"),
        )
        .evidence(tracers_evidence)
        .evidence(format!(
            "opening {}: {}",
            filter.display(),
            errno_name(&err)
        ))
        .evidence(enabled_evidence)
        .needs(
            "a kernel whose security policy allows ftrace function tracing \
             (here a security module or sandbox refuses it even to root)",
        )
        .instead("tracepoints; or the function tracer in a guest (scripts/lab)"),
        Err(err) => check(
            "function_tracer",
            Verdict::Missing,
            format!("{} cannot be opened", filter.display()),
        )
        .evidence(tracers_evidence)
        .evidence(format!(
            "opening {}: {}",
            filter.display(),
            errno_name(&err)
        ))
        .needs("CONFIG_DYNAMIC_FTRACE=y")
        .instead("tracepoints"),
        Ok(_) if enabled.as_deref() == Some("0") => check(
            "function_tracer",
            Verdict::Denied,
            "the function tracer is switched off (ftrace_enabled is 0)",
        )
        .evidence(tracers_evidence)
        .evidence(enabled_evidence)
        .needs("sysctl kernel.ftrace_enabled=1")
        .instead("tracepoints"),
        Ok(_) => check(
            "function_tracer",
            Verdict::Available,
            format!("{graph} tracers can be used"),
        )
        .evidence(tracers_evidence)
        .evidence(format!("{} opens", filter.display()))
        .evidence(enabled_evidence),
    }
}

fn bpf(cx: &Context) -> Check {
    let jit = read_trimmed("/proc/sys/net/core/bpf_jit_enable").unwrap_or_else(|_| "?".into());
    let unprivileged =
        read_trimmed("/proc/sys/kernel/unprivileged_bpf_disabled").unwrap_or_else(|_| "?".into());
    let settings = format!("bpf_jit_enable={jit}, unprivileged_bpf_disabled={unprivileged}");
    let program = [Insn::mov64_imm(0, 0), Insn::exit()];
    match Program::load(ProgramType::Tracepoint, "kscope_doctor", &program) {
        Ok(loaded) => {
            drop(loaded);
            check("bpf", Verdict::Available, "BPF programs load")
                .evidence("loaded a 2-instruction tracepoint program and unloaded it")
                .evidence(settings)
        }
        Err(kscope_bpf::Error::Load { source, .. }) if is_denial(&source) => {
            check("bpf", Verdict::Denied, "bpf(2) refuses to load programs")
                .evidence(format!("BPF_PROG_LOAD: {}", errno_name(&source)))
                .evidence(settings)
                .needs("root (CAP_BPF and CAP_PERFMON), and lockdown off")
                .instead("tracefs events, which need no BPF")
        }
        Err(err) => check("bpf", Verdict::Missing, "BPF programs cannot be loaded")
            .evidence(err.to_string())
            .evidence(cx.config_says("CONFIG_BPF_SYSCALL"))
            .needs("CONFIG_BPF_SYSCALL=y and CONFIG_BPF_EVENTS=y")
            .instead("tracefs events, which need no BPF"),
    }
}

/// The first bytes of a BTF blob: magic 0xeb9f, little-endian on x86.
const BTF_MAGIC: u16 = 0xeb9f;

fn btf() -> Check {
    let path = Path::new("/sys/kernel/btf/vmlinux");
    let mut magic = [0u8; 2];
    let opened = std::fs::File::open(path).and_then(|mut f| {
        f.read_exact(&mut magic)?;
        f.metadata()
    });
    match opened {
        Ok(meta) if u16::from_ne_bytes(magic) == BTF_MAGIC => check(
            "btf",
            Verdict::Available,
            format!(
                "kernel type information: {} ({:.1} MiB)",
                path.display(),
                meta.len() as f64 / (1024.0 * 1024.0)
            ),
        )
        .evidence(format!(
            "{}: {} bytes, magic 0x{BTF_MAGIC:x}",
            path.display(),
            meta.len()
        )),
        Ok(_) => check(
            "btf",
            Verdict::Unknown,
            format!("{} is not BTF", path.display()),
        )
        .evidence(format!("first bytes {:02x} {:02x}", magic[0], magic[1])),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            check("btf", Verdict::Missing, "no kernel BTF")
                .evidence(format!("{} does not exist", path.display()))
                .needs("CONFIG_DEBUG_INFO_BTF=y")
                .instead("a vmlinux with DWARF for types; kallsyms for symbols")
        }
        Err(err) => check(
            "btf",
            if is_denial(&err) {
                Verdict::Denied
            } else {
                Verdict::Unknown
            },
            format!("cannot read {}: {}", path.display(), errno_name(&err)),
        )
        .needs("root"),
    }
}

fn perf_events() -> Check {
    let paranoid =
        read_trimmed("/proc/sys/kernel/perf_event_paranoid").unwrap_or_else(|_| "?".into());
    let paranoid_evidence = format!("perf_event_paranoid={paranoid}");
    let tracepoint_pmu = Path::new("/sys/bus/event_source/devices/tracepoint");
    match PerfEvent::software_counter(SoftwareEvent::TaskClock) {
        Ok(event) => {
            drop(event);
            check("perf_events", Verdict::Available, "perf_event_open works")
                .evidence("opened and closed a software task-clock counter")
                .evidence(paranoid_evidence)
                .evidence(format!(
                    "perf PMU {}: {}",
                    tracepoint_pmu.display(),
                    exists(tracepoint_pmu)
                ))
        }
        Err(kscope_bpf::Error::PerfOpen { source, .. }) if is_denial(&source) => check(
            "perf_events",
            Verdict::Denied,
            "perf_event_open refuses even a software counter",
        )
        .evidence(format!("perf_event_open: {}", errno_name(&source)))
        .evidence(paranoid_evidence)
        .needs("root, or a lower kernel.perf_event_paranoid")
        .instead("tracefs events"),
        Err(err) => check(
            "perf_events",
            Verdict::Missing,
            "perf_event_open does not work",
        )
        .evidence(err.to_string())
        .needs("CONFIG_PERF_EVENTS=y")
        .instead("tracefs events"),
    }
}

fn kallsyms() -> Check {
    let restrict = read_trimmed("/proc/sys/kernel/kptr_restrict").unwrap_or_else(|_| "?".into());
    let restrict_evidence = format!("kptr_restrict={restrict}");
    let text = match std::fs::read_to_string("/proc/kallsyms") {
        Ok(text) => text,
        Err(err) => {
            return check(
                "kallsyms",
                if is_denial(&err) {
                    Verdict::Denied
                } else {
                    Verdict::Missing
                },
                format!("cannot read /proc/kallsyms: {}", errno_name(&err)),
            )
            .needs("CONFIG_KALLSYMS=y")
            .instead("System.map of the running kernel");
        }
    };
    let summary = KallsymsSummary::parse(&text);
    if summary.symbols == 0 {
        return check("kallsyms", Verdict::Missing, "/proc/kallsyms is empty")
            .needs("CONFIG_KALLSYMS=y")
            .instead("System.map of the running kernel");
    }
    if summary.addresses_hidden() {
        return check(
            "kallsyms",
            Verdict::Denied,
            format!(
                "{} symbols listed with their addresses hidden",
                summary.symbols
            ),
        )
        .evidence("every address in /proc/kallsyms reads 0")
        .evidence(restrict_evidence)
        .needs("root with kptr_restrict 0 or 1 (sysctl kernel.kptr_restrict)")
        .instead("System.map of the running kernel");
    }
    let stext = summary
        .stext
        .map_or_else(|| "not listed".to_string(), |a| format!("0x{a:x}"));
    check(
        "kallsyms",
        Verdict::Available,
        format!(
            "{} symbols with real addresses ({} text), _stext at {stext}",
            summary.symbols, summary.text_symbols
        ),
    )
    .evidence(format!(
        "/proc/kallsyms: {} symbols, {} with address 0, {} in modules",
        summary.symbols, summary.zero_addresses, summary.module_symbols
    ))
    .evidence(restrict_evidence)
}

fn kernel_config(cx: &Context) -> Check {
    match &cx.config {
        Some(config) => check(
            "kernel_config",
            Verdict::Available,
            format!("{} ({} options)", config.source.display(), config.len()),
        )
        .evidence(format!("read {}", config.source.display())),
        None => {
            let tried: Vec<String> = KernelConfig::candidates(&cx.kernel.release)
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            check(
                "kernel_config",
                Verdict::Missing,
                "no configuration of the running kernel",
            )
            .evidence(format!("tried {}", tried.join(", ")))
            .needs("CONFIG_IKCONFIG_PROC=y, or the distribution's /boot/config-RELEASE")
            .instead("kscope doctor's direct probes, which do not need the config")
        }
    }
}

fn lockdown(cx: &Context) -> Check {
    let lockdown = cx.securityfs.as_ref().map_or_else(
        || Path::new("/sys/kernel/security").join("lockdown"),
        |(p, _)| p.join("lockdown"),
    );
    let path = lockdown.as_path();
    let mounted_note = match &cx.securityfs {
        Some((p, true)) => Some(format!(
            "securityfs was not mounted: kscope mounted it at {} in a private mount namespace of its own for this check (nobody else sees that mount; it ends with doctor)",
            p.display()
        )),
        _ => None,
    };
    let result = lockdown_verdict(cx, path);
    match mounted_note {
        Some(note) => result.evidence(note),
        None => result,
    }
}

fn lockdown_verdict(cx: &Context, path: &Path) -> Check {
    match read_trimmed(path) {
        Ok(text) => {
            let mode = text
                .split_once('[')
                .and_then(|(_, r)| r.split_once(']'))
                .map(|(m, _)| m.to_string())
                .unwrap_or_else(|| text.clone());
            let evidence = format!("{}: {text}", path.display());
            match mode.as_str() {
                "none" => check("lockdown", Verdict::Available, "the kernel is not locked down")
                    .evidence(evidence),
                // The integrity level refuses changes to the running kernel
                // (unsigned modules and kexec images, /dev/mem, BPF writes to
                // user memory), not reading or tracing it.
                "integrity" => check(
                    "lockdown",
                    Verdict::Available,
                    "lockdown=integrity: writes to the kernel are refused; reading and tracing are allowed",
                )
                .evidence(evidence)
                .evidence("kdump needs a signed crash kernel loaded with kexec_file_load"),
                _ => check(
                    "lockdown",
                    Verdict::Denied,
                    format!("lockdown={mode}: kernel memory reads (BPF, /proc/kcore), kprobes, perf and tracefs are refused"),
                )
                .evidence(evidence)
                .needs("boot without lockdown (or with Secure Boot off)")
                .instead("tracepoints"),
            }
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let lsm_built = cx.config_enabled("CONFIG_SECURITY_LOCKDOWN_LSM");
            if lsm_built == Some(false) {
                return check(
                    "lockdown",
                    Verdict::Available,
                    "no lockdown LSM in this kernel",
                )
                .evidence(cx.config_says("CONFIG_SECURITY_LOCKDOWN_LSM"));
            }
            let cmdline = read_trimmed("/proc/cmdline").unwrap_or_default();
            let on_cmdline = cmdline
                .split_whitespace()
                .find(|w| w.starts_with("lockdown="))
                .map_or("no lockdown= on the kernel command line".to_string(), |w| {
                    format!("kernel command line has {w}")
                });
            check(
                "lockdown",
                Verdict::Unknown,
                "securityfs is not mounted, so the lockdown state cannot be read",
            )
            .evidence(format!("{} does not exist", path.display()))
            .evidence(cx.config_says("CONFIG_SECURITY_LOCKDOWN_LSM"))
            .evidence(on_cmdline)
            .needs("mount -t securityfs securityfs /sys/kernel/security, then run doctor again")
        }
        Err(err) => check(
            "lockdown",
            Verdict::Unknown,
            format!("cannot read {}: {}", path.display(), errno_name(&err)),
        ),
    }
}

fn core_dumps() -> Check {
    let pattern_text = read_trimmed("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let pattern = CorePattern::parse(&pattern_text);
    let pipe_limit =
        read_trimmed("/proc/sys/kernel/core_pipe_limit").unwrap_or_else(|_| "?".into());
    let suid = read_trimmed("/proc/sys/fs/suid_dumpable").unwrap_or_else(|_| "?".into());
    let limits_text = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let limit = limits::find_limit(&limits_text, "Max core file size");
    let limit_evidence = match limit {
        Some(l) => format!(
            "RLIMIT_CORE of this process: soft {}, hard {}",
            limits::show(l.soft),
            limits::show(l.hard)
        ),
        None => "RLIMIT_CORE: not found in /proc/self/limits".to_string(),
    };
    let mut evidence = vec![
        format!("core_pattern: {pattern_text:?}"),
        pattern.describe(),
        limit_evidence,
        format!("core_pipe_limit={pipe_limit}, suid_dumpable={suid}"),
    ];
    if pattern_text.len() >= MAX_PATTERN_BYTES {
        evidence.push(format!(
            "the pattern is {} bytes: the kernel keeps only the first {MAX_PATTERN_BYTES}",
            pattern_text.len()
        ));
    }
    let soft = limit.and_then(|l| l.soft);
    let result = if pattern.is_handed_over() {
        if soft == Some(1) {
            check(
                "core_dumps",
                Verdict::Denied,
                "RLIMIT_CORE is 1, which turns off the core handler",
            )
            .needs("ulimit -c unlimited (any value but 1)")
        } else {
            let mut c = check("core_dumps", Verdict::Available, pattern.describe());
            if pipe_limit == "0" {
                c = c.evidence(
                    "core_pipe_limit=0: /proc/PID of the crashed process may vanish while the \
                     handler reads the core (set core_pipe_limit, or use %F on 6.16+)",
                );
            }
            c
        }
    } else if soft == Some(0) {
        check(
            "core_dumps",
            Verdict::Denied,
            "RLIMIT_CORE is 0 here: a crashing program started from this shell leaves no core",
        )
        .needs("ulimit -c unlimited in the shell that starts the program")
        .instead("a pipe handler in core_pattern, which runs whatever RLIMIT_CORE is (except 1)")
    } else {
        check("core_dumps", Verdict::Available, pattern.describe())
    };
    evidence.into_iter().fold(result, Check::evidence)
}

fn kdump(cx: &Context) -> Check {
    let size_path = Path::new("/sys/kernel/kexec_crash_size");
    let loaded_path = Path::new("/sys/kernel/kexec_crash_loaded");
    let reserved = read_trimmed(size_path)
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let loaded = read_trimmed(loaded_path).ok();
    let cmdline = read_trimmed("/proc/cmdline").unwrap_or_default();
    let crashkernel = cmdline
        .split_whitespace()
        .find(|w| w.starts_with("crashkernel="))
        .map(str::to_string);
    let cmdline_evidence = crashkernel.clone().map_or(
        "no crashkernel= on the kernel command line".to_string(),
        |w| format!("kernel command line has {w}"),
    );
    let supported = reserved.is_some()
        || cx.config_enabled("CONFIG_CRASH_DUMP") == Some(true)
        || cx.config_enabled("CONFIG_KEXEC") == Some(true)
        || cx.config_enabled("CONFIG_KEXEC_FILE") == Some(true);
    if !supported {
        return check(
            "kdump",
            Verdict::Missing,
            "the kernel cannot load a crash kernel (no kexec)",
        )
        .evidence(format!("{} does not exist", size_path.display()))
        .evidence(cx.config_says("CONFIG_KEXEC"))
        .evidence(cx.config_says("CONFIG_KEXEC_FILE"))
        .evidence(cx.config_says("CONFIG_CRASH_DUMP"))
        .evidence(cmdline_evidence)
        .needs("CONFIG_KEXEC_FILE=y (or CONFIG_KEXEC=y) with CONFIG_CRASH_DUMP=y, and crashkernel= at boot")
        .instead("kscope crash reads vmcores made elsewhere (a QEMU guest's dump-guest-memory, another machine's kdump)");
    }
    let reserved_mib = reserved.unwrap_or(0) / (1024 * 1024);
    let evidence_reserved = format!(
        "{}: {}",
        size_path.display(),
        reserved.map_or("unreadable".to_string(), |r| r.to_string())
    );
    let evidence_loaded = format!(
        "{}: {}",
        loaded_path.display(),
        loaded.as_deref().unwrap_or("unreadable")
    );
    let result = if reserved.unwrap_or(0) == 0 {
        check(
            "kdump",
            Verdict::Missing,
            "kexec is built in but no memory is reserved for a crash kernel",
        )
        .needs("boot with crashkernel=256M (kdump-tools sets it up)")
    } else if loaded.as_deref() == Some("1") {
        check(
            "kdump",
            Verdict::Available,
            format!("a crash kernel is loaded in {reserved_mib} MiB reserved memory"),
        )
    } else {
        check(
            "kdump",
            Verdict::Available,
            format!(
                "{reserved_mib} MiB reserved for a crash kernel; none loaded yet (kdump-config load)"
            ),
        )
    };
    result
        .evidence(evidence_reserved)
        .evidence(evidence_loaded)
        .evidence(cmdline_evidence)
        .evidence(cx.config_says("CONFIG_CRASH_DUMP"))
}

fn kcore(cx: &Context) -> Check {
    let path = Path::new("/proc/kcore");
    let mut header = [0u8; 4];
    match std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut header)) {
        Ok(()) if &header == b"\x7fELF" => check(
            "kcore",
            Verdict::Available,
            "/proc/kcore exposes live kernel memory as an ELF core",
        )
        .evidence("/proc/kcore opens and starts with the ELF magic"),
        Ok(()) => check("kcore", Verdict::Unknown, "/proc/kcore is not an ELF file")
            .evidence(format!("first bytes {header:02x?}")),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            check("kcore", Verdict::Missing, "no /proc/kcore")
                .evidence("/proc/kcore does not exist")
                .evidence(cx.config_says("CONFIG_PROC_KCORE"))
                .needs("CONFIG_PROC_KCORE=y")
                .instead("BTF and kallsyms for types and symbols; a vmcore for memory")
        }
        Err(err) => check(
            "kcore",
            if is_denial(&err) {
                Verdict::Denied
            } else {
                Verdict::Unknown
            },
            format!("cannot read /proc/kcore: {}", errno_name(&err)),
        )
        .needs("root, and lockdown off (confidentiality mode refuses it)"),
    }
}

fn modules(cx: &Context) -> Check {
    let path = Path::new("/proc/modules");
    match std::fs::read_to_string(path) {
        Ok(text) => check(
            "modules",
            Verdict::Available,
            format!("{} modules loaded", text.lines().count()),
        )
        .evidence(format!("{} is readable", path.display())),
        Err(_) if cx.config_enabled("CONFIG_MODULES") != Some(true) => check(
            "modules",
            Verdict::Missing,
            "no loadable modules: SystemTap-style module probes cannot work here",
        )
        .evidence(format!("{} does not exist", path.display()))
        .evidence(cx.config_says("CONFIG_MODULES"))
        .needs("CONFIG_MODULES=y")
        .instead("BPF (kscope probe needs no module)"),
        Err(err) => check(
            "modules",
            Verdict::Unknown,
            format!("cannot read {}: {}", path.display(), errno_name(&err)),
        ),
    }
}

fn debuginfo(cx: &Context, build_id: Option<&[u8]>) -> Check {
    let Some(id) = build_id else {
        return check(
            "debuginfo",
            Verdict::Unknown,
            "the running kernel's build-id is unknown (no /sys/kernel/notes)",
        )
        .needs("CONFIG_SYSFS=y to read /sys/kernel/notes");
    };
    let id_hex = notes::hex(id);
    let candidates: Vec<debuginfo::DebugCandidate> =
        debuginfo::vmlinux_candidates(&cx.kernel.release, Some(id))
            .iter()
            .filter_map(|p| debuginfo::inspect(p))
            .collect();
    let matching = candidates
        .iter()
        .find(|c| c.has_dwarf && c.build_id.as_deref() == Some(id));
    let mut result = match matching {
        Some(found) => check(
            "debuginfo",
            Verdict::Available,
            format!("{} matches the running kernel", found.path.display()),
        ),
        None => check(
            "debuginfo",
            Verdict::Missing,
            format!("no vmlinux with DWARF matches the running kernel (build-id {id_hex})"),
        )
        .needs("the distribution's kernel debug package for exactly this build (e.g. linux-image-RELEASE-dbg)")
        .instead("nothing is needed for kscope: BTF and kallsyms give types and symbols"),
    };
    result = result.evidence(format!(
        "running kernel build-id {id_hex} (/sys/kernel/notes)"
    ));
    if candidates.is_empty() {
        result = result.evidence(format!(
            "no vmlinux in the usual places: {}",
            debuginfo::vmlinux_candidates(&cx.kernel.release, Some(id))
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for candidate in &candidates {
        let their = candidate
            .build_id
            .as_deref()
            .map_or("no build-id".to_string(), notes::hex);
        let line = match (
            candidate.build_id.as_deref() == Some(id),
            candidate.has_dwarf,
        ) {
            (true, true) => format!("{}: build-id {their}, has DWARF", candidate.path.display()),
            (true, false) => format!(
                "{}: build-id matches but it has no DWARF (.debug_info)",
                candidate.path.display()
            ),
            (false, _) => format!(
                "{}: build-id {their} differs from the running kernel's: a mismatched debug \
                 vmlinux, the mismatch that stops SystemTap",
                candidate.path.display()
            ),
        };
        result = result.evidence(line);
    }
    result
}
