//! Hostile and broken dumps: cut short anywhere, with offsets and sizes
//! that point outside the file or claim too much, and pages that
//! decompress to more than a page. Each gives an error that says where
//! and what, never a panic, a hang or a huge allocation.

use kscope_vmcore::{Absence, Compression, Error, KernelMemory, Vmcore};

use crate::build::{Elf, Load, PAGE, VMCOREINFO, flatten, note, small_kdump, standard_notes};

/// Opens `bytes` and, when that works, reads every page, the ranges and
/// the kernel layout: any of it may fail, none of it may panic.
fn exercise(bytes: Vec<u8>) -> Result<Vmcore, Error> {
    let dump = Vmcore::from_bytes(bytes)?;
    let mut page = vec![0u8; PAGE as usize];
    for pfn in 0..10 {
        let _ = dump.read_phys(pfn * PAGE, &mut page);
    }
    let _ = dump.memory_ranges();
    let _ = KernelMemory::new(&dump).map(|k| k.read_u64(0xffff_ffff_8100_0000));
    Ok(dump)
}

fn format_offset(err: &Error) -> u64 {
    match err {
        Error::Format { offset, .. } | Error::TooLarge { offset, .. } => *offset,
        e => panic!("expected a format error, got {e}"),
    }
}

#[test]
fn dumps_cut_anywhere_give_errors_not_panics() {
    let (kdump, layout) = small_kdump(Compression::Zlib).build_with_layout();
    // Every byte through the headers, every 97th after.
    for len in (0..layout.descs as usize + 64).chain((0..kdump.len()).step_by(97)) {
        let result = exercise(kdump[..len].to_vec());
        if len < layout.bitmaps as usize + layout.bitmap_len as usize {
            let err = result.expect_err("the headers or bitmaps are cut");
            assert!(matches!(err, Error::Format { .. }), "cut at {len}: {err}");
        }
    }
    // Cut inside the page data: the open works, the pages past the cut
    // do not.
    for len in [layout.data as usize + 10, kdump.len() - 10] {
        let dump = Vmcore::from_bytes(kdump[..len].to_vec()).unwrap();
        let err = dump.read_phys(7 * PAGE, &mut [0u8; 8]).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{err}");
        assert!(!err.is_missing());
    }

    let elf = Elf {
        notes: standard_notes(VMCOREINFO),
        loads: vec![Load {
            paddr: 0,
            vaddr: 0,
            memsz: 2 * PAGE,
            data: vec![3; 2 * PAGE as usize],
        }],
    }
    .build();
    let data_start = elf.len() - 2 * PAGE as usize;
    for len in (0..data_start + 8).chain((data_start..elf.len()).step_by(101)) {
        let result = exercise(elf[..len].to_vec());
        if len < data_start {
            assert!(result.is_err(), "cut at {len} inside the headers or notes");
        } else {
            let dump = result.unwrap();
            let err = dump.read_phys(2 * PAGE - 8, &mut [0u8; 8]).unwrap_err();
            assert!(err.to_string().contains("truncated"), "{err}");
        }
    }

    let stream = flatten(&kdump, 512, None, false);
    for len in (0..4200).chain((4200..stream.len()).step_by(89)) {
        let err = exercise(stream[..len].to_vec()).expect_err("a stream without its end marker");
        assert!(matches!(err, Error::Format { .. }), "cut at {len}: {err}");
    }
}

#[test]
fn header_fields_that_claim_too_much_are_errors_that_say_where() {
    let (kdump, layout) = small_kdump(Compression::Zlib).build_with_layout();
    let sub = layout.sub_header as usize;
    let set32 = |at: usize, v: u32| {
        let mut b = kdump.clone();
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        b
    };
    let set64 = |at: usize, v: u64| {
        let mut b = kdump.clone();
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        b
    };
    // block_size: not a power of two, too small, too large.
    for bs in [0, 3000, 512, 1 << 20] {
        let err = exercise(set32(428, bs)).unwrap_err();
        assert_eq!(format_offset(&err), 428, "{err}");
    }
    // bitmap_blocks beyond the file; sub_hdr_size beyond the file.
    let err = exercise(set32(436, u32::MAX)).unwrap_err();
    assert_eq!(format_offset(&err), 436, "{err}");
    let err = exercise(set32(432, u32::MAX)).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err}");
    // VMCOREINFO and notes: too large, outside the file.
    let err = exercise(set64(sub + 40, 1 << 40)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                what: "size_vmcoreinfo",
                ..
            }
        ),
        "{err}"
    );
    let err = exercise(set64(sub + 32, 1 << 40)).unwrap_err();
    assert_eq!(format_offset(&err), 1 << 40, "{err}");
    let err = exercise(set64(sub + 56, u64::MAX)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                what: "size_note",
                ..
            }
        ),
        "{err}"
    );
    let err = exercise(set64(sub + 48, kdump.len() as u64 - 10)).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err}");
    // A huge max_mapnr over a small bitmap: the bitmap bounds the pages
    // (and, too small for two bitmaps, serves as both, as in crash).
    let dump = exercise(set64(sub + 96, u64::MAX)).unwrap();
    assert_eq!(dump.memory_ranges().unwrap()[0].start, 0);
    dump.read_phys(3 * PAGE, &mut [0u8; 8]).unwrap();
    let err = dump.read_phys(1 << 40, &mut [0u8; 8]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::PageMissing {
                why: Absence::NotRam,
                ..
            }
        ),
        "{err}"
    );
    // A negative header version reads as the oldest.
    assert!(exercise(set32(8, u32::MAX)).is_ok());
}

