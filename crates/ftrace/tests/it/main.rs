//! The kernel is the oracle: records traced in a private instance are
//! read twice, as the kernel's own `trace` text and as raw sub-buffers
//! that kscope decodes and formats, and the two renderings are compared
//! record by record. Module `record`: the per-CPU recorder stops its
//! threads on every path.

mod record;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;

use kscope_ftrace::{EventSelection, Item, KernelContext, Session, SessionConfig, merge, read_btf};
use kscope_testkit::{TracefsLock, assert_tracefs_unchanged_by, live, missing_root};
use kscope_traceevent::{Cmdlines, EventFormat, Renderer};
use kscope_tracefs::{StateGuard, Tracefs, control};

/// Systems whose every event is enabled.
const SYSTEMS: &[&str] = &[
    "sched",
    "syscalls",
    "irq",
    "timer",
    "signal",
    "kmem",
    "block",
    "net",
    "task",
    "workqueue",
    "sock",
    "skb",
    "tcp",
    "writeback",
    "filemap",
    "raw_syscalls",
    "rcu",
];

/// Work that makes those events fire: processes, files, signals, sockets.
fn workload() {
    for _ in 0..3 {
        let _ = std::process::Command::new("sh")
            .args([
                "-c",
                "ls /proc > /dev/null; cat /etc/hostname > /dev/null; kill -0 $$; sleep 0.01",
            ])
            .status();
    }
    // Removed when dropped, a failing assertion included.
    let dir_holder = tempfile::Builder::new()
        .prefix("kscope-oracle-")
        .tempdir()
        .expect("a temp dir");
    let dir = dir_holder.path().to_path_buf();
    if let Ok(mut f) = std::fs::File::create(dir.join("data")) {
        let _ = f.write_all(&vec![7u8; 256 * 1024]);
        let _ = f.sync_all();
    }
    if let Ok(listener) = std::net::TcpListener::bind("127.0.0.1:0")
        && let Ok(addr) = listener.local_addr()
        && let Ok(mut client) = std::net::TcpStream::connect(addr)
        && let Ok((mut server, _)) = listener.accept()
    {
        let _ = client.write_all(b"hello over loopback");
        let mut buf = [0u8; 32];
        let _ = server.read(&mut buf);
    }
    std::thread::sleep(Duration::from_millis(20));
}

/// One line of the kernel's `trace` file, split into what is compared.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Line {
    comm: String,
    pid: i32,
    cpu: u32,
    usecs: u64,
    /// Everything after the timestamp's ": ".
    rest: String,
}

/// Parses `            bash-1234    [001] d..2.  5678.123456: rest`.
fn parse_kernel_line(line: &str) -> Option<Line> {
    let (head, after_cpu) = line.split_once(" [")?;
    let (cpu, after) = after_cpu.split_once("] ")?;
    let (comm, pid) = head.trim_start().rsplit_once('-')?;
    // After the CPU: the latency columns, the timestamp, ": ", the rest.
    let mut words = after.splitn(2, ": ");
    let stamp_part = words.next()?;
    let rest = words.next()?.to_string();
    let stamp = stamp_part.split_whitespace().last()?;
    let (secs, micros) = stamp.split_once('.')?;
    Some(Line {
        comm: comm.to_string(),
        pid: pid.trim().parse().ok()?,
        cpu: cpu.trim().parse().ok()?,
        usecs: secs.parse::<u64>().ok()? * 1_000_000 + micros.parse::<u64>().ok()?,
        rest,
    })
}

fn event_name(rest: &str) -> String {
    rest.split([':', '(', ' ']).next().unwrap_or("").to_string()
}

fn enabled_events(fs: &Tracefs) -> Vec<EventSelection> {
    fs.events()
        .expect("events")
        .into_iter()
        .filter(|(system, _)| SYSTEMS.contains(&system.as_str()))
        .map(|(system, event)| EventSelection::new(&system, &event))
        .collect()
}

#[test]
fn kscope_formats_records_as_the_kernel_does() {
    if !live("the kernel as oracle for event text", missing_root()) {
        return;
    }
    let _lock = TracefsLock::acquire();
    let outer = StateGuard::new();
    let fs = outer.tracefs().expect("tracefs");
    assert_tracefs_unchanged_by("the oracle test", fs.root(), || compare_with_kernel(&fs));
    outer.restore().expect("restore");
}

