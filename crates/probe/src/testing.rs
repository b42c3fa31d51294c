//! Helpers for this crate's unit tests: scripts compiled against a catalog
//! of format files written the kernel's way (`tests/data/`), with no
//! kernel needed.

use crate::catalog::Catalog;
use crate::codegen::{Generated, Options};
use crate::points::{Attachment, Kernel};
use crate::{Diagnostic, SourceFile, compile, parse};

/// The tracepoints the helpers resolve against: the read and openat
/// syscalls and sched_switch.
pub(crate) fn catalog() -> Catalog {
    Catalog::from_formats([
        (
            "syscalls",
            include_str!("../tests/data/sys_enter_read.format"),
        ),
        (
            "syscalls",
            include_str!("../tests/data/sys_exit_read.format"),
        ),
        (
            "syscalls",
            include_str!("../tests/data/sys_enter_openat.format"),
        ),
        (
            "syscalls",
            include_str!("../tests/data/sys_exit_openat.format"),
        ),
        ("sched", include_str!("../tests/data/sched_switch.format")),
    ])
    .expect("the formats parse")
}

/// Compiles `text` (named t.stp), with `target()` 4242 and
/// `task_struct`'s real_parent and tgid at 1000 and 2000.
pub(crate) fn try_compile(text: &str) -> Result<(Generated, Vec<Attachment>), String> {
    let file = SourceFile::new("t.stp", text);
    let script = parse(&file).map_err(|d| d.render(&file))?;
    let catalog = catalog();
    let kernel = kernel(&catalog);
    let options = Options {
        target: 4242,
        realtime_offset_ns: 0,
        task_offsets: Some((1000, 2000)),
        cpus: 2,
        compat_status: None,
        own_pid: 0,
    };
    compile(&file, &script, &kernel, &options).map_err(|d: Diagnostic| d.render(&file))
}

/// A kernel of `catalog`'s tracepoints, HZ 250, without kprobes or BTF.
pub(crate) fn kernel(catalog: &crate::catalog::Catalog) -> Kernel<'_> {
    Kernel {
        catalog,
        hz: 250,
        has_kprobes: false,
        btf: None,
    }
}

/// Compiles `text`, which must compile.
pub(crate) fn compiled(text: &str) -> (Generated, Vec<Attachment>) {
    try_compile(text).unwrap_or_else(|e| panic!("{text}:\n{e}"))
}
