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

#[test]
fn read_counts_of_a_dd_agree_with_bpftrace() {
    let what = "kscope probe against bpftrace";
    if !live(what, missing_root().or_else(missing_bpftrace)) {
        return;
    }
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

        // dd, held at a gate until both tools are attached: sh execs it,
        // so its pid is known now.
        let workload = format!(
            "read -r _ < '{}'; exec dd if=/dev/zero of=/dev/null bs=1 count={BLOCKS} 2>/dev/null",
            fifo.display()
        );
        let mut dd = Group(
            Command::new("sh")
                .args(["-c", &workload])
                .process_group(0)
                .stdin(Stdio::null())
                .spawn()
                .expect("start the workload"),
        );
        let pid = dd.0.id().to_string();
        let me = std::process::id();

        // One probe counts dd's reads and, once, says "ready" on a read of
        // this test process: then it is attached.
        let bpftrace_script = format!(
            "tracepoint:syscalls:sys_enter_read {{ \
               if (pid == {pid}) {{ @reads = count(); }} \
               if (pid == {me} && @ready == 0) {{ @ready = 1; printf(\"ready\\n\"); }} \
             }}"
        );
        let (mut bpftrace, bt_out, bt_err) = start("bpftrace", &["-e", &bpftrace_script]);
        let kscope_script = "global n\n\
            probe syscall.read { if (pid() == target()) n++ }\n\
            probe end { printf(\"kscope %d\\n\", n) }";
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
        let mut dd_status = None;
        wait_for(
            "dd did not finish",
            Duration::from_secs(30),
            || {
                dd_status = dd.0.try_wait().expect("wait for dd");
                dd_status.is_some()
            },
            context,
        );
        assert!(
            dd_status.is_some_and(|s| s.success()),
            "dd failed: {dd_status:?}"
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
        let theirs = count_after(&text(&bt_out), "@reads:")
            .unwrap_or_else(|| panic!("no count from bpftrace\n{}", context()));
        let ours = count_after(&text(&ks_out), "kscope ")
            .unwrap_or_else(|| panic!("no count from kscope\n{}", context()));
        eprintln!("read syscalls of dd (pid {pid}): bpftrace {theirs}, kscope {ours}");
        assert!(
            theirs >= BLOCKS,
            "bpftrace saw {theirs} reads, dd made at least {BLOCKS}\n{}",
            context()
        );
        assert_eq!(ours, theirs, "kscope and bpftrace disagree\n{}", context());
    });
}
