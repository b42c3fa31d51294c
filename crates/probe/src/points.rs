//! Probe-point resolution, the first half of pass 2: each `probe` point of
//! a script becomes one or more [`Attachment`]s (a glob such as
//! `syscall.open*` becomes one per match), each with the mechanism that
//! runs it and the context it offers the handler: the `$field` target
//! variables of a tracepoint and the tapset variables of a syscall probe
//! (`name`, `argstr`, `retval`). Points whose mechanism this kernel lacks
//! (kprobes for `kernel.function` and tapset aliases such as `vfs.read`)
//! stop here with one sentence naming what is missing and the nearest
//! point that works. A syscall glob of many syscalls becomes one
//! attachment on `raw_syscalls` instead ([`FanIn`], in `points/fanin`).

use crate::ast::{Literal, ProbePoint, Script};
use crate::catalog::{
    Catalog, CatalogError, FieldKind, TpField, Tracepoint, did_you_mean, glob_match,
};
use crate::diagnostic::Diagnostic;
use crate::source::Span;

mod fanin;

pub use fanin::{FANIN_MIN_SYSCALLS, FanIn};

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
    /// Many syscalls through one program on `raw_syscalls:sys_enter` (or
    /// `sys_exit`), which runs the handler only for their numbers.
    SyscallFanIn(FanIn),
    /// Every call of (or, with `retprobe`, return from) a kernel
    /// function, through a kprobe.
    Kprobe {
        /// The function.
        function: String,
        /// A return probe.
        retprobe: bool,
    },
}

/// A variable the point offers without `$`: SystemTap's tapset variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextVar {
    /// `name`: the syscall's name, or a tapset alias's (`vfs.read`).
    Name(String),
    /// A tapset variable that is a function argument (`bytes_to_read` in
    /// `vfs.read`): a long.
    Field(TpField),
    /// `argstr`: the syscall's arguments, formatted in user space; the
    /// fields are the sys_enter tracepoint's arguments.
    Argstr(Vec<TpField>),
    /// `retval`: the return value of a syscall.
    Retval(TpField),
    /// `name` of a fan-in: the name of the syscall whose number the
    /// record carries, looked up when the probe fires.
    SyscallName,
    /// `argstr` of a fan-in: formatted in user space with the arguments
    /// of the syscall whose number the record carries.
    SyscallArgstr,
}

