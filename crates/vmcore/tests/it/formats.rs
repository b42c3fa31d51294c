//! Well-formed synthetic dumps of each format: what they hold reads back,
//! and what they lack is reported as missing with the right reason.

use std::collections::BTreeMap;

use kscope_vmcore::{Absence, Compression, DumpFormat, Error, MemoryRange, Vmcore};

use crate::build::{Elf, Kdump, Load, PAGE, VMCOREINFO, flatten, note, prstatus, standard_notes};

/// A page whose bytes say which page it is and still compress.
fn page_of(pfn: u64) -> Vec<u8> {
    let mut page = vec![0u8; PAGE as usize];
    for (i, b) in page.iter_mut().enumerate() {
        *b = ((i / 64) as u64 ^ pfn) as u8;
    }
    page[..8].copy_from_slice(&pfn.to_le_bytes());
    page
}

/// A page that no method makes smaller, stored as it is.
fn noise(pfn: u64) -> Vec<u8> {
    let mut x = pfn.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..PAGE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn missing_reason(err: Error) -> Absence {
    match err {
        Error::PageMissing { why, .. } => why,
        e => panic!("expected a missing page, got {e}"),
    }
}

#[test]
fn elf_reads_segments_notes_and_reports_gaps() {
    let low: Vec<u8> = (0..3 * PAGE).map(|i| (i % 253) as u8).collect();
    let high: Vec<u8> = (0..2 * PAGE).map(|i| (i % 241) as u8).collect();
    let elf = Elf {
        notes: standard_notes(VMCOREINFO),
        loads: vec![
            Load {
                paddr: 0x10_0000,
                vaddr: 0,
                memsz: 3 * PAGE,
                data: low.clone(),
            },
            // Adjacent: reads cross from one segment into the next.
            Load {
                paddr: 0x10_0000 + 3 * PAGE,
                vaddr: 0,
                memsz: 4 * PAGE,
                data: high.clone(),
            },
            // kexec describes the kernel image again, with its vaddr.
            Load {
                paddr: 0x10_1000,
                vaddr: 0xffff_ffff_8100_1000,
                memsz: PAGE,
                data: low[PAGE as usize..2 * PAGE as usize].to_vec(),
            },
        ],
    }
    .build();
    let dump = Vmcore::from_bytes(elf).unwrap();
    assert_eq!(dump.format(), DumpFormat::Elf);
    assert_eq!(dump.page_size(), 4096);
    assert_eq!(dump.machine(), 62);
    assert!(dump.compression().is_empty());
    assert!(dump.kdump_header().is_none());
    assert_eq!(dump.elf_segments().len(), 3);
    assert_eq!(dump.elf_segments()[2].vaddr, 0xffff_ffff_8100_1000);
    assert_eq!(
        dump.memory_ranges().unwrap(),
        vec![MemoryRange {
            start: 0x10_0000,
            end: 0x10_0000 + 7 * PAGE
        }]
    );
    assert_eq!(dump.max_phys_addr(), 0x10_0000 + 7 * PAGE);
    let info = dump.vmcoreinfo().unwrap();
    assert_eq!(info.osrelease(), Some("6.1.0-test"));
    assert_eq!(dump.vmcoreinfo_text(), Some(VMCOREINFO));
    let cpus = dump.cpus();
    assert_eq!(cpus.len(), 2);
    assert_eq!((cpus[0].cpu, cpus[0].pid), (0, 101));
    assert_eq!(cpus[1].registers.unwrap().rip, 0xffff_ffff_8100_2000);

    let mut buf = vec![0u8; 300];
    dump.read_phys(0x10_0000 + 3 * PAGE - 100, &mut buf)
        .unwrap();
    assert_eq!(&buf[..100], &low[low.len() - 100..]);
    assert_eq!(&buf[100..], &high[..200]);
    assert_eq!(
        dump.read_phys_u64(0x10_1000).unwrap(),
        u64::from_le_bytes(low[4096..4104].try_into().unwrap())
    );
    // Below, between p_filesz and p_memsz, and above.
    let mut byte = [0u8; 1];
    assert_eq!(
        missing_reason(dump.read_phys(0x0f_ffff, &mut byte).unwrap_err()),
        Absence::NoSuchMemory
    );
    let err = dump.read_phys(0x10_0000 + 5 * PAGE, &mut byte).unwrap_err();
    assert!(err.is_missing());
    assert_eq!(missing_reason(err), Absence::NotWritten);
    assert_eq!(
        missing_reason(dump.read_phys(0x10_0000 + 7 * PAGE, &mut byte).unwrap_err()),
        Absence::NoSuchMemory
    );
    // A read that runs from held memory into a gap fails as a whole.
    assert!(
        dump.read_phys(0x10_0000 + 5 * PAGE - 4, &mut [0u8; 8])
            .is_err()
    );
    assert!(dump.read_phys(u64::MAX - 3, &mut [0u8; 8]).is_err());
}

#[test]
fn elf_with_more_than_65534_program_headers_counts_them_in_section_0() {
    let loads = (0..70_000u64)
        .map(|i| Load {
            paddr: i * PAGE,
            vaddr: 0,
            memsz: PAGE,
            data: vec![],
        })
        .chain([Load {
            paddr: 70_000 * PAGE,
            vaddr: 0,
            memsz: 16,
            data: vec![0x5a; 16],
        }])
        .collect();
    let bytes = Elf {
        notes: standard_notes(VMCOREINFO),
        loads,
    }
    .build();
    let dump = Vmcore::from_bytes(bytes).unwrap();
    assert_eq!(dump.elf_segments().len(), 70_001);
    assert_eq!(
        dump.read_phys_u64(70_000 * PAGE).unwrap(),
        0x5a5a_5a5a_5a5a_5a5a
    );
    assert_eq!(dump.cpus().len(), 2);
}

/// A kdump of pfns 0..64: RAM but excluded (10..20), not RAM (30..40),
/// incomplete (50), and incompressible noise (5).
fn kdump_spec(method: Compression) -> Kdump {
    let mut pages = BTreeMap::new();
    for pfn in (0..64).filter(|p| !(10..20).contains(p) && !(30..40).contains(p)) {
        pages.insert(pfn, if pfn == 5 { noise(pfn) } else { page_of(pfn) });
    }
    Kdump {
        max_mapnr: 64,
        ram: (0..64).filter(|p| !(30..40).contains(p)).collect(),
        incomplete: [50].into(),
        pages,
        method,
        notes: standard_notes(VMCOREINFO),
        vmcoreinfo: Some(VMCOREINFO.to_string()),
        ..Kdump::default()
    }
}

fn check_kdump(dump: &Vmcore, spec: &Kdump) {
    let mut page = vec![0u8; PAGE as usize];
    for pfn in 0..70 {
        let result = dump.read_phys(pfn * PAGE, &mut page);
        match (spec.pages.get(&pfn), result) {
            (Some(expected), Ok(())) => {
                assert!(!spec.incomplete.contains(&pfn));
                assert!(page == *expected, "pfn {pfn}");
            }
            (_, Err(e)) => {
                let why = missing_reason(e);
                let expected = if spec.incomplete.contains(&pfn) {
                    Absence::Incomplete
                } else if spec.ram.contains(&pfn) {
                    Absence::Excluded
                } else {
                    Absence::NotRam
                };
                assert_eq!(why, expected, "pfn {pfn}");
            }
            (None, Ok(())) => panic!("pfn {pfn} read but is not in the dump"),
        }
    }
    // Across pages, twice (the second time from the cache).
    let mut across = vec![0u8; 3 * PAGE as usize];
    for _ in 0..2 {
        dump.read_phys(2 * PAGE + 100, &mut across).unwrap();
        let mut expected = spec.pages[&2][100..].to_vec();
        expected.extend_from_slice(&spec.pages[&3]);
        expected.extend_from_slice(&spec.pages[&4]);
        expected.extend_from_slice(&spec.pages[&5][..100]);
        assert!(across == expected);
    }
    assert_eq!(
        dump.memory_ranges().unwrap(),
        vec![
            MemoryRange {
                start: 0,
                end: 30 * PAGE
            },
            MemoryRange {
                start: 40 * PAGE,
                end: 64 * PAGE
            },
        ]
    );
    assert_eq!(dump.max_phys_addr(), 64 * PAGE);
    assert_eq!(dump.vmcoreinfo_text(), spec.vmcoreinfo.as_deref());
    assert_eq!(dump.cpus().len(), 2);
    assert_eq!(dump.cpus()[0].pid, 101);
    let header = dump.kdump_header().unwrap();
    assert_eq!(header.header_version, spec.version);
    assert_eq!(header.block_size, PAGE);
    assert_eq!(header.release, "6.1.0-test");
    assert_eq!(header.nodename, "host");
    assert_eq!(header.machine, "x86_64");
    assert_eq!(header.timestamp, 1_764_085_000);
    assert_eq!(header.phys_base, 0x100_0000);
    assert_eq!(header.max_mapnr, 64);
    assert_eq!(header.nr_cpus, 2);
    assert_eq!(dump.page_size(), PAGE);
    assert_eq!(dump.machine(), 62);
}

#[test]
fn kdump_with_each_compression_reads_back_and_names_missing_pages() {
    for method in [
        Compression::None,
        Compression::Zlib,
        Compression::Lzo,
        Compression::Snappy,
        Compression::Zstd,
    ] {
        let spec = kdump_spec(method);
        let dump = Vmcore::from_bytes(spec.build()).unwrap();
        assert_eq!(dump.format(), DumpFormat::Kdump);
        let expected: Vec<Compression> = match method {
            Compression::None => vec![],
            m => vec![m],
        };
        assert_eq!(dump.compression(), expected, "{method}");
        check_kdump(&dump, &spec);
        let (hits, misses) = dump.cache_stats();
        assert!(
            hits >= 3 && misses > 0,
            "{method}: {hits} hits, {misses} misses"
        );
    }
}

#[test]
fn flattened_streams_read_like_their_kdump_file() {
    for method in [Compression::Zlib, Compression::Lzo, Compression::Snappy] {
        let spec = kdump_spec(method);
        let kdump = spec.build();
        let chunks = kdump.len().div_ceil(1000);
        // File order, reversed, and shuffled with a rewritten header.
        let reversed: Vec<usize> = (0..chunks).rev().collect();
        let shuffled: Vec<usize> = (0..chunks).map(|i| (i * 7919) % chunks).collect();
        for (order, rewrite) in [
            (None, false),
            (Some(&reversed[..]), false),
            (Some(&shuffled[..]), true),
        ] {
            let stream = flatten(&kdump, 1000, order, rewrite);
            let dump = Vmcore::from_bytes(stream).unwrap();
            assert_eq!(dump.format(), DumpFormat::FlattenedKdump);
            assert!(dump.kdump_header().unwrap().flattened_records.unwrap() > 3);
            check_kdump(&dump, &spec);
        }
    }
}

#[test]
fn older_header_versions_read_what_they_have() {
    for version in 1..=5 {
        let mut spec = kdump_spec(Compression::Zlib);
        spec.version = version;
        let dump = Vmcore::from_bytes(spec.build()).unwrap();
        let header = dump.kdump_header().unwrap();
        assert_eq!(header.header_version, version);
        // Before version 6 the 32-bit max_mapnr of the main header counts.
        assert_eq!(header.max_mapnr, 64);
        // VMCOREINFO by offset from version 3, else from the notes (4+).
        let has_info = version >= 3;
        assert_eq!(
            dump.vmcoreinfo_text().is_some(),
            has_info,
            "version {version}"
        );
        assert_eq!(dump.cpus().len(), if version >= 4 { 2 } else { 0 });
        let mut page = vec![0u8; PAGE as usize];
        dump.read_phys(7 * PAGE, &mut page).unwrap();
        assert_eq!(page, spec.pages[&7]);
    }
    // Version 4 and later without offset_vmcoreinfo: the note serves.
    let mut spec = kdump_spec(Compression::Zlib);
    spec.vmcoreinfo = None;
    let dump = Vmcore::from_bytes(spec.build()).unwrap();
    assert_eq!(dump.vmcoreinfo_text(), Some(VMCOREINFO));
}

#[test]
fn one_file_of_a_split_dump_holds_its_own_pfns() {
    // The second of two files: pfns 32..64, descriptors counted from 32.
    let mut spec = kdump_spec(Compression::Zlib);
    spec.split = Some((32, 64));
    spec.pages.retain(|&pfn, _| pfn >= 32);
    spec.incomplete.clear();
    // The first bitmap is shared; the second holds this part's pages.
    let dump = Vmcore::from_bytes(spec.build()).unwrap();
    assert_eq!(dump.kdump_header().unwrap().split, Some((32, 64)));
    let mut page = vec![0u8; PAGE as usize];
    for pfn in 40..64 {
        dump.read_phys(pfn * PAGE, &mut page).unwrap();
        assert_eq!(page, spec.pages[&pfn], "pfn {pfn}");
    }
    // A page of the other part, set in a shared second bitmap.
    let mut spec = kdump_spec(Compression::Zlib);
    spec.split = Some((32, 64));
    let dump = Vmcore::from_bytes(spec.build()).unwrap();
    assert_eq!(
        missing_reason(dump.read_phys(3 * PAGE, &mut page).unwrap_err()),
        Absence::OtherSplitPart
    );
}

#[test]
fn a_dump_is_shared_between_threads() {
    fn shared<T: Send + Sync>(_: &T) {}
    let spec = kdump_spec(Compression::Zlib);
    let dump = Vmcore::from_bytes(spec.build()).unwrap();
    shared(&dump);
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let (dump, spec) = (&dump, &spec);
            scope.spawn(move || {
                let mut page = vec![0u8; PAGE as usize];
                for i in 0..200u64 {
                    let pfn = [0, 1, 2, 3, 4, 6, 7, 8][((i + t) % 8) as usize];
                    dump.read_phys(pfn * PAGE, &mut page).unwrap();
                    assert_eq!(page, spec.pages[&pfn]);
                }
            });
        }
    });
}

