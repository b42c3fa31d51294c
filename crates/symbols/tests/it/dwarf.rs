//! DWARF lookups compared with binutils `addr2line -f -i -C` at every
//! address of the test program's functions, at -O0 and -O2, with plain
//! and compressed debug sections.

use crate::util::{C_PROGRAM, binutils_frames, compile, kscope_frames, nm_symbol, symbolizer};

fn compare_with_binutils(flags: &[&str]) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let bin = compile(dir.path(), "gcc", "prog.c", C_PROGRAM, flags);
    let symbolizer = symbolizer(&bin);
    assert!(symbolizer.has_dwarf());
    let mut addresses = Vec::new();
    for name in ["compute", "main"] {
        let (start, size) = nm_symbol(&bin, name);
        addresses.extend(start..start + size);
    }
    let expected = binutils_frames(&bin, &addresses);
    assert_eq!(expected.len(), addresses.len());
    let mut inlined = 0;
    for (address, expected) in addresses.iter().zip(&expected) {
        let frames = symbolizer.lookup(*address);
        assert_eq!(
            &kscope_frames(&symbolizer, *address),
            expected,
            "at {address:#x}"
        );
        assert!(!frames.last().unwrap().inlined);
        assert!(frames[..frames.len() - 1].iter().all(|f| f.inlined));
        if frames.len() > 1 {
            inlined += 1;
            assert_eq!(frames[0].function.as_deref(), Some("square"));
        }
    }
    // The outermost frame's offset is from the symbol's start.
    let (main, _) = nm_symbol(&bin, "main");
    let frames = symbolizer.lookup(main + 1);
    assert_eq!(frames.last().unwrap().offset, Some(1));
    assert_eq!(frames.last().unwrap().function.as_deref(), Some("main"));
    inlined
}

#[test]
fn o0_matches_binutils() {
    compare_with_binutils(&["-O0", "-g"]);
}

#[test]
fn o2_inlined_frames_match_binutils() {
    let inlined = compare_with_binutils(&["-O2", "-g"]);
    assert!(inlined > 0, "no address inside the inlined square()");
}

#[test]
fn compressed_debug_sections_match_binutils() {
    // -gz writes SHF_COMPRESSED (zlib) .debug_* sections.
    compare_with_binutils(&["-O2", "-g", "-gz"]);
}

#[test]
fn unknown_address_gives_no_frames() {
    let dir = tempfile::tempdir().unwrap();
    let bin = compile(dir.path(), "gcc", "prog.c", C_PROGRAM, &["-O0", "-g"]);
    assert!(symbolizer(&bin).lookup(0xffff_ffff_0000).is_empty());
}
