//! Corrupt and hostile files give an error that says where, never a panic,
//! a hang or a huge allocation: every truncation, byte flips all over a
//! small file, and hand-built version 7 files with a lying chunk, a zstd
//! bomb, options without DONE, sections pointing outside the file or at
//! themselves.

use kscope_tracedat::{Error, option_id};

use crate::build::{self, V7, buffer, chunks, done, opt, zstd};
use crate::util::{FIXTURES, WRITE_OPTIONS, fixture, written};

/// Checks what the fuzz target checks: parsing `bytes` does not panic, and
/// when it succeeds and `rewrite` is set, every write succeeds (or refuses
/// cleanly) and reads back.
fn survives(bytes: &[u8], rewrite: bool) -> Result<(), Error> {
    let data = kscope_tracedat::parse(bytes)?;
    for options in WRITE_OPTIONS.iter().filter(|_| rewrite) {
        let mut out = std::io::Cursor::new(Vec::new());
        match kscope_tracedat::write(&data, options, &mut out) {
            Ok(()) => {
                kscope_tracedat::parse(out.get_ref())
                    .unwrap_or_else(|e| panic!("{options:?} does not read back: {e}"));
            }
            Err(Error::Unrepresentable { .. }) => {}
            Err(e) => panic!("{options:?}: {e}"),
        }
    }
    Ok(())
}

#[test]
fn every_truncation_of_a_small_file_is_an_error_with_its_offset() {
    let data = build::small();
    for options in WRITE_OPTIONS {
        let bytes = written(&data, &options);
        assert!(bytes.len() < 8192, "{options:?}: {} bytes", bytes.len());
        for len in 0..bytes.len() {
            let err = kscope_tracedat::parse(&bytes[..len])
                .err()
                .unwrap_or_else(|| panic!("{options:?} cut at {len} parses"));
            let offset = err.offset().unwrap_or_else(|| panic!("{err}"));
            assert!(offset <= len as u64, "{options:?} cut at {len}: {err}");
        }
    }
}

#[test]
fn truncations_of_the_trace_cmd_files_are_errors() {
    for (name, _, _) in FIXTURES {
        let bytes = fixture(name);
        let cuts = (0..bytes.len())
            .step_by(251)
            .chain(bytes.len() - 64..bytes.len());
        for len in cuts {
            assert!(
                kscope_tracedat::parse(&bytes[..len]).is_err(),
                "{name} cut at {len} parses"
            );
        }
    }
}

#[test]
fn flipped_bytes_anywhere_never_panic() {
    let data = build::small();
    for options in WRITE_OPTIONS {
        let bytes = written(&data, &options);
        let mut parsed = 0;
        for at in 0..bytes.len() {
            for change in [|b: u8| b ^ 0x80, |b: u8| b ^ 0x01, |_| 0xff] {
                let mut bad = bytes.clone();
                bad[at] = change(bad[at]);
                // Writing is slow in a debug build: rewrite a sample.
                parsed += usize::from(survives(&bad, at % 13 == 0).is_ok());
            }
        }
        // Flips in CPU data and texts are not errors: some must parse.
        assert!(parsed > bytes.len() / 2, "{options:?}: {parsed}");
    }
}

