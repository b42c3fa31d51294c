//! Unit tests of `Core` on cores assembled in code: a header, a note
//! segment and load segments, one of which holds a mapped ELF image with a
//! build-id.

use super::*;
use kscope_elf::ET_CORE;
use kscope_testkit::elf::{NoteBuilder, elf_header, file_note, phdr, prpsinfo, prstatus};

/// An ELF image as mapped at its base: header, two PT_LOAD (lowest vaddr
/// 0x10), a PT_NOTE at vaddr 0x200 with a GNU build-id.
fn mapped_image(build_id: &[u8]) -> Vec<u8> {
    let mut img = elf_header(3, 62, 64, 3);
    img.extend(phdr((PT_LOAD, 5, 0, 0x1010, 0x1000, 0x1000, 0x1000)));
    img.extend(phdr((PT_LOAD, 4, 0, 0x10, 0x100, 0x100, 0x1000)));
    img.extend(phdr((PT_NOTE, 4, 0x200, 0x200, 0x24, 0x24, 4)));
    img.resize(0x200, 0);
    img.extend(
        NoteBuilder::default()
            .note("GNU", NT_GNU_BUILD_ID, build_id)
            .bytes,
    );
    img.resize(0x1000, 0);
    img
}

/// A core with threads 10 and 11, prpsinfo, siginfo, an NT_FILE of two
/// mappings of /bin/prog (0x400000, 0x401000) and one of /lib/x.so, and
/// three PT_LOAD: the image at 0x400000 (fully dumped), 0x401000 with
/// nothing dumped, 0x7f0000 with 16 of 0x1000 bytes dumped.
fn sample_core() -> Vec<u8> {
    let mut siginfo = vec![0u8; 128];
    siginfo[0] = 11;
    siginfo[8] = 1;
    let notes = NoteBuilder::default()
        .note("CORE", NT_PRSTATUS, &prstatus(10, 11, 0x400100, 0x7f0008))
        .note("CORE", NT_PRPSINFO, &prpsinfo(10, "prog", "/bin/prog -x"))
        .note("CORE", NT_SIGINFO, &siginfo)
        .note(
            "CORE",
            NT_FILE,
            &file_note(
                4096,
                &[
                    (0x400000, 0x401000, 0, "/bin/prog"),
                    (0x401000, 0x402000, 1, "/bin/prog"),
                    (0x7f0000, 0x7f1000, 0, "/lib/x.so"),
                ],
            ),
        )
        .note("CORE", NT_FPREGSET, &[0; 512])
        .note("CORE", NT_PRSTATUS, &prstatus(11, 0, 0x400200, 0x7f0010))
        .note("LINUX", NT_X86_XSTATE, &[0; 64])
        .bytes;
    let notes_at = 64 + 4 * 56;
    let image_at = (notes_at + notes.len()).next_multiple_of(0x1000);
    let stack_at = image_at + 0x1000;
    let mut core = elf_header(ET_CORE, 62, 64, 4);
    core.extend(phdr((
        PT_NOTE,
        0,
        notes_at as u64,
        0,
        notes.len() as u64,
        0,
        4,
    )));
    core.extend(phdr((
        PT_LOAD,
        5,
        image_at as u64,
        0x400000,
        0x1000,
        0x1000,
        0x1000,
    )));
    core.extend(phdr((
        PT_LOAD,
        5,
        stack_at as u64,
        0x401000,
        0,
        0x1000,
        0x1000,
    )));
    core.extend(phdr((
        PT_LOAD,
        6,
        stack_at as u64,
        0x7f0000,
        16,
        0x1000,
        0x1000,
    )));
    core.extend(notes);
    core.resize(image_at, 0);
    core.extend(mapped_image(&[0xab, 0xcd, 0xef, 0x01]));
    core.extend((0u8..16).collect::<Vec<_>>());
    core
}