impl ContextVar {
    /// Whether `self` and `other` give a handler the same kind of value,
    /// so that a probe whose points offer them can use the variable: the
    /// fan-in forms stand for their fixed ones (a `syscall.*` probe has
    /// both when some matched syscalls are not in the fan-in).
    pub fn same_kind(&self, other: &ContextVar) -> bool {
        let kind = |v: &ContextVar| match v {
            ContextVar::Name(_) | ContextVar::SyscallName => 0,
            ContextVar::Field(_) => 1,
            ContextVar::Argstr(_) | ContextVar::SyscallArgstr => 2,
            ContextVar::Retval(_) => 3,
        };
        kind(self) == kind(other)
    }
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

impl Attachment {
    /// The point and the variables it offers, as `stap -L` lists them:
    /// `syscall.read fd:long ... $fd:long $buf:long`.
    pub fn listing(&self) -> String {
        let mut line = self.name.clone();
        for (name, var) in &self.context.vars {
            let ty = match var {
                ContextVar::Retval(_) | ContextVar::Field(_) => "long",
                _ => "string",
            };
            line.push_str(&format!(" {name}:{ty}"));
        }
        for (name, field) in &self.context.targets {
            let ty = match field_is_string(field) {
                Some(true) => "string",
                Some(false) => "long",
                None => "unreadable",
            };
            line.push_str(&format!(" ${name}:{ty}"));
        }
        line
    }
}

/// What `stap -l` lists for `attachments`, or with `with_vars` what
/// `stap -L` lists ([`Attachment::listing`]): sorted, each line once; a
/// fan-in lists each of its syscalls.
pub fn list(attachments: &[Attachment], with_vars: bool) -> Vec<String> {
    let mut lines: Vec<String> = attachments
        .iter()
        .flat_map(|a| match &a.kind {
            AttachKind::SyscallFanIn(f) => f.syscalls.iter().map(|(_, a)| a).collect(),
            _ => vec![a],
        })
        .map(|a| {
            if with_vars {
                a.listing()
            } else {
                a.name.clone()
            }
        })
        .collect();
    lines.sort();
    lines.dedup();
    lines
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
    /// The kernel's BTF, for kernel functions and their parameters.
    pub btf: Option<&'a kscope_btf::Btf<'a>>,
}

/// Tapset variables of the kprobe aliases: (alias, variable, parameter).
const ALIAS_VARIABLES: [(&str, &str, &str); 14] = [
    ("vfs.read", "file", "file"),
    ("vfs.read", "buf", "buf"),
    ("vfs.read", "bytes_to_read", "count"),
    ("vfs.read", "pos", "pos"),
    ("vfs.write", "file", "file"),
    ("vfs.write", "buf", "buf"),
    ("vfs.write", "bytes_to_write", "count"),
    ("vfs.write", "pos", "pos"),
    ("tcp.sendmsg", "sock", "sk"),
    ("tcp.sendmsg", "size", "size"),
    ("tcp.recvmsg", "sock", "sk"),
    ("tcp.recvmsg", "size", "len"),
    ("udp.sendmsg", "sock", "sk"),
    ("udp.sendmsg", "size", "len"),
];

/// Where the x86-64 `struct pt_regs` holds the first six arguments (di,
/// si, dx, cx, r8, r9) and the return value (ax), as a kprobe program's
/// context: include/uapi/asm/ptrace.h.
const ARGUMENT_REGISTERS: [u32; 6] = [112, 104, 96, 88, 72, 64];
const RETURN_REGISTER: u32 = 80;

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

/// Resolves every point of every probe of `script`; a script without
/// probes is an error.
pub fn resolve(script: &Script, kernel: &Kernel<'_>) -> Result<Vec<Attachment>, Diagnostic> {
    // As in SystemTap: a session without probes would wait for nothing.
    if script.probes.is_empty() {
        return Err(Diagnostic::new(
            Span::default(),
            "the script has no probes; add one, such as 'probe begin { printf(\"hello\\n\") }'",
            None,
        ));
    }
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
        // SystemTap's tapset probe on raw_syscalls: every syscall, with
        // `name` (and `retval` on return) — the fan-in of `syscall.*`.
        ["syscall_any"] | ["syscall_any", "return"] if no_args => {
            syscalls(probe, point, "*", names.len() == 2, kernel)
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
        ["kernel", "function"] | ["kernel", "function", "return" | "call"]
            if kernel.has_kprobes =>
        {
            let Some(Literal::Str(pattern)) = arg(1) else {
                return Err(Diagnostic::new(
                    point.span,
                    "kernel.function needs the function's name as a string, as in kernel.function(\"vfs_read\")",
                    None,
                ));
            };
            kprobes(
                probe,
                point,
                pattern,
                names.len() == 3 && names[2] == "return",
                None,
                kernel,
            )
        }
        _ if kernel.has_kprobes && KPROBE_ALIASES.iter().any(|(a, _, _)| *a == written) => {
            let (alias, function, _) = KPROBE_ALIASES
                .iter()
                .find(|(a, _, _)| *a == written)
                .copied()
                .unwrap_or_default();
            kprobes(probe, point, function, false, Some(alias), kernel)
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
        "kscope attaches kprobes to kernel.function(\"NAME\") and the vfs/tcp/udp aliases only so far, not to modules or statements"
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

/// Kprobes on the kernel functions that `pattern` names (a glob over the
/// functions BTF knows), with their parameters as `$NAME` from BTF.
fn kprobes(
    probe: usize,
    point: &ProbePoint,
    pattern: &str,
    retprobe: bool,
    alias: Option<&str>,
    kernel: &Kernel<'_>,
) -> Result<Vec<Attachment>, Diagnostic> {
    let mut functions: Vec<String> = if pattern.contains(['*', '?']) {
        let Some(btf) = kernel.btf else {
            return Err(Diagnostic::new(
                point.span,
                "a glob over kernel functions needs the kernel's BTF (/sys/kernel/btf/vmlinux), which is missing",
                None,
            ));
        };
        btf.function_names()
            .filter(|f| glob_match(pattern, f))
            .map(str::to_string)
            .collect()
    } else {
        vec![pattern.to_string()]
    };
    functions.sort();
    if functions.is_empty() {
        let hint = kernel
            .btf
            .and_then(|btf| did_you_mean(pattern, btf.function_names()))
            .map(|c| format!("; did you mean \"{c}\"?"))
            .unwrap_or_default();
        return Err(Diagnostic::new(
            point.span,
            format!("no kernel function matches \"{pattern}\"{hint}"),
            None,
        ));
    }
    if functions.len() > 1000 {
        return Err(Diagnostic::new(
            point.span,
            format!(
                "\"{pattern}\" matches {} kernel functions; kscope attaches at most 1000 kprobes at once",
                functions.len()
            ),
            None,
        ));
    }
    if let Some(btf) = kernel.btf
        && functions.len() == 1
        && !btf.has_function(&functions[0])
    {
        let hint = did_you_mean(&functions[0], btf.function_names())
            .map(|c| format!("; did you mean \"{c}\"?"))
            .unwrap_or_default();
        return Err(Diagnostic::new(
            point.span,
            format!("the kernel has no function \"{}\"{hint}", functions[0]),
            None,
        ));
    }
    let suffix = if retprobe { ".return" } else { "" };
    Ok(functions
        .into_iter()
        .map(|function| {
            let field = |name: &str, offset: u32, v: &kscope_btf::Value| TpField {
                name: name.to_string(),
                c_type: v.type_name.clone(),
                offset,
                size: if v.kind == kscope_btf::ValueKind::Pointer {
                    8
                } else {
                    v.size
                },
                signed: v.signed,
                kind: match v.kind {
                    kscope_btf::ValueKind::Other => FieldKind::Other,
                    _ if matches!(v.size, 1 | 2 | 4 | 8)
                        || v.kind == kscope_btf::ValueKind::Pointer =>
                    {
                        FieldKind::Int
                    }
                    _ => FieldKind::Other,
                },
            };
            let mut context = Context::default();
            if let Some(btf) = kernel.btf {
                if retprobe {
                    if let Some(ret) = btf.function_return(&function) {
                        context
                            .targets
                            .push(("return".into(), field("return", RETURN_REGISTER, &ret)));
                    }
                } else {
                    let params = btf.function_params(&function).unwrap_or_default();
                    for (param, offset) in params.iter().zip(ARGUMENT_REGISTERS) {
                        if !param.name.is_empty() {
                            context
                                .targets
                                .push((param.name.clone(), field(&param.name, offset, param)));
                        }
                    }
                }
            }
            if let Some(alias) = alias {
                context
                    .vars
                    .push(("name".into(), ContextVar::Name(alias.to_string())));
                for (_, var, param) in ALIAS_VARIABLES.iter().filter(|(a, _, _)| *a == alias) {
                    if let Some(f) = context.target(param).cloned() {
                        context.vars.push((var.to_string(), ContextVar::Field(f)));
                    }
                }
            }
            Attachment {
                probe,
                name: match alias {
                    Some(a) => a.to_string(),
                    None => format!("kernel.function(\"{function}\"){suffix}"),
                },
                kind: AttachKind::Kprobe {
                    function: function.clone(),
                    retprobe,
                },
                context,
                function: Some(function),
            }
        })
        .collect())
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
        let mut vars = vec![("name".to_string(), ContextVar::Name(name.clone()))];
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
    fanin::fan_in(probe, point, out, ret, kernel)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::{SourceFile, parse};

    #[test]
    fn a_listing_is_sorted_once_each_with_the_variables_stap_shows() {
        let catalog = Catalog::from_formats([
            (
                "syscalls",
                include_str!("../tests/data/sys_enter_read.format"),
            ),
            (
                "syscalls",
                include_str!("../tests/data/sys_exit_read.format"),
            ),
        ])
        .expect("the formats parse");
        let kernel = Kernel {
            catalog: &catalog,
            hz: 100,
            has_kprobes: false,
            btf: None,
        };
        let file = SourceFile::new("p", "probe syscall.read.return, begin, syscall.read {}");
        let script = parse(&file).expect("the points parse");
        let attachments = resolve(&script, &kernel).expect("the points resolve");
        assert_eq!(
            list(&attachments, false),
            ["begin", "syscall.read", "syscall.read.return"]
        );
        let listed = list(&attachments, true);
        assert!(
            listed[1].starts_with("syscall.read ")
                && listed[1].ends_with("$fd:long $buf:long $count:long"),
            "{listed:?}"
        );
        assert!(listed[2].contains(" retval:long"), "{listed:?}");
    }
}