#[test]
fn a_one_page_cache_still_reads_every_page() {
    let spec = kdump_spec(Compression::Zstd);
    let dump = Vmcore::from_bytes(spec.build())
        .unwrap()
        .with_cache_pages(1);
    let mut page = vec![0u8; PAGE as usize];
    for round in 0..3 {
        for pfn in [1u64, 2, 1, 3, 2] {
            dump.read_phys(pfn * PAGE, &mut page).unwrap();
            assert_eq!(page, spec.pages[&pfn], "round {round} pfn {pfn}");
        }
    }
    assert_eq!(dump.cache_stats().0, 0, "no page was read twice in a row");
    dump.read_phys(PAGE, &mut page).unwrap();
    dump.read_phys(PAGE + 8, &mut page[..8]).unwrap();
    assert_eq!(dump.cache_stats().0, 1);
}

#[test]
fn files_are_mapped_and_io_errors_name_the_file() {
    let dir_holder = tempfile::Builder::new()
        .prefix("kscope-vmcore-it-")
        .tempdir()
        .expect("a temp dir");
    let dir = dir_holder.path().to_path_buf();
    let spec = kdump_spec(Compression::Zlib);
    let path = dir.join("vmcore.kdump");
    std::fs::write(&path, spec.build()).unwrap();
    let dump = Vmcore::open(&path).unwrap();
    assert_eq!(dump.file_size(), std::fs::metadata(&path).unwrap().len());
    check_kdump(&dump, &spec);

    let err = Vmcore::open(dir.join("absent")).unwrap_err();
    assert!(matches!(err, Error::Io { path: Some(_), .. }), "{err}");
    assert!(err.to_string().contains("absent"), "{err}");
    let empty = dir.join("empty");
    std::fs::write(&empty, b"").unwrap();
    let err = Vmcore::open(&empty).unwrap_err();
    assert!(err.to_string().contains("magic"), "{err}");
}