fn compare_with_kernel(fs: &Tracefs) {
    let guard = StateGuard::new();
    let selections = enabled_events(fs);
    assert!(selections.len() > 500, "only {} events", selections.len());
    let texts: Vec<String> = selections
        .iter()
        .map(|s| fs.event_format(&s.system, &s.event).expect("format"))
        .collect();
    let formats: Vec<EventFormat<'_>> = texts
        .iter()
        .map(|t| EventFormat::parse(t).expect("parse"))
        .collect();
    let renderer = Renderer::new(&formats);
    let config = SessionConfig {
        events: selections,
        buffer_kb: Some(8192),
        wake_percent: 0,
        ..SessionConfig::default()
    };
    let mut session = Session::start(&guard, fs, &config).expect("session");
    // Plain %p prints a per-boot hash of the pointer; the option turns
    // that off in our instance, so the kernel prints what the record has.
    if session.instance().file("options/hash-ptr").exists() {
        guard
            .set(session.instance(), "options/hash-ptr", "0")
            .expect("hash-ptr");
    }
    workload();
    session.stop(&guard).expect("stop");

    // The kernel's rendering first: reading `trace` consumes nothing.
    let kernel_text = control::read(&session.instance().file("trace")).expect("trace");
    let cmdlines =
        Cmdlines::parse(&control::read(&fs.root().join("saved_cmdlines")).unwrap_or_default());
    let mut kernel_context = KernelContext::load(250);
    let btf_blob = read_btf();
    let btf = kscope_btf::Btf::parse(&btf_blob).ok();
    let unresolved_names: Vec<&str> = renderer
        .unresolved(&kernel_context.env(btf.as_ref()))
        .into_iter()
        .flat_map(|(_, names)| names)
        .collect();
    kernel_context.resolve(fs, &unresolved_names);
    kernel_context.read_strings(fs);
    let env = kernel_context.env(btf.as_ref());
    let pages = session.drain_all().expect("drain");
    // The per-CPU files must be closed before the instance can go.
    let layout = *session.layout();
    drop(session);
    let merged = merge(&pages, &layout);
    assert!(
        merged.errors.is_empty(),
        "damaged pages: {:?}",
        merged.errors
    );

    let kernel: Vec<Line> = kernel_text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_kernel_line)
        .collect();
    let mut ours = Vec::new();
    for item in &merged.items {
        let Item::Record {
            ts,
            cpu,
            page,
            start,
            len,
        } = *item
        else {
            continue;
        };
        let data = &pages[page].bytes[start..start + len];
        let pid = i32::from_le_bytes([data[4], data[5], data[6], data[7]]);
        let mut rest = String::new();
        renderer.render_kernel_style(data, &env, &mut rest);
        ours.push(Line {
            comm: cmdlines.comm(pid).to_string(),
            pid,
            cpu,
            usecs: (ts + 500) / 1000,
            rest,
        });
    }
    assert!(
        kernel.len() > 1000,
        "only {} records: the workload did not run?",
        kernel.len()
    );

    // Events whose print fmt reads a kernel variable (jiffies) or one whose
    // address this kernel does not publish (vmemmap_base without
    // CONFIG_KALLSYMS_ALL) cannot match: they are counted apart.
    let unresolved: HashMap<&str, Vec<&str>> = renderer.unresolved(&env).into_iter().collect();
    eprintln!("oracle: events reading what the record lacks: {unresolved:?}");

    let mut remaining: HashMap<&Line, usize> = HashMap::new();
    for line in &kernel {
        *remaining.entry(line).or_default() += 1;
    }
    let mut identical = 0;
    let mut set_apart = 0;
    let mut differing: HashMap<String, (usize, String)> = HashMap::new();
    for line in &ours {
        match remaining.get_mut(line) {
            Some(n) if *n > 0 => {
                *n -= 1;
                identical += 1;
            }
            _ if unresolved.contains_key(event_name(&line.rest).as_str()) => set_apart += 1,
            _ => {
                let kernels = kernel
                    .iter()
                    .find(|k| {
                        k.cpu == line.cpu
                            && k.usecs == line.usecs
                            && k.pid == line.pid
                            && event_name(&k.rest) == event_name(&line.rest)
                    })
                    .map_or_else(
                        || "no kernel line at that time".to_string(),
                        |k| format!("{:?} / {:?}", k.comm, k.rest),
                    );
                let entry = differing.entry(event_name(&line.rest)).or_insert_with(|| {
                    (
                        0,
                        format!("{:?} / {:?}\n    kernel {kernels}", line.comm, line.rest),
                    )
                });
                entry.0 += 1;
            }
        }
    }
    let total = kernel.len().max(ours.len()) - set_apart;
    let ratio = identical as f64 / total as f64;
    let mut report: Vec<String> = differing
        .iter()
        .map(|(name, (count, example))| format!("{name}: {count} differ, e.g. ours {example}"))
        .collect();
    report.sort();
    eprintln!(
        "oracle: {identical} of {total} records identical ({:.4}%); kernel {} records, kscope {}; {set_apart} set apart",
        ratio * 100.0,
        kernel.len(),
        ours.len()
    );
    // Every event type that differs, set apart or not, is documented.
    let documented = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/KNOWN-DIFFERENCES.md"
    ))
    .expect("docs/KNOWN-DIFFERENCES.md");
    let undocumented: Vec<&String> = differing
        .keys()
        .filter(|name| !documented.contains(name.as_str()))
        .collect();
    let undocumented_apart: Vec<&&str> = unresolved
        .keys()
        .filter(|name| !documented.contains(**name))
        .collect();
    for line in &report {
        eprintln!("oracle: {line}");
    }
    assert!(
        undocumented.is_empty() && undocumented_apart.is_empty(),
        "event types that differ from the kernel and are not in docs/KNOWN-DIFFERENCES.md: {undocumented:?} {undocumented_apart:?}"
    );
    assert!(
        ratio >= 0.999,
        "{identical} of {total} records identical ({:.3}%):\n{}\nfirst kernel lines:\n{}",
        ratio * 100.0,
        report.join("\n"),
        kernel_text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    guard.restore().expect("restore");
}
