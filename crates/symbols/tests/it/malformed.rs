//! Malformed input: truncated binaries, garbage and corrupted DWARF give
//! errors or empty lookups, never panics.

use kscope_symbols::{ObjectFile, Symbolizer};
use object::{Object, ObjectSection};

use crate::util::{C_PROGRAM, compile, nm_symbol};

/// Parses `bytes` and, when that works, looks up every address in
/// `addresses`; what matters is that nothing panics.
fn exercise(bytes: Vec<u8>, addresses: std::ops::Range<u64>) -> bool {
    let Ok(object) = ObjectFile::from_bytes(bytes) else {
        return false;
    };
    let Ok(symbolizer) = Symbolizer::new(object, None) else {
        return false;
    };
    for address in addresses {
        symbolizer.lookup(address);
    }
    true
}

#[test]
fn truncated_files_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bin = compile(dir.path(), "gcc", "prog.c", C_PROGRAM, &["-O2", "-g"]);
    let (compute, size) = nm_symbol(&bin, "compute");
    let bytes = std::fs::read(&bin).unwrap();
    let mut lengths: Vec<usize> = vec![0, 4, 16, 52, 63, 64, 65, 200, 1000];
    lengths.extend((1..16).map(|i| bytes.len() * i / 16));
    for len in lengths {
        exercise(bytes[..len].to_vec(), compute..compute + size);
    }
    assert!(!exercise(bytes[..63].to_vec(), 0..0));
}

#[test]
fn garbage_is_an_error() {
    let mut garbage = b"\x7fELF\x02\x01\x01\0".to_vec();
    // A simple xorshift, so the bytes are the same on every run.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    while garbage.len() < 4096 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        garbage.extend_from_slice(&state.to_le_bytes());
    }
    assert!(!exercise(garbage, 0..64));
    let err = ObjectFile::from_bytes(b"\0\0\0\0 garbage".to_vec()).unwrap_err();
    assert!(err.to_string().contains("<memory>"), "{err}");
}

#[test]
fn corrupted_sections_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bin = compile(dir.path(), "gcc", "prog.c", C_PROGRAM, &["-O2", "-g"]);
    let (compute, size) = nm_symbol(&bin, "compute");
    let bytes = std::fs::read(&bin).unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    let names = [
        ".debug_info",
        ".debug_abbrev",
        ".debug_line",
        ".debug_str",
        ".debug_aranges",
        ".symtab",
        ".strtab",
        ".note.gnu.build-id",
    ];
    for name in names {
        let Some((offset, len)) = file.section_by_name(name).and_then(|s| s.file_range()) else {
            continue;
        };
        for fill in [0x00, 0xff, 0x7f] {
            let mut corrupt = bytes.clone();
            let range = offset as usize..(offset + len) as usize;
            corrupt[range].fill(fill);
            exercise(corrupt, compute..compute + size);
        }
    }
}
