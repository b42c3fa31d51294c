//! Sub-buffers read from a private instance's `per_cpu/cpuN/trace_pipe_raw`
//! decode into records of the events enabled there, in time order on each
//! CPU, with payloads that match what was traced and the time stamps that
//! the kernel's own `trace` file shows for the same buffer.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kscope_testkit::{TracefsLock, assert_tracefs_unchanged_by, live, missing_root};
use kscope_traceevent::{EventFormat, HeaderPage, PageLayout, SubBuffer};
use kscope_tracefs::{Instance, StateGuard, Tracefs};

/// Longer than 112 bytes, so that its `print` record is a large one (its
/// length in `array[0]`, not in `type_len`).
const MARKER: &str = "kscope page test: a trace_marker line long enough that the ring buffer \
                      stores its record with type_len 0 and the length in array[0], which \
                      this test then finds again byte for byte";

#[test]
fn trace_pipe_raw_decodes_into_records_of_the_enabled_events() {
    if !live("decode trace_pipe_raw", missing_root()) {
        return;
    }
    let _lock = TracefsLock::acquire();
    let outer = StateGuard::new();
    let fs = outer.tracefs().expect("tracefs");
    assert_tracefs_unchanged_by("decoding trace_pipe_raw", fs.root(), || {
        let guard = StateGuard::new();
        let instance = guard.private_instance(&fs).expect("private instance");
        let switch = event_id(&fs, "sched", "sched_switch");
        let getpid = event_id(&fs, "syscalls", "sys_enter_getpid");
        guard
            .enable_event(&instance, "sched", "sched_switch")
            .expect("enable sched_switch");
        guard
            .enable_event(&instance, "syscalls", "sys_enter_getpid")
            .expect("enable sys_enter_getpid");
        workload(&instance);
        guard
            .set_tracing_on(&instance, false)
            .expect("tracing_on 0");

        let print_text = fs.event_format("ftrace", "print").expect("ftrace/print");
        let print = EventFormat::parse(&print_text).expect("ftrace/print format");
        let print_buf = print.field("buf").expect("print has buf").offset as usize;
        let header_text = instance.read("events/header_page").expect("header_page");
        let header = HeaderPage::parse(&header_text).expect("header_page parses");
        let layout = PageLayout::from_header(&header);
        let size = subbuf_size(&instance);
        assert_eq!(
            layout.data_offset + header.data_size() as usize,
            size,
            "header_page's data size and buffer_subbuf_size_kb disagree"
        );

        // Read before trace_pipe_raw, which consumes what it returns.
        let kernel = kernel_times(&instance);
        let mut decoded = Vec::new();
        let mut counts: BTreeMap<u16, usize> = BTreeMap::new();
        let mut markers = 0;
        for (cpu, path) in per_cpu_pipes(&instance) {
            let mut last = 0;
            for (n, bytes) in read_subbuffers(&path, size).iter().enumerate() {
                let sub = SubBuffer::parse(bytes, &layout)
                    .unwrap_or_else(|e| panic!("cpu{cpu} sub-buffer {n}: {e}"));
                assert!(sub.timestamp >= last, "cpu{cpu} sub-buffer {n} went back");
                for record in sub.records() {
                    let record = record.unwrap_or_else(|e| panic!("cpu{cpu} sub-buffer {n}: {e}"));
                    assert!(
                        record.timestamp >= last,
                        "cpu{cpu} sub-buffer {n} offset {}: time {} after {last}",
                        record.offset,
                        record.timestamp
                    );
                    last = record.timestamp;
                    // The trace file rounds to the nearest microsecond.
                    decoded.push((cpu, (record.timestamp + 500) / 1_000));
                    let common_type = u16::from_le_bytes([record.data[0], record.data[1]]);
                    assert!(
                        [switch, getpid, print.id as u16].contains(&common_type),
                        "cpu{cpu} sub-buffer {n} offset {}: common_type {common_type}",
                        record.offset
                    );
                    *counts.entry(common_type).or_default() += 1;
                    if record.data.get(print_buf..print_buf + MARKER.len())
                        == Some(MARKER.as_bytes())
                    {
                        markers += 1;
                    }
                }
            }
        }
        assert!(
            counts.get(&switch) > Some(&0),
            "no sched_switch: {counts:?}"
        );
        assert!(
            counts.get(&getpid) > Some(&0),
            "no sys_enter_getpid: {counts:?}"
        );
        assert_eq!(markers, 1, "the marker's record, found whole: {counts:?}");
        decoded.sort_unstable();
        assert_eq!(
            decoded.len(),
            kernel.len(),
            "records decoded and lines in the trace file"
        );
        for (ours, theirs) in decoded.iter().zip(&kernel) {
            assert_eq!(ours, theirs, "(cpu, microseconds) decoded and in trace");
        }
        guard.restore().expect("restore");
    });
    outer.restore().expect("unmount");
}

