//! Passes 2 and 3 in their one order: probe points resolved against the
//! kernel, then names and types checked ([`resolve`]), then code
//! generated ([`Resolved::generate`]). [`compile`] runs both; `kscope
//! probe` runs them one at a time, to report and stop after each.
//! [`Needs`] says, from the parsed script alone, which of the kernel's
//! facts the passes will ask for, so that nothing else is read.

use crate::ast::{ProbePoint, Script};
use crate::check::{self, Types};
use crate::codegen::{self, Generated, Options};
use crate::diagnostic::Diagnostic;
use crate::points::{self, Attachment, Kernel};
use crate::source::SourceFile;

/// What a script needs from the running kernel, decided from its AST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Needs {
    /// The tracepoints' names and formats, from tracefs: any point but
    /// `begin`, `end`, `error` and timers.
    pub tracefs: bool,
    /// BTF for the parameters of kprobe points (when the kernel has
    /// kprobes): any point but `begin`, `end`, `error`, timers, syscalls
    /// and `kernel.trace`.
    pub kprobe_btf: bool,
    /// `task_struct`'s layout from BTF: a call of `ppid()`.
    pub task_layout: bool,
    /// Where `thread_info.status` is in `task_struct`, from BTF: a
    /// syscall glob, which may become a fan-in that must skip compat
    /// syscalls.
    pub compat_status: bool,
}

impl Needs {
    /// What `script` needs.
    pub fn of(script: &Script) -> Needs {
        let points = || script.probes.iter().flat_map(|p| &p.points);
        Needs {
            tracefs: points().any(needs_tracefs),
            kprobe_btf: points().any(is_kprobe_point),
            task_layout: crate::visit::calls(script, "ppid"),
            compat_status: points().any(is_syscall_glob),
        }
    }
}

/// Whether a point needs tracefs: anything but begin, end, error and
/// timers.
fn needs_tracefs(point: &ProbePoint) -> bool {
    !matches!(
        point.components.first().map(|c| c.name.as_str()),
        Some("begin" | "end" | "error" | "timer")
    )
}

/// Whether a point is a `syscall.GLOB` (or `.return`) with a wildcard.
fn is_syscall_glob(point: &ProbePoint) -> bool {
    matches!(
        point.components.first().map(|c| c.name.as_str()),
        Some("syscall")
    ) && point
        .components
        .get(1)
        .is_some_and(|c| c.name.contains(['*', '?']))
}

/// Whether a point is a kprobe, whose parameters come from BTF: anything
/// but begin, end, error, timers, syscalls and kernel.trace.
fn is_kprobe_point(point: &ProbePoint) -> bool {
    let names: Vec<&str> = point.components.iter().map(|c| c.name.as_str()).collect();
    !matches!(
        names.as_slice(),
        ["begin" | "end" | "error" | "timer" | "syscall", ..] | [_, "trace", ..]
    )
}

/// A script after pass 2: its points' attachments and its types.
#[derive(Debug)]
pub struct Resolved {
    /// One per resolved probe point.
    pub attachments: Vec<Attachment>,
    /// Every variable's and function's type.
    pub types: Types,
}

/// Pass 2: resolves the probe points of `script` against `kernel`, then
/// checks names and types.
pub fn resolve(script: &Script, kernel: &Kernel<'_>) -> Result<Resolved, Diagnostic> {
    let attachments = points::resolve(script, kernel)?;
    let types = check::check(script, &attachments)?;
    Ok(Resolved { attachments, types })
}

impl Resolved {
    /// Pass 3: one BPF program per attachment.
    pub fn generate(
        &self,
        file: &SourceFile,
        script: &Script,
        options: &Options,
    ) -> Result<Generated, Diagnostic> {
        codegen::generate(file, script, &self.types, &self.attachments, options)
    }
}

/// Passes 2 and 3 for a parsed script: resolves its probe points against
/// `kernel`, checks names and types, and generates the BPF programs.
pub fn compile(
    file: &SourceFile,
    script: &Script,
    kernel: &Kernel<'_>,
    options: &Options,
) -> Result<(Generated, Vec<Attachment>), Diagnostic> {
    let resolved = resolve(script, kernel)?;
    let generated = resolved.generate(file, script, options)?;
    Ok((generated, resolved.attachments))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn needs(text: &str) -> Needs {
        Needs::of(&parse(&SourceFile::new("t.stp", text)).expect("the script parses"))
    }

    #[test]
    fn begin_end_error_and_timers_need_nothing_from_the_kernel() {
        assert_eq!(
            needs("probe begin, end, error, timer.ms(10) { printf(\"ppid\\n\") }"),
            Needs::default()
        );
    }

    #[test]
    fn tracepoints_need_tracefs_and_only_kprobes_need_btf() {
        let syscall = needs("probe syscall.read { }");
        assert!(syscall.tracefs && !syscall.kprobe_btf);
        let trace = needs("probe kernel.trace(\"sched:sched_switch\") { }");
        assert!(trace.tracefs && !trace.kprobe_btf);
        let kprobe = needs("probe vfs.read { }");
        assert!(kprobe.tracefs && kprobe.kprobe_btf);
        let function = needs("probe kernel.function(\"do_sys_open\") { }");
        assert!(function.kprobe_btf);
    }

    #[test]
    fn task_layout_is_needed_by_a_call_of_ppid_not_by_the_word() {
        assert!(needs("probe begin { printf(\"%d\\n\", ppid()) }").task_layout);
        assert!(needs("function p() { return ppid() } probe begin { p() }").task_layout);
        assert!(!needs("probe begin { ppid_seen = 1 } # ppid").task_layout);
    }

    #[test]
    fn the_compat_test_is_needed_by_a_syscall_glob_only() {
        assert!(needs("probe syscall.* { }").compat_status);
        assert!(needs("probe begin, syscall.*.return { }").compat_status);
        assert!(!needs("probe syscall.read { }").compat_status);
        assert!(!needs("probe kernel.trace(\"syscalls:*\") { }").compat_status);
    }
}
