//! MiniDebugInfo: no Debian 12 binary in /usr/bin carries `.gnu_debugdata`
//! (Fedora's do), so the test builds one the way Fedora's
//! `find-debuginfo` does: an xz-compressed symtab-only ELF added as
//! `.gnu_debugdata` to a binary stripped of `.symtab`.

use std::path::Path;

use kscope_symbols::{Error, ObjectFile, Symbolizer};

use crate::util::{C_PROGRAM, compile, nm_symbol, run, symbolizer, tool};

/// Strips `bin` fully and adds `payload` as its `.gnu_debugdata`.
fn add_debugdata(bin: &Path, payload: &Path) {
    tool("strip", &["--strip-all"], &[bin]);
    let section = format!(".gnu_debugdata={}", payload.display());
    tool("objcopy", &["--add-section", &section], &[bin]);
}

#[test]
fn function_names_come_from_gnu_debugdata() {
    let dir = tempfile::tempdir().unwrap();
    let bin = compile(dir.path(), "gcc", "prog.c", C_PROGRAM, &["-O2", "-g"]);
    let (compute, _) = nm_symbol(&bin, "compute");
    let (main, _) = nm_symbol(&bin, "main");

    let mini = dir.path().join("mini");
    tool("objcopy", &["--only-keep-debug"], &[&bin, &mini]);
    tool(
        "strip",
        &["--strip-debug", "--remove-section=.comment"],
        &[&mini],
    );
    tool("xz", &["--keep"], &[&mini]);
    add_debugdata(&bin, &dir.path().join("mini.xz"));
    let sections = run("readelf", &["-S", bin.to_str().unwrap()]);
    assert!(sections.contains(".gnu_debugdata"));
    assert!(!sections.contains(".symtab"));

    let symbolizer = symbolizer(&bin);
    assert!(!symbolizer.has_dwarf());
    for (address, name) in [(compute, "compute"), (main + 3, "main")] {
        let frames = symbolizer.lookup(address);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].function.as_deref(), Some(name));
    }
    assert_eq!(symbolizer.lookup(main + 3)[0].offset, Some(3));
}

#[test]
fn corrupt_gnu_debugdata_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bin = compile(dir.path(), "gcc", "prog.c", C_PROGRAM, &["-O2"]);
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, b"\xfd7zXZ\0 this is not xz data").unwrap();
    add_debugdata(&bin, &garbage);
    let err = Symbolizer::new(ObjectFile::open(&bin).unwrap(), None).unwrap_err();
    assert!(matches!(err, Error::MiniDebugInfo { .. }), "{err}");
    assert!(err.to_string().contains(bin.to_str().unwrap()), "{err}");
}

#[test]
fn gnu_debugdata_that_is_not_elf_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bin = compile(dir.path(), "gcc", "prog.c", C_PROGRAM, &["-O2"]);
    let text = dir.path().join("text");
    std::fs::write(&text, b"plain text, not an ELF file").unwrap();
    tool("xz", &["--keep"], &[&text]);
    add_debugdata(&bin, &dir.path().join("text.xz"));
    let err = Symbolizer::new(ObjectFile::open(&bin).unwrap(), None).unwrap_err();
    assert!(matches!(err, Error::MiniDebugInfo { .. }), "{err}");
}
