//! Probe-point resolution, the first half of pass 2: each `probe` point of
//! a script becomes one or more [`Attachment`]s (a glob such as
//! `syscall.open*` becomes one per match), each with the mechanism that
//! runs it and the context it offers the handler: the `$field` target
//! variables of a tracepoint and the tapset variables of a syscall probe
//! (`name`, `argstr`, `retval`). Points whose mechanism this kernel lacks
//! (kprobes for `kernel.function` and tapset aliases such as `vfs.read`)
//! stop here with one sentence naming what is missing and the nearest
//! point that works.

use crate::ast::{Literal, ProbePoint, Script};
use crate::catalog::{
    Catalog, CatalogError, FieldKind, TpField, Tracepoint, did_you_mean, glob_match,
};
use crate::diagnostic::Diagnostic;

/// How a handler is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachKind {
    /// Once, before every other probe (`begin`).
    Begin,
    /// Once, when the session ends (`end`).
    End,
    /// Once, when the session ends because of a runtime error (`error`).
    Error,
    /// Every `period_ns` on one CPU (`timer.ms(N)` and friends).
    Timer {
        /// The interval.
        period_ns: u64,
    },
    /// Every tick on every CPU (`timer.profile`).
    Profile {
        /// The interval: one tick of the kernel's HZ.
        period_ns: u64,
    },
    /// Every hit of a tracepoint.
    Tracepoint(Tracepoint),
}

/// A variable the point offers without `$`: SystemTap's tapset variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextVar {
    /// `name`: the syscall's name.
    SyscallName(String),
    /// `argstr`: the syscall's arguments, formatted in user space; the
    /// fields are the sys_enter tracepoint's arguments.
    Argstr(Vec<TpField>),
    /// `retval`: the return value of a syscall.
    Retval(TpField),
}

/// What a handler at one attachment can read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// `$NAME` target variables: tracepoint fields (`$return` is the
    /// `ret` field of a syscall's exit).
    pub targets: Vec<(String, TpField)>,
    /// Tapset variables.
    pub vars: Vec<(String, ContextVar)>,
}

impl Context {
    /// The target variable `$name`.
    pub fn target(&self, name: &str) -> Option<&TpField> {
        self.targets.iter().find(|(n, _)| n == name).map(|(_, f)| f)
    }

    /// The tapset variable `name`.
    pub fn var(&self, name: &str) -> Option<&ContextVar> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// One place a probe's handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Index of the probe in [`Script::probes`].
    pub probe: usize,
    /// The point as `pp()` prints it, e.g. `syscall.openat`.
    pub name: String,
    /// How it is started.
    pub kind: AttachKind,
    /// What the handler can read there.
    pub context: Context,
    /// The syscall's name for syscall probes: what `probefunc()` gives.
    pub function: Option<String>,
}

/// What resolution needs to know of the running kernel.
#[derive(Debug)]
pub struct Kernel<'a> {
    /// Its tracepoints.
    pub catalog: &'a Catalog,
    /// CONFIG_HZ, for `timer.jiffies` and `timer.profile`.
    pub hz: u64,
    /// Whether perf's kprobe PMU exists
    /// (/sys/bus/event_source/devices/kprobe).
    pub has_kprobes: bool,
}

/// Tapset aliases that need kprobes: the alias, the kernel function it
/// probes, and the nearest point that works without kprobes.
const KPROBE_ALIASES: [(&str, &str, &str); 8] = [
    ("vfs.read", "vfs_read", "syscall.read"),
    ("vfs.write", "vfs_write", "syscall.write"),
    ("vfs.open", "vfs_open", "syscall.openat"),
    ("tcp.sendmsg", "tcp_sendmsg", "syscall.sendto"),
    ("tcp.recvmsg", "tcp_recvmsg", "syscall.recvfrom"),
    ("tcp.disconnect", "tcp_disconnect", "syscall.shutdown"),
    ("udp.sendmsg", "udp_sendmsg", "syscall.sendto"),
    ("udp.recvmsg", "udp_recvmsg", "syscall.recvfrom"),
];

/// Tapset aliases that tracepoints implement.
const TRACEPOINT_ALIASES: [(&str, &str, &str); 4] = [
    ("scheduler.ctxswitch", "sched", "sched_switch"),
    ("scheduler.process_exit", "sched", "sched_process_exit"),
    ("scheduler.process_fork", "sched", "sched_process_fork"),
    ("scheduler.wakeup", "sched", "sched_wakeup"),
];

/// Resolves every point of every probe of `script`.
pub fn resolve(script: &Script, kernel: &Kernel<'_>) -> Result<Vec<Attachment>, Diagnostic> {
    let mut out = Vec::new();
    for (index, probe) in script.probes.iter().enumerate() {
        for point in &probe.points {
            let found = resolve_point(index, point, kernel)?;
            if found.is_empty() {
                return Err(Diagnostic::new(
                    point.span,
                    format!(
                        "probe point '{}' matches nothing on this kernel",
                        text(point)
                    ),
                    None,
                ));
            }
            out.extend(found);
        }
    }
    Ok(out)
}

