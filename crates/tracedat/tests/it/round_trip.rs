//! Files kscope writes read back into the same trace, in every version and
//! compression, and trace-cmd reads them: `trace-cmd report` prints for a
//! kscope file exactly what it prints for the file trace-cmd wrote.

use std::borrow::Cow;
use std::io::Cursor;

use kscope_tracedat::{Compression, CpuData, Error, TraceData, WriteOptions};

use crate::build;
use crate::util::{
    FIXTURES, TempDir, WRITE_OPTIONS, differences, fixture, fixture_path, names, report,
    trace_cmd_for, written,
};

#[test]
fn every_fixture_survives_every_write() {
    for (name, _, _) in FIXTURES {
        let bytes = fixture(name);
        let data = kscope_tracedat::parse(&bytes).unwrap();
        for options in WRITE_OPTIONS {
            let out = written(&data, &options);
            let back = kscope_tracedat::parse(&out)
                .unwrap_or_else(|e| panic!("{name} as {options:?}: {e}"));
            assert_eq!(back.version, options.version, "{name}");
            assert_eq!(back.compression, options.compression, "{name}");
            let differ = differences(&data, &back);
            assert!(differ.is_empty(), "{name} as {options:?}: {differ:?}");
        }
    }
}

#[test]
fn version_6_is_byte_for_byte_what_trace_cmd_convert_writes() {
    let original = fixture("v6.dat");
    for source in ["v6.dat", "extract.dat"] {
        let bytes = fixture(source);
        let data = kscope_tracedat::parse(&bytes).unwrap();
        let out = written(&data, &WriteOptions::default());
        assert!(
            out == original,
            "kscope's version 6 of {source} differs from trace-cmd's"
        );
    }
}

#[test]
fn trace_cmd_reports_kscope_files_as_it_reports_its_own() {
    let Some(trace_cmd) = trace_cmd_for(Compression::None) else {
        return;
    };
    let expected = report(&trace_cmd, &fixture_path("v6.dat"));
    assert!(expected.lines().count() > 50, "{expected}");
    let dir = TempDir::new("report");
    for (name, _, compression) in FIXTURES {
        if let Some(reader) = trace_cmd_for(compression) {
            assert_eq!(
                report(&reader, &fixture_path(name)),
                expected,
                "trace-cmd's {name}"
            );
        }
        let bytes = fixture(name);
        let data = kscope_tracedat::parse(&bytes).unwrap();
        for options in WRITE_OPTIONS {
            let Some(reader) = trace_cmd_for(options.compression) else {
                continue;
            };
            let path = dir.write(
                &format!("{name}-v{}-{:?}.dat", options.version, options.compression),
                &written(&data, &options),
            );
            assert_eq!(
                report(&reader, &path),
                expected,
                "kscope's {}",
                path.display()
            );
        }
    }
}

#[test]
fn a_top_instance_with_data_is_written_first_and_trace_cmd_shows_its_events() {
    let bytes = fixture("v6.dat");
    let mut data = kscope_tracedat::parse(&bytes).unwrap();
    let mut top = data.buffers.remove(1);
    assert_eq!(top.name, "kscope-fixture-a");
    top.name = String::new();
    data.buffers.insert(0, top);
    let trace_cmd = trace_cmd_for(Compression::None);
    let expected = trace_cmd
        .as_ref()
        .map(|t| without_instance_names(&report(t, &fixture_path("v6.dat"))));
    let dir = TempDir::new("top");
    for options in WRITE_OPTIONS {
        let out = written(&data, &options);
        let back = kscope_tracedat::parse(&out).unwrap();
        assert_eq!(names(&back), ["", "kscope-fixture-b"], "{options:?}");
        assert!(differences(&data, &back).is_empty(), "{options:?}");
        if let (Some(expected), Some(reader)) = (&expected, trace_cmd_for(options.compression)) {
            let path = dir.write(
                &format!("top-{}-{:?}.dat", options.version, options.compression),
                &out,
            );
            let shown = report(&reader, &path);
            // The top instance's lines carry no instance name.
            let top_lines = shown.lines().filter(|l| l.starts_with("   ")).count();
            assert_eq!(top_lines, 28, "{shown}");
            assert_eq!(
                &without_instance_names(&shown),
                expected,
                "{}",
                path.display()
            );
        }
    }
}

/// A report's lines without the `NAME:` that trace-cmd puts before an
/// instance's events, and without the padding that aligns them.
fn without_instance_names(report: &str) -> Vec<String> {
    report
        .lines()
        .map(|l| {
            let l = l.strip_prefix("kscope-fixture-a:").unwrap_or(l);
            let l = l.strip_prefix("kscope-fixture-b:").unwrap_or(l);
            l.trim_start().to_string()
        })
        .collect()
}