#[test]
fn bad_page_descriptors_and_bombs_fail_the_page_not_the_dump() {
    let (kdump, layout) = small_kdump(Compression::Zlib).build_with_layout();
    let desc = |pfn: u64| (layout.descs + 24 * pfn) as usize;
    let patched = |pfn: u64, at: usize, bytes: &[u8]| {
        let mut b = kdump.clone();
        b[desc(pfn) + at..desc(pfn) + at + bytes.len()].copy_from_slice(bytes);
        Vmcore::from_bytes(b).unwrap()
    };
    let mut page = vec![0u8; PAGE as usize];
    // Offset past the end of the file, negative, size too large or zero.
    let dump = patched(2, 0, &(1u64 << 50).to_le_bytes());
    let err = dump.read_phys(2 * PAGE, &mut page).unwrap_err();
    assert_eq!(format_offset(&err), 1 << 50, "{err}");
    dump.read_phys(3 * PAGE, &mut page).unwrap();
    let err = patched(2, 0, &(-5i64).to_le_bytes())
        .read_phys(2 * PAGE, &mut page)
        .unwrap_err();
    assert!(err.to_string().contains("-5"), "{err}");
    let err = patched(2, 8, &(PAGE as u32 + 1).to_le_bytes())
        .read_phys(2 * PAGE, &mut page)
        .unwrap_err();
    assert_eq!(format_offset(&err), desc(2) as u64 + 8, "{err}");
    let err = patched(2, 8, &0u32.to_le_bytes())
        .read_phys(2 * PAGE, &mut page)
        .unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err}");
    // Two compressions at once; a zlib page marked as snappy.
    let err = patched(2, 12, &3u32.to_le_bytes())
        .read_phys(2 * PAGE, &mut page)
        .unwrap_err();
    assert!(err.to_string().contains("flags"), "{err}");
    let err = patched(2, 12, &4u32.to_le_bytes())
        .read_phys(2 * PAGE, &mut page)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Decompress {
                pfn: 2,
                method: Compression::Snappy,
                ..
            }
        ),
        "{err}"
    );

    // Decompression bombs: a page that decompresses to 64 KiB, per method.
    for (method, flag) in [
        (Compression::Zlib, 1u32),
        (Compression::Lzo, 2),
        (Compression::Snappy, 4),
        (Compression::Zstd, 0x20),
    ] {
        let big = vec![0x42u8; 1 << 16];
        let (bomb, _) = crate::build::compress(method, &big);
        assert!(bomb.len() < PAGE as usize, "{method}: the bomb fits a page");
        let mut spec = small_kdump(method);
        spec.raw_pages.insert(4, (bomb, flag));
        let dump = Vmcore::from_bytes(spec.build()).unwrap();
        let err = dump.read_phys(4 * PAGE, &mut page).unwrap_err();
        assert!(
            matches!(err, Error::Decompress { pfn: 4, .. })
                && err.to_string().contains("more than a page"),
            "{method}: {err}"
        );
        dump.read_phys(5 * PAGE, &mut page).unwrap();
        assert_eq!(page, vec![6u8; PAGE as usize], "{method}");
        // A failed page is not cached: the error comes again.
        assert!(dump.read_phys(4 * PAGE, &mut page).is_err());
    }
}

#[test]
fn bitmaps_that_claim_more_pages_than_the_file_describes() {
    let (mut kdump, layout) = small_kdump(Compression::Zlib).build_with_layout();
    // Every bit of both bitmaps set: pages past the eighth have
    // descriptors that run into the page data, then past the file.
    let start = layout.bitmaps as usize;
    kdump[start..start + layout.bitmap_len as usize].fill(0xff);
    let sub = layout.sub_header as usize;
    kdump[sub + 96..sub + 104].copy_from_slice(&(1u64 << 20).to_le_bytes());
    let dump = exercise(kdump).unwrap();
    let mut page = vec![0u8; PAGE as usize];
    // The real pages still read: their ranks did not change.
    for pfn in 0..8u64 {
        dump.read_phys(pfn * PAGE, &mut page).unwrap();
        assert_eq!(page, vec![pfn as u8 + 1; PAGE as usize]);
    }
    let mut errors = 0;
    for pfn in 8..(layout.bitmap_len / 2 * 8) {
        if dump.read_phys(pfn * PAGE, &mut page).is_err() {
            errors += 1;
        }
    }
    assert!(errors > 30_000, "{errors} of the claimed pages fail");
}

