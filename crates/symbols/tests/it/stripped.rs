//! Stripped binaries: `.dynsym` is the only symbol table left, and an
//! address it does not cover gives no function, never a panic.

use crate::util::{C_PROGRAM, compile, nm_symbol, symbolizer, tool};

#[test]
fn stripped_binary_falls_back_to_dynsym() {
    let dir = tempfile::tempdir().unwrap();
    // -rdynamic exports compute() and main() through .dynsym.
    let bin = compile(
        dir.path(),
        "gcc",
        "prog.c",
        C_PROGRAM,
        &["-O2", "-g", "-rdynamic"],
    );
    let (compute, _) = nm_symbol(&bin, "compute");
    tool("strip", &[], &[&bin]);
    let symbolizer = symbolizer(&bin);
    assert!(!symbolizer.has_dwarf());
    let frames = symbolizer.lookup(compute + 2);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].function.as_deref(), Some("compute"));
    assert_eq!(frames[0].offset, Some(2));
    assert_eq!(frames[0].file, None);
    assert_eq!(frames[0].line, None);
    assert!(!frames[0].inlined);
}

#[test]
fn stripped_binary_without_exports_reports_no_function() {
    let dir = tempfile::tempdir().unwrap();
    let bin = compile(dir.path(), "gcc", "prog.c", C_PROGRAM, &["-O2", "-g"]);
    let (compute, size) = nm_symbol(&bin, "compute");
    tool("strip", &[], &[&bin]);
    let symbolizer = symbolizer(&bin);
    for address in compute..compute + size {
        assert!(
            symbolizer
                .lookup(address)
                .iter()
                .all(|f| f.function.is_none())
        );
    }
}

#[test]
fn function_symbol_gives_the_raw_name_start_and_size_that_nm_gives() {
    let dir = tempfile::tempdir().unwrap();
    let bin = compile(dir.path(), "gcc", "prog.c", C_PROGRAM, &["-O2", "-g"]);
    let (compute, size) = nm_symbol(&bin, "compute");
    let symbolizer = symbolizer(&bin);
    for address in [compute, compute + size - 1] {
        let symbol = symbolizer.function_symbol(address).unwrap();
        assert_eq!(
            (symbol.name, symbol.address, symbol.size),
            ("compute", compute, size)
        );
    }
    assert_ne!(
        symbolizer.function_symbol(compute + size).map(|s| s.name),
        Some("compute")
    );
}
