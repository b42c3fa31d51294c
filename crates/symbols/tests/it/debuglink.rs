//! Separate debug files: found through `.gnu_debuglink` (same dir and
//! `.debug/`, CRC checked) and through a build-id directory under a fake
//! sysroot, and then used for file:line.

use std::path::{Path, PathBuf};

use kscope_symbols::{Candidate, DebugFiles, ObjectFile, Symbolizer};

use crate::util::{C_PROGRAM, compile, nm_symbol, run, tool};

/// Builds `dir/prog` with its DWARF split into `dir/prog.debug` and a
/// debuglink to it; returns both paths.
fn split(dir: &Path) -> (PathBuf, PathBuf) {
    let bin = compile(
        dir,
        "gcc",
        "prog.c",
        C_PROGRAM,
        &["-O2", "-g", "-Wl,--build-id"],
    );
    let debug = dir.join("prog.debug");
    tool("objcopy", &["--only-keep-debug"], &[&bin, &debug]);
    tool("strip", &["-g"], &[&bin]);
    let link = format!("--add-gnu-debuglink={}", debug.display());
    tool("objcopy", &[&link], &[&bin]);
    (bin, debug)
}

/// Checks that `debug` resolves `compute` of `bin` to prog.c:<line>.
fn assert_resolves(bin: &Path, debug: ObjectFile) {
    let (compute, _) = nm_symbol(bin, "compute");
    let debug_path = debug.path().unwrap().to_path_buf();
    let object = ObjectFile::open(bin).unwrap();
    let symbolizer = Symbolizer::new(object, Some(debug)).unwrap();
    assert!(symbolizer.has_dwarf());
    let frames = symbolizer.lookup(compute);
    let outer = frames.last().unwrap();
    assert_eq!(outer.function.as_deref(), Some("compute"));
    assert_eq!(outer.offset, Some(0));
    assert!(
        outer.file.as_deref().unwrap().ends_with("/prog.c"),
        "{outer}"
    );
    // binutils reads the same DWARF straight from the debug file.
    let args = ["-e", debug_path.to_str().unwrap(), &format!("{compute:#x}")];
    let expected = run("addr2line", &args);
    let found = format!("{}:{}", outer.file.as_deref().unwrap(), outer.line.unwrap());
    assert_eq!(expected.trim().split(" (").next().unwrap(), found);
}

#[test]
fn debuglink_in_same_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (bin, debug) = split(dir.path());
    let object = ObjectFile::open(&bin).unwrap();
    let (name, crc) = object.debuglink().unwrap();
    assert_eq!(name, "prog.debug");
    assert_eq!(crc, ObjectFile::open(&debug).unwrap().crc32());
    let found = DebugFiles::find(&object, Some(dir.path())).unwrap();
    assert_eq!(found.path(), Some(debug.as_path()));
    assert_resolves(&bin, found);
}

#[test]
fn debuglink_in_dot_debug_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (bin, debug) = split(dir.path());
    std::fs::create_dir(dir.path().join(".debug")).unwrap();
    let moved = dir.path().join(".debug/prog.debug");
    std::fs::rename(&debug, &moved).unwrap();
    let object = ObjectFile::open(&bin).unwrap();
    let found = DebugFiles::find(&object, Some(dir.path())).unwrap();
    assert_eq!(found.path(), Some(moved.as_path()));
}

#[test]
fn debuglink_with_wrong_crc_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (bin, debug) = split(dir.path());
    let mut bytes = std::fs::read(&debug).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&debug, bytes).unwrap();
    let object = ObjectFile::open(&bin).unwrap();
    assert!(DebugFiles::find(&object, Some(dir.path())).is_none());
}

#[test]
fn build_id_under_sysroot() {
    let dir = tempfile::tempdir().unwrap();
    let (bin, debug) = split(dir.path());
    // Move the binary away from its debug file, then install the debug
    // file under <sysroot>/usr/lib/debug/.build-id/ab/cdef….debug.
    let elsewhere = dir.path().join("bin");
    std::fs::create_dir(&elsewhere).unwrap();
    let moved = elsewhere.join("prog");
    std::fs::rename(&bin, &moved).unwrap();
    let object = ObjectFile::open(&moved).unwrap();
    let id = object.build_id().unwrap();
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let sysroot = dir.path().join("sysroot");
    let by_id = sysroot.join(format!(
        "usr/lib/debug/.build-id/{}/{}.debug",
        &hex[..2],
        &hex[2..]
    ));
    std::fs::create_dir_all(by_id.parent().unwrap()).unwrap();
    std::fs::rename(&debug, &by_id).unwrap();

    let candidates = DebugFiles::candidates(&object, Some(&sysroot));
    assert_eq!(candidates[0], Candidate::BuildId(by_id.clone()));
    assert!(candidates.contains(&Candidate::Debuglink(elsewhere.join("prog.debug"))));
    assert!(candidates.contains(&Candidate::Debuglink(elsewhere.join(".debug/prog.debug"))));
    let global = sysroot
        .join("usr/lib/debug")
        .join(elsewhere.strip_prefix("/").unwrap());
    assert!(candidates.contains(&Candidate::Debuglink(global.join("prog.debug"))));

    let found = DebugFiles::find(&object, Some(&sysroot)).unwrap();
    assert_eq!(found.path(), Some(by_id.as_path()));
    assert_eq!(found.build_id(), object.build_id());
    assert_resolves(&moved, found);
}

#[test]
fn no_debug_file_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let (bin, debug) = split(dir.path());
    std::fs::remove_file(debug).unwrap();
    let object = ObjectFile::open(&bin).unwrap();
    assert!(DebugFiles::find(&object, Some(dir.path())).is_none());
}

#[test]
fn debuglink_under_global_debug_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (bin, debug) = split(dir.path());
    let sysroot = dir.path().join("sysroot");
    let real_dir = dir.path().canonicalize().unwrap();
    let global = sysroot
        .join("usr/lib/debug")
        .join(real_dir.strip_prefix("/").unwrap())
        .join("prog.debug");
    std::fs::create_dir_all(global.parent().unwrap()).unwrap();
    std::fs::rename(&debug, &global).unwrap();
    let object = ObjectFile::open(&bin).unwrap();
    let found = DebugFiles::find(&object, Some(&sysroot)).unwrap();
    assert_eq!(found.path(), Some(global.as_path()));
}

#[test]
fn bytes_from_memory_have_no_debuglink_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let (bin, _) = split(dir.path());
    let object = ObjectFile::from_bytes(std::fs::read(&bin).unwrap()).unwrap();
    assert!(object.debuglink().is_some());
    assert_eq!(object.path(), None);
    let candidates = DebugFiles::candidates(&object, Some(dir.path()));
    assert_eq!(candidates.len(), 1);
    assert!(matches!(candidates[0], Candidate::BuildId(_)));
}