#[test]
fn elf_headers_that_claim_too_much() {
    let elf = Elf {
        notes: standard_notes(VMCOREINFO),
        loads: vec![Load {
            paddr: 0,
            vaddr: 0,
            memsz: PAGE,
            data: vec![1; PAGE as usize],
        }],
    }
    .build();
    let with = |at: usize, bytes: &[u8]| {
        let mut b = elf.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        b
    };
    // e_phnum 0xffff: the count is section 0's sh_info, here at e_shoff
    // 0 (the ELF header's bytes 44..48, zero: no segment) or past the end.
    let xnum = with(56, &0xffffu16.to_le_bytes());
    assert!(exercise(xnum.clone()).unwrap().elf_segments().is_empty());
    let mut far = xnum;
    far[40..48].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let err = exercise(far).unwrap_err();
    assert!(err.to_string().contains("sh_info"), "{err}");
    assert!(exercise(with(32, &u64::MAX.to_le_bytes())).is_err());
    assert!(exercise(with(54, &32u16.to_le_bytes())).is_err());
    // The PT_NOTE's size past the end; a note whose descsz is huge.
    let note_phdr = 64;
    assert!(exercise(with(note_phdr + 32, &u64::MAX.to_le_bytes())).is_err());
    let notes_at = 64 + 2 * 56;
    let err = exercise(with(notes_at + 4, &u32::MAX.to_le_bytes())).unwrap_err();
    assert!(err.to_string().contains("n_descsz"), "{err}");
    // A PT_LOAD whose end overflows; one whose data lies past the file.
    let load_phdr = 64 + 56;
    let mut overflow = with(load_phdr + 40, &u64::MAX.to_le_bytes());
    overflow[load_phdr + 24..load_phdr + 32].copy_from_slice(&PAGE.to_le_bytes());
    let err = exercise(overflow).unwrap_err();
    assert!(err.to_string().contains("p_paddr + p_memsz"), "{err}");
    let dump = exercise(with(load_phdr + 8, &(1u64 << 45).to_le_bytes())).unwrap();
    let err = dump.read_phys(0, &mut [0u8; 8]).unwrap_err();
    assert_eq!(format_offset(&err), 1 << 45, "{err}");
    // A VMCOREINFO note beyond the 1 MiB limit.
    let big = "X".repeat((1 << 20) + 1);
    let bytes = Elf {
        notes: note("VMCOREINFO", 0, big.as_bytes()),
        loads: vec![],
    }
    .build();
    assert!(matches!(
        exercise(bytes).unwrap_err(),
        Error::TooLarge { .. }
    ));
}

#[test]
fn flattened_records_that_lie() {
    let kdump = small_kdump(Compression::Snappy).build();
    let stream = flatten(&kdump, 4096, None, false);
    let first_record = 4096;
    let with = |at: usize, v: i64| {
        let mut b = stream.clone();
        b[at..at + 8].copy_from_slice(&v.to_be_bytes());
        b
    };
    // A size past the stream, a zero size, a negative offset.
    assert!(exercise(with(first_record + 8, i64::MAX)).is_err());
    assert!(exercise(with(first_record + 8, 0)).is_err());
    assert!(exercise(with(first_record, -2)).is_err());
    // A record far away: the file is large and sparse, its bitmaps are
    // not read from the holes.
    let far = with(first_record, 1 << 50);
    let err = exercise(far).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err}");
    // A header that claims bitmaps larger than the whole stream.
    let mut huge = kdump.clone();
    huge[436..440].copy_from_slice(&(1u32 << 30).to_le_bytes());
    let mut stream = flatten(&huge, 4096, None, false);
    let end = stream.len() - 16;
    // A last record far away makes the sparse file large enough.
    stream.truncate(end);
    stream.extend_from_slice(&(1i64 << 50).to_be_bytes());
    stream.extend_from_slice(&1i64.to_be_bytes());
    stream.push(1);
    stream.extend_from_slice(&(-1i64).to_be_bytes());
    stream.extend_from_slice(&(-1i64).to_be_bytes());
    let err = exercise(stream).unwrap_err();
    assert!(err.to_string().contains("bitmaps"), "{err}");
}

#[test]
fn random_damage_never_panics() {
    let mut seed = 0x853c_49e6_748f_ea9bu64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let elf = Elf {
        notes: standard_notes(VMCOREINFO),
        loads: vec![Load {
            paddr: 0,
            vaddr: 0,
            memsz: 2 * PAGE,
            data: vec![9; 2 * PAGE as usize],
        }],
    }
    .build();
    let kdump = small_kdump(Compression::Lzo).build();
    let stream = flatten(&small_kdump(Compression::Zstd).build(), 700, None, true);
    for base in [elf, kdump, stream] {
        // Damage falls in the first 6 KiB: the headers, notes, bitmaps.
        let span = base.len().min(6 << 10) as u64;
        for _ in 0..1500 {
            let mut bytes = base.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % span) as usize;
                bytes[at] = next() as u8;
            }
            let _ = exercise(bytes);
        }
    }
}
