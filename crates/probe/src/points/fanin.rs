//! Syscall fan-ins, the second half of resolving `syscall.GLOB`: when a
//! glob matches many syscalls, those whose numbers the syscall table
//! knows become one [`FanIn`], one program on `raw_syscalls:sys_enter`
//! (or `sys_exit`) instead of a tracepoint each, with the context that
//! SystemTap gives such probes: `name`, `argstr` (entry), `retval` and
//! `$return` (return), and the arguments every matched syscall shares.

use super::{AttachKind, Attachment, Context, ContextVar, Kernel, catalog_error, text};
use crate::ast::ProbePoint;
use crate::catalog::{TpField, Tracepoint};
use crate::diagnostic::Diagnostic;
use crate::syscall_table;

/// How many syscalls a `syscall.GLOB` must match, at least, to be
/// attached as one [`FanIn`] rather than one tracepoint each (more than
/// 8). A program on `raw_syscalls` runs for every syscall of the system,
/// where one on `syscalls:sys_enter_NAME` runs only for its own, so a
/// small glob (`syscall.open*`, four) is cheaper as separate tracepoints:
/// their perf events open in about a millisecond together and close in
/// one round of the runtime's parallel close (tens of milliseconds).
/// Each tracepoint beyond that adds its detach time, about 30 ms on the
/// development machine (`syscall.*`, 360, took 11 s to end), against a
/// filter of a few instructions per syscall.
pub const FANIN_MIN_SYSCALLS: usize = 9;

/// One program for many syscalls: attached to `raw_syscalls:sys_enter`
/// (or `sys_exit` for `.return`), it runs the handler only when the
/// record's syscall number is one of `syscalls`, and never for a 32-bit
/// (compat) syscall, which `raw_syscalls` reports with ia32 numbers and
/// the `syscalls:*` tracepoints skip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanIn {
    /// `raw_syscalls:sys_enter` or `raw_syscalls:sys_exit`.
    pub tracepoint: Tracepoint,
    /// The offset of its `long id` field, the syscall number.
    pub id_offset: u32,
    /// A return probe (`sys_exit`).
    pub ret: bool,
    /// Each syscall with its number, sorted by number, as the attachment
    /// it would have had alone (what `-l` and `-L` list, and whose
    /// arguments `argstr` formats).
    pub syscalls: Vec<(u32, Attachment)>,
}

impl Attachment {
    /// How a fan-in was attached, as `kscope probe -v` says it:
    /// `syscall.* → 1 program on raw_syscalls:sys_enter (360 syscalls)`;
    /// `None` for other attachments.
    pub fn fan_in_summary(&self) -> Option<String> {
        let AttachKind::SyscallFanIn(f) = &self.kind else {
            return None;
        };
        Some(format!(
            "{} → 1 program on {}:{} ({} syscalls)",
            self.name,
            f.tracepoint.system,
            f.tracepoint.event,
            f.syscalls.len()
        ))
    }
}

/// `attachments` (one per syscall that `point` matched) with those in
/// the syscall table made one [`FanIn`] when there are at least
/// [`FANIN_MIN_SYSCALLS`] of them and the kernel has the `raw_syscalls`
/// tracepoint; the others stay as they are.
pub(super) fn fan_in(
    probe: usize,
    point: &ProbePoint,
    attachments: Vec<Attachment>,
    ret: bool,
    kernel: &Kernel<'_>,
) -> Result<Vec<Attachment>, Diagnostic> {
    let numbered = |a: &Attachment| a.function.as_deref().and_then(syscall_table::number);
    if attachments.iter().filter_map(numbered).count() < FANIN_MIN_SYSCALLS {
        return Ok(attachments);
    }
    let event = if ret { "sys_exit" } else { "sys_enter" };
    let raw = kernel
        .catalog
        .matching("raw_syscalls", event)
        .map_err(|e| catalog_error(point, e))?;
    let Some(tracepoint) = raw.into_iter().next() else {
        return Ok(attachments);
    };
    let (Some(id), Some(data)) = (
        tracepoint.field("id").map(|f| f.offset),
        tracepoint.field(if ret { "ret" } else { "args" }).cloned(),
    ) else {
        return Ok(attachments);
    };
    let (mut syscalls, mut out): (Vec<(u32, Attachment)>, Vec<Attachment>) =
        (Vec::new(), Vec::new());
    for a in attachments {
        match numbered(&a) {
            Some(nr) => syscalls.push((nr, a)),
            None => out.push(a),
        }
    }
    syscalls.sort_by_key(|(nr, _)| *nr);
    let context = fan_in_context(&syscalls, &data, ret);
    out.insert(
        0,
        Attachment {
            probe,
            name: text(point),
            kind: AttachKind::SyscallFanIn(FanIn {
                tracepoint,
                id_offset: id,
                ret,
                syscalls,
            }),
            context,
            function: None,
        },
    );
    Ok(out)
}