#[test]
fn unknown_and_unsupported_formats_say_what_they_are() {
    let err = Vmcore::from_bytes(b"hello world, not a dump".to_vec()).unwrap_err();
    assert!(matches!(err, Error::Format { offset: 0, .. }), "{err}");
    let mut diskdump = kdump_spec(Compression::Zlib).build();
    diskdump[..8].copy_from_slice(b"DISKDUMP");
    let err = Vmcore::from_bytes(diskdump).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    let mut elf32 = Elf {
        notes: note("CORE", 1, &prstatus(1, 0, 0)),
        loads: vec![],
    }
    .build();
    elf32[4] = 1;
    assert!(matches!(
        Vmcore::from_bytes(elf32.clone()).unwrap_err(),
        Error::Unsupported { .. }
    ));
    elf32[4] = 2;
    elf32[5] = 2;
    assert!(matches!(
        Vmcore::from_bytes(elf32.clone()).unwrap_err(),
        Error::Unsupported { .. }
    ));
    elf32[5] = 1;
    elf32[16] = 2;
    let err = Vmcore::from_bytes(elf32).unwrap_err();
    assert!(err.to_string().contains("ET_CORE"), "{err}");
}

#[test]
fn an_lzo_page_from_liblzo2_reads_back() {
    let raw = include_bytes!("../data/lzo1x-page.raw");
    let compressed = include_bytes!("../data/lzo1x-page.bin");
    let mut spec = kdump_spec(Compression::Lzo);
    spec.pages.insert(0, raw.to_vec());
    spec.raw_pages.insert(0, (compressed.to_vec(), 0x2));
    let dump = Vmcore::from_bytes(spec.build()).unwrap();
    let mut page = vec![0u8; PAGE as usize];
    dump.read_phys(0, &mut page).unwrap();
    assert!(page == raw, "liblzo2's page decompressed differently");
    // Cut by one byte, it is an error.
    spec.raw_pages
        .insert(0, (compressed[..compressed.len() - 1].to_vec(), 0x2));
    let dump = Vmcore::from_bytes(spec.build()).unwrap();
    let err = dump.read_phys(0, &mut page).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Decompress {
                method: Compression::Lzo,
                ..
            }
        ),
        "{err}"
    );
}