#[test]
fn size_fields_set_to_extremes_are_errors_not_allocations() {
    // Version 6: each 4- or 8-byte size of the metadata, made huge.
    let data = build::small();
    let bytes = written(&data, &Default::default());
    let header_page_size = 18 + 12;
    let header_event_size = header_page_size + 8 + data.header_page.len() + 13;
    for (at, width) in [(header_page_size, 8), (header_event_size, 8)] {
        for value in [u64::MAX, u64::MAX / 2, bytes.len() as u64] {
            let mut bad = bytes.clone();
            bad[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
            let err = kscope_tracedat::parse(&bad).unwrap_err();
            assert!(
                matches!(err, Error::Truncated { .. } | Error::Format { .. }),
                "{err}"
            );
        }
    }
}

/// A valid version 7 file (zstd) with one buffer whose CPU 0 holds the
/// given compressed CPU data; returns it and the offset of that data.
fn file_with_cpu_data(cpu_data: &[u8], declared_size: u64) -> (Vec<u8>, u64) {
    let mut f = V7::new("zstd");
    let options = f.first_options_section(&[done(0)]);
    // One flyrecord section, its data at the next 4 KiB boundary.
    let section = f.pos();
    let data_at = (section + 16).next_multiple_of(4096);
    let mut contents = vec![0; (data_at - section - 16) as usize];
    contents.extend_from_slice(cpu_data);
    f.section(option_id::BUFFER, 1, &contents);
    let second = f.section(
        option_id::DONE,
        0,
        &[
            buffer(section, "i", 4096, &[(0, data_at, declared_size)]),
            done(0),
        ]
        .concat(),
    );
    // Chain the first options section to the second.
    f.patch_u64(options + 16 + 6, second);
    (f.strings(), data_at)
}

#[test]
fn hand_built_compressed_data_parses() {
    let page = vec![9u8; 4096];
    let packed = zstd(&page);
    let cpu = chunks(&[(&packed, 4096)]);
    let (bytes, _) = file_with_cpu_data(&cpu, cpu.len() as u64 - 4);
    let data = kscope_tracedat::parse(&bytes).unwrap();
    assert_eq!(data.buffers[0].cpus[0].data.as_ref(), page.as_slice());
}

#[test]
fn a_chunk_claiming_4_gib_is_too_large() {
    let packed = zstd(&[0; 4096]);
    let cpu = chunks(&[(&packed, u32::MAX)]);
    let (bytes, at) = file_with_cpu_data(&cpu, cpu.len() as u64 - 4);
    match kscope_tracedat::parse(&bytes) {
        Err(Error::TooLarge {
            offset,
            size,
            limit,
            ..
        }) => {
            assert_eq!(offset, at + 8, "the chunk's uncompressed size");
            assert_eq!(size, u64::from(u32::MAX));
            assert_eq!(limit, 64 << 20);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_zstd_bomb_stops_at_the_declared_size() {
    // 64 MiB of zeros in about 2 KiB, declared as one page.
    let bomb = zstd(&vec![0; 64 << 20]);
    assert!(bomb.len() < 8192, "{}", bomb.len());
    let cpu = chunks(&[(&bomb, 4096)]);
    let (bytes, at) = file_with_cpu_data(&cpu, cpu.len() as u64 - 4);
    match kscope_tracedat::parse(&bytes) {
        Err(Error::Decompress { offset, .. }) => assert_eq!(offset, at + 12),
        other => panic!("{other:?}"),
    }
}

#[test]
fn declared_sizes_beyond_the_budget_are_refused_before_decompressing() {
    // Two chunks of 64 MiB each in a file of a few KiB: within the limit
    // of one chunk, beyond 64 MiB plus 1024 times the file's size.
    let bomb = zstd(&vec![0; 64 << 20]);
    let cpu = chunks(&[(&bomb, 64 << 20), (&bomb, 64 << 20)]);
    let (bytes, _) = file_with_cpu_data(&cpu, cpu.len() as u64 - 4);
    let started = std::time::Instant::now();
    match kscope_tracedat::parse(&bytes) {
        Err(Error::TooLarge { what, .. }) => assert_eq!(what, "the uncompressed data of the file"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed().as_secs() < 2, "it decompressed");
}

#[test]
fn compressed_cpu_data_shared_by_two_cpus_is_refused() {
    let packed = zstd(&[1; 4096]);
    let cpu = chunks(&[(&packed, 4096)]);
    let mut f = V7::new("zstd");
    let section = f.pos();
    let data_at = (section + 16).next_multiple_of(4096);
    let mut contents = vec![0; (data_at - section - 16) as usize];
    contents.extend_from_slice(&cpu);
    f.section(option_id::BUFFER, 1, &contents);
    let size = cpu.len() as u64 - 4;
    f.first_options_section(&[
        buffer(
            section,
            "i",
            4096,
            &[(0, data_at, size), (1, data_at, size)],
        ),
        done(0),
    ]);
    let err = kscope_tracedat::parse(&f.strings()).unwrap_err();
    assert!(
        matches!(err, Error::Format { offset, .. } if offset == data_at),
        "{err}"
    );
}

#[test]
fn an_options_section_without_done_is_an_error_at_its_end() {
    let mut f = V7::new("none");
    let at = f.first_options_section(&[opt(option_id::UNAME, b"Linux\0")]);
    match kscope_tracedat::parse(&f.strings()) {
        Err(Error::Format {
            offset, expected, ..
        }) => {
            assert_eq!(offset, at + 16 + 6 + 6);
            assert!(expected.contains("DONE"), "{expected}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn options_sections_that_loop_are_an_error() {
    // A section whose DONE points at itself.
    let mut f = V7::new("none");
    let at = f.first_options_section(&[done(0)]);
    f.patch_u64(at + 16 + 6, at);
    let err = kscope_tracedat::parse(&f.strings()).unwrap_err();
    assert!(
        matches!(err, Error::Format { offset, .. } if offset == at),
        "{err}"
    );

    // Two that point at each other.
    let mut f = V7::new("none");
    let first = f.first_options_section(&[done(0)]);
    let second = f.section(option_id::DONE, 0, &done(first));
    f.patch_u64(first + 16 + 6, second);
    let err = kscope_tracedat::parse(&f.strings()).unwrap_err();
    assert!(
        matches!(err, Error::Format { offset, .. } if offset == first),
        "{err}"
    );
}

#[test]
fn sections_pointing_outside_the_file_or_at_the_wrong_section_are_errors() {
    let outside = |options: &[Vec<u8>]| {
        let mut f = V7::new("none");
        f.first_options_section(options);
        kscope_tracedat::parse(&f.strings()).unwrap_err()
    };
    for err in [
        outside(&[done(1 << 40)]),
        outside(&[
            opt(option_id::KALLSYMS, &(1u64 << 40).to_le_bytes()),
            done(0),
        ]),
        outside(&[buffer(1 << 40, "i", 4096, &[]), done(0)]),
        outside(&[buffer(0, "i", 4096, &[]), done(0)]),
    ] {
        assert!(matches!(err, Error::Format { .. }), "{err}");
    }

    // A section pointer at the options section itself.
    let mut f = V7::new("none");
    let at = f.pos();
    f.first_options_section(&[opt(option_id::HEADER_INFO, &at.to_le_bytes()), done(0)]);
    match kscope_tracedat::parse(&f.strings()) {
        Err(Error::Format {
            offset, expected, ..
        }) => {
            assert_eq!(offset, at);
            assert!(expected.contains("section id 16"), "{expected}");
        }
        other => panic!("{other:?}"),
    }

    // The first options offset at another kind of section, or zero.
    let mut f = V7::new("none");
    let header = f.section(option_id::HEADER_INFO, 0, b"header_page\0");
    f.first_options(header);
    assert!(matches!(
        kscope_tracedat::parse(&f.strings()),
        Err(Error::Format { .. })
    ));
    let f = V7::new("none");
    assert!(matches!(
        kscope_tracedat::parse(&f.strings()),
        Err(Error::Format { .. })
    ));
}

#[test]
fn a_section_larger_than_the_file_is_a_truncation() {
    let mut f = V7::new("none");
    let at = f.first_options_section(&[done(0)]);
    f.patch_u64(at + 8, 1 << 50);
    let err = kscope_tracedat::parse(&f.strings()).unwrap_err();
    assert!(
        matches!(err, Error::Truncated { offset, .. } if offset == at + 16),
        "{err}"
    );
}

#[test]
fn unknown_options_are_kept_and_unknown_sections_skipped() {
    let mut f = V7::new("none");
    f.section(77, 0, b"a section of a later version");
    f.first_options_section(&[
        opt(4242, b"?"),
        opt(option_id::CPUCOUNT, &3u32.to_le_bytes()),
        done(0),
    ]);
    f.section(78, 0, b"");
    let bytes = f.strings();
    let data = kscope_tracedat::parse(&bytes).unwrap();
    let ids: Vec<u16> = data.options.iter().map(|o| o.id).collect();
    assert_eq!(ids, [4242, option_id::CPUCOUNT]);
    assert_eq!(data.cpus, 3);
    assert!(data.buffers.is_empty());
}

#[test]
fn a_compressed_section_in_an_uncompressed_file_is_an_error() {
    let mut f = V7::new("none");
    let at = f.pos();
    f.section(option_id::HEADER_INFO, 1, &[0; 16]);
    f.first_options_section(&[opt(option_id::HEADER_INFO, &at.to_le_bytes()), done(0)]);
    let err = kscope_tracedat::parse(&f.strings()).unwrap_err();
    assert!(
        matches!(err, Error::Format { offset, .. } if offset == at + 16),
        "{err}"
    );
}

#[test]
fn what_kscope_does_not_read_is_unsupported_not_malformed() {
    let mut f = V7::new("lz4");
    f.first_options_section(&[done(0)]);
    let err = kscope_tracedat::parse(&f.strings()).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");

    let mut f = V7::new("none");
    f.first_options_section(&[opt(option_id::BUFFER_TEXT, &[0; 10]), done(0)]);
    let err = kscope_tracedat::parse(&f.strings()).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");

    // A version 6 latency file: "latency  \0" where "flyrecord\0" was.
    let mut bytes = written(&build::small(), &Default::default());
    let at = bytes.windows(10).position(|w| w == b"flyrecord\0").unwrap();
    bytes[at..at + 10].copy_from_slice(b"latency  \0");
    let err = kscope_tracedat::parse(&bytes).unwrap_err();
    assert!(
        matches!(err, Error::Unsupported { offset, .. } if offset == at as u64),
        "{err}"
    );
}

#[test]
fn a_version_6_instance_pointing_outside_the_file_is_an_error() {
    let mut bytes = written(&build::small(), &Default::default());
    let name = bytes.windows(5).position(|w| w == b"inst\0").unwrap();
    bytes[name - 8..name].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        kscope_tracedat::parse(&bytes),
        Err(Error::Format { .. })
    ));
    bytes[name - 8..name].copy_from_slice(&0u64.to_le_bytes());
    assert!(matches!(
        kscope_tracedat::parse(&bytes),
        Err(Error::Format { .. })
    ));
}

#[test]
fn version_6_instances_sharing_one_block_are_an_error() {
    let mut data = build::small();
    let mut other = data.buffers[1].clone();
    other.name = "other".into();
    data.buffers.push(other);
    let mut bytes = written(&data, &Default::default());
    assert!(kscope_tracedat::parse(&bytes).is_ok());
    let find =
        |bytes: &[u8], name: &[u8]| bytes.windows(name.len()).position(|w| w == name).unwrap();
    let inst = find(&bytes, b"inst\0");
    let other = find(&bytes, b"other\0");
    let shared: [u8; 8] = bytes[inst - 8..inst].try_into().unwrap();
    bytes[other - 8..other].copy_from_slice(&shared);
    match kscope_tracedat::parse(&bytes) {
        Err(Error::Format {
            offset, expected, ..
        }) => {
            assert_eq!(offset, other as u64 - 8);
            assert!(expected.contains("apart from the others"), "{expected}");
        }
        other => panic!("{other:?}"),
    }
}