/// What a fan-in's handler can read: `name` (and `argstr` on entry,
/// `retval` and `$return` on return), and each argument that every one
/// of `syscalls` has under the same name and type at the same position,
/// read from `data`, the `args` array of `raw_syscalls:sys_enter` (or
/// its `ret` on return).
fn fan_in_context(syscalls: &[(u32, Attachment)], data: &TpField, ret: bool) -> Context {
    let mut vars = vec![("name".to_string(), ContextVar::SyscallName)];
    if ret {
        let ret = TpField {
            name: "return".to_string(),
            ..data.clone()
        };
        vars.push(("retval".to_string(), ContextVar::Retval(ret.clone())));
        return Context {
            targets: vec![("return".to_string(), ret)],
            vars,
        };
    }
    vars.push(("argstr".to_string(), ContextVar::SyscallArgstr));
    let first = syscalls
        .first()
        .map(|(_, a)| a.context.targets.clone())
        .unwrap_or_default();
    let shared = first
        .into_iter()
        .enumerate()
        .filter(|(position, (name, field))| {
            syscalls.iter().all(|(_, a)| {
                a.context.targets.get(*position).is_some_and(|(n, f)| {
                    n == name && f.c_type == field.c_type && f.kind == field.kind
                })
            })
        })
        .map(|(position, (name, field))| {
            let field = TpField {
                offset: data.offset + 8 * position as u32,
                size: 8,
                ..field
            };
            (name, field)
        })
        .collect();
    Context {
        targets: shared,
        vars,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{list, resolve};
    use super::*;
    use crate::catalog::Catalog;
    use crate::{SourceFile, parse};

    /// A `syscalls` format of the kernel's shape for `event` (ID `id`)
    /// with the 8-byte fields `fields` (C type, name) after
    /// `__syscall_nr`.
    fn syscall_format(event: &str, id: u32, fields: &[(&str, &str)]) -> String {
        let mut text = format!(
            "name: {event}\nID: {id}\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n"
        );
        for (i, (ty, name)) in fields.iter().enumerate() {
            let signed = i32::from(*ty == "long");
            text.push_str(&format!(
                "\tfield:{ty} {name};\toffset:{};\tsize:8;\tsigned:{signed};\n",
                16 + 8 * i
            ));
        }
        text.push_str("\nprint fmt: \"\"\n");
        text
    }

    /// A kernel with the raw_syscalls tracepoints and, for each of
    /// `syscalls` (name, arguments), its sys_enter and sys_exit.
    fn syscall_catalog(syscalls: &[(&str, &[(&str, &str)])]) -> Catalog {
        let mut texts = vec![
            (
                "raw_syscalls".to_string(),
                include_str!("../../tests/data/raw_sys_enter.format").to_string(),
            ),
            (
                "raw_syscalls".to_string(),
                include_str!("../../tests/data/raw_sys_exit.format").to_string(),
            ),
        ];
        for (i, (name, args)) in syscalls.iter().enumerate() {
            let id = 1000 + 2 * i as u32;
            texts.push((
                "syscalls".into(),
                syscall_format(&format!("sys_enter_{name}"), id, args),
            ));
            texts.push((
                "syscalls".into(),
                syscall_format(&format!("sys_exit_{name}"), id + 1, &[("long", "ret")]),
            ));
        }
        Catalog::from_formats(texts.iter().map(|(s, t)| (s.as_str(), t.as_str())))
            .expect("the formats parse")
    }

    const FD: (&str, &str) = ("unsigned int", "fd");

    /// Ten syscalls whose first argument is `unsigned int fd`, as this
    /// kernel's formats have them.
    const FD_SYSCALLS: [(&str, &[(&str, &str)]); 10] = [
        ("read", &[FD, ("char *", "buf"), ("size_t", "count")]),
        ("write", &[FD, ("const char *", "buf"), ("size_t", "count")]),
        ("close", &[FD]),
        (
            "lseek",
            &[FD, ("off_t", "offset"), ("unsigned int", "whence")],
        ),
        (
            "pread64",
            &[
                FD,
                ("char *", "buf"),
                ("size_t", "count"),
                ("loff_t", "pos"),
            ],
        ),
        (
            "pwrite64",
            &[
                FD,
                ("const char *", "buf"),
                ("size_t", "count"),
                ("loff_t", "pos"),
            ],
        ),
        ("fsync", &[FD]),
        ("fdatasync", &[FD]),
        ("fchdir", &[FD]),
        (
            "getdents",
            &[
                FD,
                ("struct linux_dirent *", "dirent"),
                ("unsigned int", "count"),
            ],
        ),
    ];

    fn resolve_text(catalog: &Catalog, text: &str) -> Result<Vec<Attachment>, Diagnostic> {
        let kernel = Kernel {
            catalog,
            hz: 100,
            has_kprobes: false,
            btf: None,
        };
        let file = SourceFile::new("p", text);
        resolve(&parse(&file).expect("the script parses"), &kernel)
    }

    fn fan_in_of(a: &Attachment) -> &FanIn {
        match &a.kind {
            AttachKind::SyscallFanIn(f) => f,
            other => panic!("not a fan-in: {other:?}"),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn a_glob_of_many_syscalls_is_one_program_on_raw_syscalls_with_what_they_share() {
        let catalog = syscall_catalog(&FD_SYSCALLS);
        let attachments = resolve_text(&catalog, "probe syscall.* {}").expect("resolves");
        assert_eq!(attachments.len(), 1, "{attachments:?}");
        let a = &attachments[0];
        let f = fan_in_of(a);
        assert_eq!(
            (f.tracepoint.system.as_str(), f.tracepoint.event.as_str()),
            ("raw_syscalls", "sys_enter")
        );
        assert_eq!(f.id_offset, 8);
        let numbers: Vec<u32> = f.syscalls.iter().map(|(nr, _)| *nr).collect();
        assert_eq!(numbers, [0, 1, 3, 8, 17, 18, 74, 75, 78, 81]);
        assert_eq!(a.name, "syscall.*");
        assert_eq!(
            a.fan_in_summary().as_deref(),
            Some("syscall.* → 1 program on raw_syscalls:sys_enter (10 syscalls)")
        );
        // $fd is the first argument of every one, read from args[0]; buf
        // is not shared (char * and const char *, and close has none).
        let targets: Vec<(&str, u32)> = a
            .context
            .targets
            .iter()
            .map(|(n, f)| (n.as_str(), f.offset))
            .collect();
        assert_eq!(targets, [("fd", 16)]);
        assert_eq!(a.context.var("name"), Some(&ContextVar::SyscallName));
        assert_eq!(a.context.var("argstr"), Some(&ContextVar::SyscallArgstr));
        // -l and -L still list each syscall.
        let listed = list(&attachments, false);
        assert_eq!(listed.len(), 10);
        assert!(
            listed.contains(&"syscall.fdatasync".to_string()),
            "{listed:?}"
        );
        let with_vars = list(&attachments, true);
        assert!(
            with_vars.contains(&"syscall.close name:string argstr:string $fd:long".to_string()),
            "{with_vars:?}"
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn a_return_fan_in_reads_ret_of_raw_syscalls_sys_exit() {
        let catalog = syscall_catalog(&FD_SYSCALLS);
        let attachments = resolve_text(&catalog, "probe syscall.*.return {}").expect("resolves");
        let f = fan_in_of(&attachments[0]);
        assert!(f.ret);
        assert_eq!(f.tracepoint.event, "sys_exit");
        let ret = attachments[0].context.target("return").expect("$return");
        assert_eq!((ret.offset, ret.size, ret.signed), (16, 8, true));
        assert!(matches!(
            attachments[0].context.var("retval"),
            Some(ContextVar::Retval(_))
        ));
        assert!(list(&attachments, false).contains(&"syscall.read.return".to_string()));
    }

    #[test]
    fn a_small_glob_stays_one_tracepoint_per_syscall() {
        let catalog = syscall_catalog(&FD_SYSCALLS);
        let attachments = resolve_text(&catalog, "probe syscall.f* {}").expect("resolves");
        assert_eq!(attachments.len(), 3);
        assert!(
            attachments
                .iter()
                .all(|a| matches!(a.kind, AttachKind::Tracepoint(_)))
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn an_unshared_target_is_the_unknown_target_error_listing_the_shared_ones() {
        let catalog = syscall_catalog(&FD_SYSCALLS);
        let file = SourceFile::new("p", "probe syscall.* { println($buf) }");
        let script = parse(&file).expect("the script parses");
        let kernel = Kernel {
            catalog: &catalog,
            hz: 100,
            has_kprobes: false,
            btf: None,
        };
        let err = crate::resolve(&script, &kernel).expect_err("$buf is not shared");
        let text = err.render(&file);
        assert!(
            text.contains("unknown target variable '$buf'") && text.contains("the probe has $fd"),
            "{text}"
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn a_syscall_missing_from_the_table_is_attached_alone_and_keeps_name() {
        let mut syscalls = FD_SYSCALLS.to_vec();
        syscalls.push(("kscope_future_call", &[FD]));
        let catalog = syscall_catalog(&syscalls);
        let attachments = resolve_text(&catalog, "probe syscall.* {}").expect("resolves");
        assert_eq!(attachments.len(), 2);
        assert_eq!(fan_in_of(&attachments[0]).syscalls.len(), 10);
        assert_eq!(attachments[1].name, "syscall.kscope_future_call");
        // `name` and `argstr` are usable across both kinds of point.
        let file = SourceFile::new(
            "p",
            "probe syscall.* { printf(\"%s %s\\n\", name, argstr) }",
        );
        let script = parse(&file).expect("the script parses");
        let kernel = Kernel {
            catalog: &catalog,
            hz: 100,
            has_kprobes: false,
            btf: None,
        };
        crate::resolve(&script, &kernel).expect("name and argstr are shared");
    }
}