fn event_id(fs: &Tracefs, system: &str, event: &str) -> u16 {
    let text = fs.event_format(system, event).expect("format");
    let format = EventFormat::parse(&text).expect("format parses");
    u16::try_from(format.id).expect("an id that fits common_type")
}

/// Context switches (threads that sleep), getpid calls, and one marker.
fn workload(instance: &Instance) {
    let workers: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..50 {
                    std::hint::black_box(std::process::id());
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }
    let mut marker = OpenOptions::new()
        .write(true)
        .open(instance.file("trace_marker"))
        .expect("trace_marker");
    marker.write_all(MARKER.as_bytes()).expect("write marker");
}

/// (cpu, microseconds) of every event in the instance's `trace` file,
/// sorted: the kernel's own decoding of the buffer, to the microsecond.
fn kernel_times(instance: &Instance) -> Vec<(usize, u64)> {
    let text = instance.read("trace").expect("trace");
    let mut times: Vec<(usize, u64)> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            // "  <task>-<pid>  [<cpu>] <flags> <secs>.<usecs>: <event>: ..."
            let (cpu, rest) = line.match_indices('[').find_map(|(at, _)| {
                let (cpu, rest) = line[at + 1..].split_once(']')?;
                Some((cpu.parse().ok()?, rest))
            })?;
            let stamp = rest
                .split_whitespace()
                .find_map(|token| token.strip_suffix(':').filter(|t| t.contains('.')))?;
            let (secs, usecs) = stamp.split_once('.')?;
            Some((
                cpu,
                secs.parse::<u64>().ok()? * 1_000_000 + usecs.parse::<u64>().ok()?,
            ))
        })
        .collect();
    times.sort_unstable();
    assert!(!times.is_empty(), "no events in trace:\n{text}");
    times
}

/// One sub-buffer's size: a page, unless `buffer_subbuf_size_kb` (kernels
/// 6.8 and later) says more.
fn subbuf_size(instance: &Instance) -> usize {
    instance.read("buffer_subbuf_size_kb").map_or(4096, |kb| {
        kb.trim().parse::<usize>().expect("buffer_subbuf_size_kb") * 1024
    })
}

fn per_cpu_pipes(instance: &Instance) -> Vec<(usize, PathBuf)> {
    let mut pipes: Vec<(usize, PathBuf)> = std::fs::read_dir(instance.file("per_cpu"))
        .expect("per_cpu")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let cpu = entry
                .file_name()
                .to_str()?
                .strip_prefix("cpu")?
                .parse()
                .ok()?;
            Some((cpu, entry.path().join("trace_pipe_raw")))
        })
        .collect();
    pipes.sort();
    assert!(!pipes.is_empty(), "no per_cpu/cpuN directories");
    pipes
}

/// Reads a CPU's buffer one sub-buffer per read until it is empty (EAGAIN
/// without blocking).
fn read_subbuffers(path: &Path, size: usize) -> Vec<Vec<u8>> {
    let mut pipe = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut subbuffers = Vec::new();
    loop {
        let mut bytes = vec![0; size];
        match pipe.read(&mut bytes) {
            Ok(0) => break,
            Ok(n) => assert_eq!(n, size, "{}: a short read", path.display()),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{}: {e}", path.display()),
        }
        subbuffers.push(bytes);
        assert!(
            subbuffers.len() < 1 << 16,
            "{}: no end to the data with tracing off",
            path.display()
        );
    }
    subbuffers
}