/// Also writes the small traces (2-3 KiB each) as fuzz seeds into the
/// directory `KSCOPE_FUZZ_SEEDS` names, if set (fuzz/README.md): the
/// fuzzer mutates them much faster than the fixtures.
#[test]
fn a_small_trace_survives_every_write_in_both_byte_orders() {
    let seeds = std::env::var_os("KSCOPE_FUZZ_SEEDS").map(std::path::PathBuf::from);
    for big_endian in [false, true] {
        let data = build::small_in(big_endian);
        for options in WRITE_OPTIONS {
            let out = written(&data, &options);
            if let Some(dir) = &seeds {
                let name = format!(
                    "small-v{}-{:?}-{}.dat",
                    options.version,
                    options.compression,
                    if big_endian { "be" } else { "le" }
                );
                std::fs::create_dir_all(dir).expect("the seed directory");
                std::fs::write(dir.join(name), &out).expect("a seed");
            }
            let back = kscope_tracedat::parse(&out).unwrap_or_else(|e| panic!("{options:?}: {e}"));
            let differ = differences(&data, &back);
            assert!(
                differ.is_empty(),
                "{options:?} big-endian {big_endian}: {differ:?}"
            );
            assert_eq!(
                back.options.last().map(|o| o.id),
                Some(999),
                "the unknown option"
            );
        }
    }
}

#[test]
fn empty_cpus_and_an_empty_top_instance_are_left_out() {
    let mut data = build::small();
    data.buffers[0].cpus = vec![CpuData {
        cpu: 0,
        data: Cow::Borrowed(b""),
    }];
    data.buffers[1].cpus.push(CpuData {
        cpu: 0,
        data: Cow::Borrowed(b""),
    });
    for options in WRITE_OPTIONS {
        let out = written(&data, &options);
        let back = kscope_tracedat::parse(&out).unwrap();
        assert_eq!(names(&back), ["inst"], "{options:?}");
        assert_eq!(back.buffers[0].cpus.len(), 1, "{options:?}");
        assert_eq!(back.buffers[0].cpus[0].cpu, 1, "{options:?}");
    }
}

#[test]
fn writing_what_a_version_cannot_hold_is_refused_before_any_byte() {
    let base = build::small();
    let mut cases: Vec<(&str, TraceData<'static>, WriteOptions)> = Vec::new();
    let v6 = WriteOptions::default();
    let v7 = WriteOptions {
        version: 7,
        compression: Compression::Zstd,
    };
    cases.push((
        "compressed version 6",
        base.clone(),
        WriteOptions {
            version: 6,
            compression: Compression::Zlib,
        },
    ));
    cases.push((
        "version 5",
        base.clone(),
        WriteOptions {
            version: 5,
            compression: Compression::None,
        },
    ));
    let mut d = base.clone();
    d.page_size = 1000;
    cases.push(("page size", d, v7));
    let mut d = base.clone();
    d.long_size = 2;
    cases.push(("long size", d, v6));
    let mut d = base.clone();
    d.buffers[0].cpus[0].data = Cow::Owned(vec![0; 300]);
    cases.push(("partial page", d, v7));
    let mut d = base.clone();
    d.buffers[1].name = String::new();
    cases.push(("two top buffers", d, v6));
    let mut d = base.clone();
    d.buffers[1].page_size = 512;
    d.buffers[1].cpus[0].data = Cow::Owned(vec![0; 512]);
    cases.push(("version 6 with two page sizes", d, v6));
    let mut d = base.clone();
    d.buffers[1].cpus[0].cpu = 2;
    cases.push(("a CPU beyond version 6's count", d, v6));
    let mut d = base.clone();
    let again = d.buffers[1].cpus[0].clone();
    d.buffers[1].cpus.push(again);
    cases.push(("a CPU twice", d, v7));
    let mut d = base.clone();
    d.event_formats[0].name = "a\0b".into();
    cases.push(("a NUL in a name", d, v7));
    let mut d = base.clone();
    d.buffers[0].clock = Some("x".repeat(5000));
    cases.push(("a long clock", d, v6));
    let mut d = base.clone();
    d.cpus = 1 << 20;
    cases.push(("a million CPUs", d, v7));
    for (what, data, options) in cases {
        let mut out = Cursor::new(Vec::new());
        let err = kscope_tracedat::write(&data, &options, &mut out).unwrap_err();
        assert!(
            matches!(err, Error::Unrepresentable { .. }),
            "{what}: {err}"
        );
        assert!(out.get_ref().is_empty(), "{what}: bytes were written");
    }
    // Version 7 keeps per-buffer page sizes that version 6 refuses.
    let mut d = base.clone();
    d.buffers[1].page_size = 512;
    d.buffers[1].cpus[0].data = Cow::Owned(vec![0; 512]);
    let back_bytes = written(&d, &v7);
    let back = kscope_tracedat::parse(&back_bytes).unwrap();
    assert_eq!(back.buffers[1].page_size, 512);
}

#[test]
fn write_starts_where_the_output_is() {
    let data = build::small();
    let mut out = Cursor::new(b"prefix".to_vec());
    out.set_position(6);
    for options in WRITE_OPTIONS {
        out.get_mut().truncate(6);
        out.set_position(6);
        kscope_tracedat::write(&data, &options, &mut out).unwrap();
        // Offsets in the file count from the start of the trace.dat: after
        // the prefix come the very bytes written into an empty output,
        // and they read back as the same trace.
        let after = &out.get_ref()[6..];
        assert_eq!(out.get_ref()[..6], *b"prefix", "{options:?}");
        assert!(after == written(&data, &options), "{options:?}");
        let back = kscope_tracedat::parse(after).unwrap_or_else(|e| panic!("{options:?}: {e}"));
        let differ = differences(&data, &back);
        assert!(differ.is_empty(), "{options:?}: {differ:?}");
    }
}
