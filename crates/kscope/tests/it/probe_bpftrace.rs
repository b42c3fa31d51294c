//! `kscope probe` against bpftrace, the oracle for probe results: both
//! count the read syscalls of one dd run by its pid, attached before it
//! starts and stopped after it ends, and must agree exactly.

use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kscope_testkit::{live, missing_root, with_unchanged_tracefs};
use rustix::process::{Signal, kill_process};

use crate::probe_corpus::{Collected, Group, drain};

/// dd's reads of one byte each: the count that both tools must reach.
const BLOCKS: usize = 5000;

/// None when bpftrace runs here, else why the test cannot.
fn missing_bpftrace() -> Option<String> {
    match Command::new("bpftrace").arg("--version").output() {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "bpftrace --version failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(e) => Some(format!(
            "bpftrace is not installed ({e}); scripts/setup installs it"
        )),
    }
}

/// Starts `program ARGS` in a process group of its own, with stdout and
/// stderr collected.
fn start(program: &str, args: &[&str]) -> (Group, Collected, Collected) {
    let mut child = kscope_testkit::command_with_signals(program, &[])
        .args(args)
        .env("NO_COLOR", "1")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let (stdout, _) = drain(child.stdout.take().expect("piped stdout"));
    let (stderr, _) = drain(child.stderr.take().expect("piped stderr"));
    (Group(child), stdout, stderr)
}

fn text(buffer: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&buffer.lock().expect("output buffer")).into_owned()
}

/// Waits until `ready` holds; after `limit`, panics with `what` and
/// `context` (the tools' output).
fn wait_for(
    what: &str,
    limit: Duration,
    mut ready: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} within {} s\n{}",
            limit.as_secs(),
            context()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGINT to `tool` and waits for it to end; returns its exit