#[test]
fn parses_a_core() {
    let bytes = sample_core();
    let core = Core::parse(&bytes).unwrap();
    assert_eq!(core.arch(), Arch::X86_64);
    let tids: Vec<i32> = core.threads().iter().map(|t| t.tid).collect();
    assert_eq!(tids, [10, 11]);
    assert!(core.threads()[0].has_fpregset && !core.threads()[0].has_xstate);
    assert!(!core.threads()[1].has_fpregset && core.threads()[1].has_xstate);
    assert_eq!(core.process().unwrap().psargs, b"/bin/prog -x");
    assert_eq!(
        core.siginfo().unwrap().describe(),
        "SIGSEGV: address not mapped, at 0x0"
    );
    assert_eq!(core.mapped_files().len(), 3);
    assert_eq!(core.notes().count(), 7);
    assert!(!core.is_truncated());
}

#[test]
fn reads_memory_only_where_dumped() {
    let bytes = sample_core();
    let core = Core::parse(&bytes).unwrap();
    assert_eq!(core.read(0x400000, 4), Some(&b"\x7fELF"[..]));
    assert_eq!(core.read(0x7f0004, 4), Some(&[4u8, 5, 6, 7][..]));
    assert_eq!(
        core.read_u64(0x7f0008),
        Some(u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]))
    );
    assert_eq!(core.read(0x7f000c, 8), None, "past p_filesz");
    assert_eq!(core.read(0x401000, 1), None, "p_filesz 0");
    assert_eq!(core.read(0x3fffff, 1), None, "below every segment");
    assert_eq!(core.read(0x400ff8, 16), None, "across segments");
    assert_eq!(core.read(u64::MAX, 1), None);
    assert_eq!(core.read(0x400000, usize::MAX), None);
}

#[test]
fn finds_modules_with_bias_and_build_id() {
    let bytes = sample_core();
    let core = Core::parse(&bytes).unwrap();
    let modules = core.modules();
    assert_eq!(modules.len(), 2);
    let prog = &modules[0];
    assert_eq!(prog.path, Path::new("/bin/prog"));
    assert_eq!((prog.start, prog.end), (0x400000, 0x402000));
    assert_eq!(prog.load_bias, Some(0x400000));
    assert_eq!(prog.build_id, Some(&[0xab, 0xcd, 0xef, 0x01][..]));
    let lib = &modules[1];
    assert_eq!(lib.path, Path::new("/lib/x.so"));
    assert_eq!(
        (lib.load_bias, lib.build_id),
        (None, None),
        "no ELF header dumped"
    );
}