/// The point as written, e.g. `kernel.trace("sched:*")`.
pub fn text(point: &ProbePoint) -> String {
    point
        .components
        .iter()
        .map(|c| match &c.arg {
            Some(arg) => format!("{}({arg})", c.name),
            None => c.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn catalog_error(point: &ProbePoint, e: CatalogError) -> Diagnostic {
    Diagnostic::new(
        point.span,
        format!("reading the tracepoints of this kernel: {e}"),
        None,
    )
}

fn resolve_point(
    probe: usize,
    point: &ProbePoint,
    kernel: &Kernel<'_>,
) -> Result<Vec<Attachment>, Diagnostic> {
    let names: Vec<&str> = point.components.iter().map(|c| c.name.as_str()).collect();
    let arg = |i: usize| point.components.get(i).and_then(|c| c.arg.as_ref());
    let no_args = point.components.iter().all(|c| c.arg.is_none());
    let simple = |kind: AttachKind| {
        vec![Attachment {
            probe,
            name: text(point),
            kind,
            context: Context::default(),
            function: None,
        }]
    };
    let written = text(point);
    match names.as_slice() {
        ["begin"] if no_args => Ok(simple(AttachKind::Begin)),
        ["end"] if no_args => Ok(simple(AttachKind::End)),
        ["error"] if no_args => Ok(simple(AttachKind::Error)),
        ["timer", "profile"] if no_args => Ok(simple(AttachKind::Profile {
            period_ns: 1_000_000_000 / kernel.hz.max(1),
        })),
        ["timer", unit] => {
            let n = match arg(1) {
                Some(Literal::Int(n)) if *n > 0 => *n as u64,
                _ => {
                    return Err(Diagnostic::new(
                        point.span,
                        format!(
                            "'timer.{unit}' needs a positive interval, as in timer.{unit}(100)"
                        ),
                        None,
                    ));
                }
            };
            let period_ns = match *unit {
                "s" | "sec" => n.saturating_mul(1_000_000_000),
                "ms" | "msec" => n.saturating_mul(1_000_000),
                "us" | "usec" => n.saturating_mul(1_000),
                "ns" | "nsec" => n,
                "hz" => 1_000_000_000 / n,
                "jiffies" => n.saturating_mul(1_000_000_000 / kernel.hz.max(1)),
                _ => {
                    return Err(unknown(
                        point,
                        &written,
                        [
                            "timer.ms(N)",
                            "timer.s(N)",
                            "timer.us(N)",
                            "timer.ns(N)",
                            "timer.hz(N)",
                            "timer.jiffies(N)",
                            "timer.profile",
                        ],
                    ));
                }
            };
            if period_ns < 100_000 {
                return Err(Diagnostic::new(
                    point.span,
                    format!(
                        "'{written}' fires more often than every 100 us; the kernel's perf clock cannot sample that fast"
                    ),
                    None,
                ));
            }
            Ok(simple(AttachKind::Timer { period_ns }))
        }
        ["syscall", name] | ["syscall", name, "return"] if no_args => {
            let ret = names.len() == 3;
            syscalls(probe, point, name, ret, kernel)
        }
        ["kernel", "trace"] => {
            let Some(Literal::Str(spec)) = arg(1) else {
                return Err(Diagnostic::new(
                    point.span,
                    "kernel.trace needs the tracepoint's name as a string, as in kernel.trace(\"sched:sched_switch\")",
                    None,
                ));
            };
            let (system, event) = spec.split_once(':').unwrap_or(("*", spec.as_str()));
            let found = kernel
                .catalog
                .matching(system, event)
                .map_err(|e| catalog_error(point, e))?;
            if found.is_empty() {
                let hint = did_you_mean(
                    event,
                    kernel.catalog.names().iter().map(|(_, e)| e.as_str()),
                )
                .map(|e| format!("; did you mean \"{e}\"?"))
                .unwrap_or_default();
                return Err(Diagnostic::new(
                    point.span,
                    format!("no tracepoint matches \"{spec}\"{hint}"),
                    None,
                ));
            }
            Ok(found
                .into_iter()
                .map(|tp| tracepoint_attachment(probe, tp))
                .collect())
        }
        _ => {
            if let Some((_, system, event)) =
                TRACEPOINT_ALIASES.iter().find(|(a, _, _)| *a == written)
            {
                let found = kernel
                    .catalog
                    .matching(system, event)
                    .map_err(|e| catalog_error(point, e))?;
                return Ok(found
                    .into_iter()
                    .map(|tp| Attachment {
                        name: written.clone(),
                        ..tracepoint_attachment(probe, tp)
                    })
                    .collect());
            }
            if let Some(message) = needs_kprobes(&names, &written, kernel) {
                return Err(Diagnostic::new(point.span, message, None));
            }
            Err(unknown(
                point,
                &written,
                KPROBE_ALIASES
                    .iter()
                    .map(|(a, _, _)| *a)
                    .chain(TRACEPOINT_ALIASES.iter().map(|(a, _, _)| *a))
                    .chain(["begin", "end", "error", "timer.profile"]),
            ))
        }
    }
}

/// The message for a point that needs kprobes, if it is one.
fn needs_kprobes(names: &[&str], written: &str, kernel: &Kernel<'_>) -> Option<String> {
    let (function, nearest) =
        if let Some((_, f, n)) = KPROBE_ALIASES.iter().find(|(a, _, _)| *a == written) {
            (format!("kernel.function(\"{f}\")"), n.to_string())
        } else if matches!(names.first(), Some(&"kernel") | Some(&"module"))
            && names.iter().any(|n| *n == "function" || *n == "statement")
        {
            (
                written.to_string(),
                "kernel.trace(\"EVENT\") or syscall.NAME".to_string(),
            )
        } else {
            return None;
        };
    let missing = if kernel.has_kprobes {
        "kscope attaches BPF to tracepoints, syscalls and timers only so far, not to kprobes"
    } else {
        "this kernel has no kprobes (CONFIG_KPROBES is not set; `kscope doctor` shows it)"
    };
    Some(format!(
        "'{written}' needs a kprobe on {function}, and {missing}; the nearest probe that works here is {nearest}"
    ))
}

fn unknown<'a>(
    point: &ProbePoint,
    written: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Diagnostic {
    let hint = did_you_mean(written, candidates)
        .map(|c| format!("; did you mean '{c}'?"))
        .unwrap_or_default();
    Diagnostic::new(
        point.span,
        format!("unknown probe point '{written}'{hint}"),
        None,
    )
}

fn tracepoint_attachment(probe: usize, tp: Tracepoint) -> Attachment {
    let targets = tp
        .fields
        .iter()
        .map(|f| (f.name.clone(), f.clone()))
        .collect();
    Attachment {
        probe,
        name: format!("kernel.trace(\"{}:{}\")", tp.system, tp.event),
        context: Context {
            targets,
            vars: Vec::new(),
        },
        kind: AttachKind::Tracepoint(tp),
        function: None,
    }
}

fn syscalls(
    probe: usize,
    point: &ProbePoint,
    pattern: &str,
    ret: bool,
    kernel: &Kernel<'_>,
) -> Result<Vec<Attachment>, Diagnostic> {
    let all = kernel.catalog.syscall_names();
    let names: Vec<&String> = all.iter().filter(|n| glob_match(pattern, n)).collect();
    if names.is_empty() {
        let hint = did_you_mean(pattern, all.iter().map(String::as_str))
            .map(|c| format!("; did you mean 'syscall.{c}'?"))
            .unwrap_or_default();
        return Err(Diagnostic::new(
            point.span,
            format!("no syscall tracepoint matches '{pattern}'{hint}"),
            None,
        ));
    }
    let mut out = Vec::new();
    for name in names {
        let Some((enter, exit)) = kernel
            .catalog
            .syscall(name)
            .map_err(|e| catalog_error(point, e))?
        else {
            continue;
        };
        let suffix = if ret { ".return" } else { "" };
        let mut vars = vec![("name".to_string(), ContextVar::SyscallName(name.clone()))];
        let args: Vec<TpField> = enter
            .fields
            .iter()
            .filter(|f| f.name != "__syscall_nr")
            .cloned()
            .collect();
        let (tp, targets) = if ret {
            let targets: Vec<(String, TpField)> = exit
                .field("ret")
                .map(|f| vec![("return".to_string(), f.clone())])
                .unwrap_or_default();
            if let Some((_, f)) = targets.first() {
                vars.push(("retval".to_string(), ContextVar::Retval(f.clone())));
            }
            (exit, targets)
        } else {
            vars.push(("argstr".to_string(), ContextVar::Argstr(args.clone())));
            let targets = args.iter().map(|f| (f.name.clone(), f.clone())).collect();
            (enter, targets)
        };
        out.push(Attachment {
            probe,
            name: format!("syscall.{name}{suffix}"),
            kind: AttachKind::Tracepoint(tp),
            context: Context { targets, vars },
            function: Some(name.clone()),
        });
    }
    Ok(out)
}

/// The type a script sees for a field: strings for character arrays,
/// longs for integers and pointers, nothing for the rest.
pub fn field_is_string(field: &TpField) -> Option<bool> {
    match field.kind {
        FieldKind::Int => Some(false),
        FieldKind::CharArray | FieldKind::DataLocString | FieldKind::RelLocString => Some(true),
        FieldKind::Other => None,
    }
}