/// status (None if it had to be killed).
fn interrupt(tool: &mut Group) -> Option<std::process::ExitStatus> {
    kill_process(tool.pid(), Signal::INT).expect("send SIGINT");
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Some(status) = tool.0.try_wait().expect("wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The number after `prefix` on the line that starts with it.
fn count_after(output: &str, prefix: &str) -> Option<usize> {
    output
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|n| n.trim().parse().ok())
}

/// The outputs of bpftrace and kscope, attached together to one workload
/// (`exec`'d by a shell held at a gate until both are attached, so that
/// its pid is known first), then stopped with SIGINT once it ended.
/// `bpftrace_script` gets the workload's pid and must also print "ready"
/// once on a read of this test process (`me`), to say it is attached;
/// kscope's script sees the pid as target().
struct Both {
    bpftrace: String,
    kscope: String,
    pid: String,
}

fn run_both(
    what: &str,
    workload: &str,
    bpftrace_script: impl Fn(&str, u32) -> String,
    kscope_script: &str,
) -> Option<Both> {
    if !live(what, missing_root().or_else(missing_bpftrace)) {
        return None;
    }
    let mut both = None;
    // bpftrace reads tracepoint ids from tracefs: this mounts it for the
    // test (and takes the tracefs lock), and checks that neither tool
    // changed it.
    with_unchanged_tracefs(what, |_| {
        // Removed when dropped, a failing assertion included.
        let dir_holder = tempfile::Builder::new()
            .prefix("kscope-bpftrace-")
            .tempdir()
            .expect("a temp dir");
        let dir = dir_holder.path().to_path_buf();
        let fifo = dir.join("gate");
        let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(made.success(), "mkfifo {}", fifo.display());

        let gated = format!("read -r _ < '{}'; exec {workload}", fifo.display());
        let mut work = Group(
            Command::new("sh")
                .args(["-c", &gated])
                .process_group(0)
                .stdin(Stdio::null())
                .spawn()
                .expect("start the workload"),
        );
        let pid = work.0.id().to_string();
        let me = std::process::id();

        let (mut bpftrace, bt_out, bt_err) = start("bpftrace", &["-e", &bpftrace_script(&pid, me)]);
        let (mut kscope, ks_out, ks_err) = start(
            env!("CARGO_BIN_EXE_kscope"),
            &["probe", "-v", "-x", &pid, "-e", kscope_script],
        );
        let context = || {
            format!(
                "--- bpftrace stdout ---\n{}--- bpftrace stderr ---\n{}\
                 --- kscope stdout ---\n{}--- kscope stderr ---\n{}",
                text(&bt_out),
                text(&bt_err),
                text(&ks_out),
                text(&ks_err)
            )
        };

        wait_for(
            "bpftrace did not attach",
            Duration::from_secs(30),
            || {
                // A read of ours, for bpftrace's probe to see.
                let _ = std::fs::read("/proc/self/stat");
                text(&bt_out).contains("ready")
            },
            context,
        );
        wait_for(
            "kscope did not attach",
            Duration::from_secs(30),
            || text(&ks_err).contains("Pass 5:"),
            context,
        );

        std::fs::OpenOptions::new()
            .write(true)
            .open(&fifo)
            .and_then(|mut gate| gate.write_all(b"go\n"))
            .expect("open the gate");
        let mut status = None;
        wait_for(
            "the workload did not finish",
            Duration::from_secs(30),
            || {
                status = work.0.try_wait().expect("wait for the workload");
                status.is_some()
            },
            context,
        );
        assert!(
            status.is_some_and(|s| s.success()),
            "the workload failed: {status:?}"
        );

        let bt_status = interrupt(&mut bpftrace);
        let ks_status = interrupt(&mut kscope);
        drop((bpftrace, kscope));
        assert_eq!(
            bt_status.and_then(|s| s.code()),
            Some(0),
            "bpftrace after SIGINT\n{}",
            context()
        );
        // kscope ends by the SIGINT once it has printed and cleaned up
        // (docs/KNOWN-DIFFERENCES.md).
        assert_eq!(
            ks_status.and_then(|s| s.signal()),
            Some(2),
            "kscope after SIGINT\n{}",
            context()
        );
        both = Some(Both {
            bpftrace: text(&bt_out),
            kscope: text(&ks_out),
            pid,
        });
    });
    both
}

#[test]
fn read_counts_of_a_dd_agree_with_bpftrace() {
    let Some(both) = run_both(
        "kscope probe against bpftrace",
        &format!("dd if=/dev/zero of=/dev/null bs=1 count={BLOCKS} 2>/dev/null"),
        |pid, me| {
            format!(
                "tracepoint:syscalls:sys_enter_read {{ \
                   if (pid == {pid}) {{ @reads = count(); }} \
                   if (pid == {me} && @ready == 0) {{ @ready = 1; printf(\"ready\\n\"); }} \
                 }}"
            )
        },
        "global n\n\
         probe syscall.read { if (pid() == target()) n++ }\n\
         probe end { printf(\"kscope %d\\n\", n) }",
    ) else {
        return;
    };
    let context = || {
        format!(
            "--- bpftrace ---\n{}--- kscope ---\n{}",
            both.bpftrace, both.kscope
        )
    };
    let theirs = count_after(&both.bpftrace, "@reads:")
        .unwrap_or_else(|| panic!("no count from bpftrace\n{}", context()));
    let ours = count_after(&both.kscope, "kscope ")
        .unwrap_or_else(|| panic!("no count from kscope\n{}", context()));
    eprintln!(
        "read syscalls of dd (pid {}): bpftrace {theirs}, kscope {ours}",
        both.pid
    );
    assert!(
        theirs >= BLOCKS,
        "bpftrace saw {theirs} reads, dd made at least {BLOCKS}\n{}",
        context()
    );
    assert_eq!(ours, theirs, "kscope and bpftrace disagree\n{}", context());
}

#[test]
fn a_hist_log_of_read_sizes_has_bpftrace_hist_counts_in_every_bucket() {
    // Reads of 1 to 70,000 bytes, over several powers of two, and
    // python's own reads at start-up: the same for both tools.
    let workload = "python3 -c 'import os\nf = os.open(\"/dev/zero\", os.O_RDONLY)\nfor n in range(1, 70000, 97): os.read(f, n)'";
    let Some(both) = run_both(
        "a hist_log against bpftrace's hist",
        workload,
        |pid, me| {
            format!(
                "tracepoint:syscalls:sys_enter_read {{ \
                   if (pid == {pid}) {{ @sizes = hist(args->count); }} \
                   if (pid == {me} && @ready == 0) {{ @ready = 1; printf(\"ready\\n\"); }} \
                 }}"
            )
        },
        "global sizes\n\
         probe syscall.read { if (pid() == target()) sizes <<< $count }\n\
         probe end { print(@hist_log(sizes)) }",
    ) else {
        return;
    };
    let context = || {
        format!(
            "--- bpftrace ---\n{}--- kscope ---\n{}",
            both.bpftrace, both.kscope
        )
    };
    let theirs = bpftrace_hist(&both.bpftrace);
    let ours = systemtap_hist(&both.kscope);
    assert!(theirs.len() >= 10, "too few buckets\n{}", context());
    for (low, count) in &theirs {
        assert_eq!(
            ours.get(low).copied().unwrap_or(0),
            *count,
            "the bucket from {low}\n{}",
            context()
        );
    }
    for (low, count) in &ours {
        assert_eq!(
            theirs.get(low).copied().unwrap_or(0),
            *count,
            "the bucket from {low}\n{}",
            context()
        );
    }
}

/// bpftrace's `hist()`: each non-empty bucket's lower bound and count,
/// from rows like `[4, 8)   12 |@@@  |` or `[1K, 2K)  3 |@ |`.
fn bpftrace_hist(text: &str) -> std::collections::BTreeMap<i64, u64> {
    let value = |v: &str| -> Option<i64> {
        let v = v.trim();
        let (digits, scale) = match v.strip_suffix('K') {
            Some(d) => (d, 1 << 10),
            None => match v.strip_suffix('M') {
                Some(d) => (d, 1 << 20),
                None => (v, 1),
            },
        };
        digits.parse::<i64>().ok().map(|n| n * scale)
    };
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix('[')?;
            let (range, tail) = rest.split_once(']').or_else(|| rest.split_once(')'))?;
            let low = value(range.split(',').next()?)?;
            let count = tail
                .trim_start_matches(')')
                .split('|')
                .next()?
                .trim()
                .parse()
                .ok()?;
            Some((low, count))
        })
        .filter(|&(_, count)| count > 0)
        .collect()
}

/// SystemTap's `@hist_log` chart: each non-empty row's value and count,
/// from rows like `   64 |@@@@    12`.
fn systemtap_hist(text: &str) -> std::collections::BTreeMap<i64, u64> {
    text.lines()
        .filter_map(|line| {
            let (value, rest) = line.split_once('|')?;
            let value = value.trim().parse().ok()?;
            let count = rest.trim_start_matches(['@', ' ']).trim().parse().ok()?;
            Some((value, count))
        })
        .filter(|&(_, count)| count > 0)
        .collect()
}