#[test]
fn a_module_file_of_another_build_is_named_and_not_read() {
    let bytes = sample_core();
    let core = Core::parse(&bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rebuilt = dir.path().join("prog");
    std::fs::write(&rebuilt, mapped_image(&[1, 2, 3, 4])).unwrap();
    let mut unwinder = Unwinder::new(&core);
    // /bin/prog does not exist here: nothing to compare, nothing named.
    assert!(unwinder.build_id_mismatches().is_empty());
    let mut unwinder = Unwinder::new(&core);
    unwinder.replace_path(Path::new("/bin/prog"), &rebuilt);
    let mismatches = unwinder.build_id_mismatches();
    assert_eq!(mismatches.len(), 1, "{mismatches:?}");
    assert_eq!(mismatches[0].path, Path::new("/bin/prog"));
    assert_eq!(mismatches[0].file, rebuilt);
    assert_eq!(mismatches[0].in_core, [0xab, 0xcd, 0xef, 0x01]);
    assert!(unwinder.build_id_mismatch(0x400100).is_some());
    // No address in it is given to look up; /lib/x.so (no build-id in the
    // core) is not judged.
    assert_eq!(unwinder.relative_address(0x400100), None);
    assert!(unwinder.build_id_mismatch(0x7f0000).is_none());
}

#[test]
fn header_errors_say_where_and_what() {
    let good = sample_core();
    let err = |bytes: &[u8]| Core::parse(bytes).unwrap_err();
    let mut b = good.clone();
    b[16] = 2;
    assert_eq!(
        (err(&b).offset, err(&b).to_string()),
        (
            16,
            "at byte 0x10: expected e_type ET_CORE (4), found 2".to_string()
        )
    );
    let mut b = good.clone();
    b[18] = 40;
    assert_eq!(err(&b).offset, 18);
    let mut b = good.clone();
    b[4] = 1;
    assert_eq!(err(&b).offset, 4);
    let mut b = good.clone();
    b[54] = 32;
    assert_eq!(err(&b).offset, 54);
    let mut b = good.clone();
    b[0] = 0;
    assert_eq!(err(&b).offset, 0);
    let mut b = good.clone();
    b[56..58].copy_from_slice(&500u16.to_le_bytes());
    assert!(err(&b).expected.contains("program header"), "{}", err(&b));
    let mut b = good.clone();
    b[56..58].copy_from_slice(&0xffffu16.to_le_bytes());
    b[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(err(&b).expected.contains("sh_info"), "{}", err(&b));
    let mut b = good.clone();
    b[64 + 32..64 + 40].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(err(&b).expected.contains("PT_NOTE"), "{}", err(&b));
}

#[test]
fn aarch64_cores_parse_with_raw_registers() {
    let mut b = elf_header(ET_CORE, 183, 64, 1);
    let mut regs = vec![0u8; 392];
    regs[32] = 3;
    let notes = NoteBuilder::default()
        .note("CORE", NT_PRSTATUS, &regs)
        .bytes;
    b.extend(phdr((PT_NOTE, 0, 120, 0, notes.len() as u64, 0, 4)));
    b.extend(notes);
    let core = Core::parse(&b).unwrap();
    assert_eq!(core.arch(), Arch::Aarch64);
    assert_eq!(core.threads()[0].tid, 3);
    assert_eq!(core.threads()[0].registers.pc(), None);
}

#[test]
fn truncated_cores_never_panic() {
    let bytes = sample_core();
    for cut in 0..bytes.len() {
        if let Ok(core) = Core::parse(&bytes[..cut]) {
            assert!(
                core.is_truncated() || cut >= bytes.len() - 16,
                "cut at {cut}"
            );
            let _ = core.modules();
            let _ = core.read(0x400000, 64);
        }
    }
}

#[test]
fn hostile_page_size_and_filesz_past_memsz() {
    let mut bytes = sample_core();
    // p_filesz of the stack segment (4th header) larger than its p_memsz.
    let ph = 64 + 3 * 56;
    bytes[ph + 40..ph + 48].copy_from_slice(&8u64.to_le_bytes());
    let core = Core::parse(&bytes).unwrap();
    assert_eq!(core.read(0x7f0000, 8).map(<[u8]>::len), Some(8));
    assert_eq!(core.read(0x7f0000, 9), None, "past p_memsz");
    let mut auxv = Vec::new();
    for v in [AT_PAGESZ, u64::MAX] {
        auxv.extend_from_slice(&v.to_le_bytes());
    }
    let notes = NoteBuilder::default()
        .note("CORE", NT_AUXV, &auxv)
        .note(
            "CORE",
            NT_FILE,
            &file_note(4096, &[(0x400000, 0x401000, 0, "/bin/prog")]),
        )
        .bytes;
    let mut core = elf_header(ET_CORE, 62, 64, 2);
    let notes_at = 64 + 2 * 56;
    let image_at = (notes_at + notes.len()).next_multiple_of(0x1000);
    core.extend(phdr((
        PT_NOTE,
        0,
        notes_at as u64,
        0,
        notes.len() as u64,
        0,
        4,
    )));
    core.extend(phdr((
        PT_LOAD,
        5,
        image_at as u64,
        0x400000,
        0x1000,
        0x1000,
        0x1000,
    )));
    core.extend(notes);
    core.resize(image_at, 0);
    core.extend(mapped_image(&[1]));
    let core = Core::parse(&core).unwrap();
    assert_eq!(core.aux_value(AT_PAGESZ), Some(u64::MAX));
    assert_eq!(
        core.modules()[0].load_bias,
        Some(0x400000),
        "falls back to 4 KiB pages"
    );
    assert_eq!(core.modules()[0].build_id, Some(&[1u8][..]));
}
