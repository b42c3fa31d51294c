//! The files trace-cmd 3.1.6 wrote (tests/data/README.md says how) parse
//! into what trace-cmd's own `dump` and `report` show: versions,
//! compression, page size, CPUs, buffers, header texts, formats, options,
//! and CPU data made of sane ring-buffer pages.

use std::borrow::Cow;

use kscope_tracedat::{Compression, TraceData, option_id};
use kscope_traceevent::{HeaderPage, PageLayout, SubBuffer};

use crate::util::{FIXTURES, differences, fixture, fixture_path, names, report, trace_cmd_for};

/// How many events the fixtures hold, as `trace-cmd report` counts them.
const EVENTS: usize = 54;

#[test]
fn every_fixture_parses_into_what_trace_cmd_wrote() {
    for (name, version, compression) in FIXTURES {
        let bytes = fixture(name);
        let data = kscope_tracedat::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(data.version, version, "{name}");
        assert_eq!(data.compression, compression, "{name}");
        assert!(!data.big_endian, "{name}");
        assert_eq!(data.long_size, 8, "{name}");
        assert_eq!(data.page_size, 4096, "{name}");
        assert_eq!(data.cpus, 2, "{name}");
        // extract -B B -B A: trace-cmd lists them in this order; the top
        // instance has no data and is left out.
        assert_eq!(
            names(&data),
            ["kscope-fixture-b", "kscope-fixture-a"],
            "{name}"
        );

        let header_page = std::str::from_utf8(&data.header_page).unwrap();
        assert!(
            header_page.starts_with("\tfield: u64 timestamp;"),
            "{name}: {header_page}"
        );
        assert!(header_page.contains("field: local_t commit;"), "{name}");
        let header_event = std::str::from_utf8(&data.header_event).unwrap();
        assert!(header_event.contains("type_len"), "{name}");

        assert_eq!(data.ftrace_formats.len(), 18, "{name}");
        assert!(
            data.ftrace_formats.iter().all(|f| f.starts_with(b"name: ")),
            "{name}"
        );
        let systems: Vec<(&str, usize)> = data
            .event_formats
            .iter()
            .map(|s| (s.name.as_str(), s.formats.len()))
            .collect();
        assert_eq!(systems, [("timer", 14), ("sched", 26)], "{name}");
        assert!(
            data.event_formats[1]
                .formats
                .iter()
                .any(|f| f.starts_with(b"name: sched_switch\n")),
            "{name}"
        );

        assert!(data.kallsyms.starts_with(b"ffffffff81000000 T "), "{name}");
        assert_eq!(data.kallsyms.len(), 64750, "{name}");
        assert_eq!(data.printk_formats.len(), 4316, "{name}");
        assert_eq!(data.cmdlines.len(), 101251, "{name}");

        let uname = data.option_text(option_id::UNAME).unwrap();
        assert!(uname.starts_with("Linux "), "{name}: {uname}");
        assert_eq!(
            data.option_text(option_id::VERSION),
            Some("3.1.6 not-a-git-repo"),
            "{name}"
        );
        let clock = data.option_text(option_id::TRACECLOCK).unwrap();
        assert!(clock.starts_with("[local] global"), "{name}: {clock}");
        let stats = data.cpu_stats();
        assert_eq!(stats.len(), 8, "{name}: {stats:?}");
        assert!(stats[0].starts_with("CPU: 0\n"), "{name}");
        assert_eq!(stats[2], "\nBuffer: kscope-fixture-b\n\n", "{name}");
        assert!(
            data.options
                .iter()
                .any(|o| o.id == option_id::TRACEID && o.data.len() == 8)
        );
        // No option of the layout is left in the list.
        assert!(
            data.options
                .iter()
                .all(|o| ![0, 3, 16, 17, 18, 19, 20, 21, 22].contains(&o.id)),
            "{name}"
        );

        for buffer in &data.buffers {
            assert_eq!(buffer.clock.as_deref(), Some("local"), "{name}");
            assert_eq!(buffer.page_size, 4096, "{name}");
            let cpus: Vec<u32> = buffer.cpus.iter().map(|c| c.cpu).collect();
            assert_eq!(cpus, [0, 1], "{name} {}", buffer.name);
        }
        assert_eq!(count_events(&data), EVENTS, "{name}");
    }
}

/// Decodes every page of every CPU of every buffer with kscope-traceevent
/// (which checks each page's commit word) and counts the records.
fn count_events(data: &TraceData<'_>) -> usize {
    let text = std::str::from_utf8(&data.header_page).expect("header_page is text");
    let header = HeaderPage::parse(text).expect("header_page parses");
    let layout = PageLayout::from_header(&header);
    let mut events = 0;
    for buffer in &data.buffers {
        for cpu in &buffer.cpus {
            assert!(!cpu.data.is_empty());
            assert_eq!(cpu.data.len() % buffer.page_size as usize, 0);
            for page in cpu.data.chunks(buffer.page_size as usize) {
                let sub = SubBuffer::parse(page, &layout).expect("a sane page header");
                assert!(sub.data_len() > 0 && sub.data_len() <= page.len() - layout.data_offset);
                for record in sub.records() {
                    record.expect("a record");
                    events += 1;
                }
            }
        }
    }
    events
}

#[test]
fn the_event_count_is_trace_cmds() {
    let Some(trace_cmd) = trace_cmd_for(Compression::None) else {
        return;
    };
    let out = report(&trace_cmd, &fixture_path("v6.dat"));
    let lines = out
        .lines()
        .filter(|l| l.contains(": ") && !l.starts_with("cpus="))
        .count();
    assert_eq!(lines, EVENTS, "{out}");
}

#[test]
fn all_fixtures_hold_the_same_trace() {
    let v6 = fixture("v6.dat");
    let v6 = kscope_tracedat::parse(&v6).unwrap();
    for (name, _, _) in FIXTURES {
        let bytes = fixture(name);
        let data = kscope_tracedat::parse(&bytes).unwrap();
        let mut differ = differences(&v6, &data);
        // trace-cmd convert --file-version 7 adds a CPUCOUNT to those it
        // copies.
        if name.starts_with("v7-") {
            assert_eq!(differ, ["options"], "{name}");
            differ.clear();
            let (last, copied) = data.options.split_last().unwrap();
            assert_eq!(copied, v6.options.as_slice(), "{name}");
            assert_eq!(last.id, option_id::CPUCOUNT, "{name}");
        }
        assert!(differ.is_empty(), "{name}: {differ:?}");
    }
}

#[test]
fn uncompressed_data_is_borrowed_from_the_file_and_compressed_data_owned() {
    for (name, _, compression) in FIXTURES {
        let bytes = fixture(name);
        let range = bytes.as_ptr_range();
        let data = kscope_tracedat::parse(&bytes).unwrap();
        let borrowed_from_file = |cow: &Cow<'_, [u8]>| match cow {
            Cow::Borrowed(s) => range.contains(&s.as_ptr()),
            Cow::Owned(_) => false,
        };
        let compressed = compression != Compression::None;
        for cpu in data.buffers.iter().flat_map(|b| &b.cpus) {
            assert_eq!(borrowed_from_file(&cpu.data), !compressed, "{name}");
        }
        assert_eq!(borrowed_from_file(&data.kallsyms), !compressed, "{name}");
        assert!(borrowed_from_file(&data.options[0].data), "{name}");
    }
}
