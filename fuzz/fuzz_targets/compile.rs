//! Passes 2 and 3 on any script that parses: probe-point resolution
//! (against a catalog of the read syscall's two tracepoints), name and type
//! checking, and BPF generation give programs or a diagnostic, never a
//! panic, and every diagnostic points inside the text and renders.

#![no_main]

use kscope_probe::catalog::Catalog;
use kscope_probe::codegen::Options;
use kscope_probe::points::Kernel;
use kscope_probe::{SourceFile, compile, parse};
use libfuzzer_sys::fuzz_target;

const SYS_ENTER_READ: &str = include_str!("../../crates/probe/tests/data/sys_enter_read.format");
const SYS_EXIT_READ: &str = include_str!("../../crates/probe/tests/data/sys_exit_read.format");

fuzz_target!(|text: &str| {
    let file = SourceFile::new("fuzz.stp", text);
    let Ok(script) = parse(&file) else { return };
    let catalog = Catalog::from_formats([("syscalls", SYS_ENTER_READ), ("syscalls", SYS_EXIT_READ)])
        .expect("the formats parse");
    let kernel = Kernel {
        catalog: &catalog,
        hz: 250,
        has_kprobes: false,
        btf: None,
    };
    match compile(&file, &script, &kernel, &Options::default()) {
        Ok((generated, attachments)) => {
            assert_eq!(generated.programs.len(), attachments.len());
            for program in &generated.programs {
                assert_eq!(program.insns.len(), program.spans.len());
                assert!(program.insns.last().is_some_and(|i| i.code == 0x95));
            }
        }
        Err(d) => {
            for span in std::iter::once(d.span).chain(d.notes.iter().map(|(s, _)| *s)) {
                assert!(span.start <= span.end && span.end <= text.len(), "{d:?}");
            }
            assert!(d.render(&file).starts_with("fuzz.stp:"));
        }
    }
});
