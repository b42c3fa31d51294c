//! `kscope probe` leaves nothing behind: after a normal exit, Ctrl-C,
//! SIGTERM and a load the verifier refuses, no BPF program or map of
//! kscope's is in the kernel (listed as bpftool does, through
//! BPF_PROG_GET_NEXT_ID and BPF_MAP_GET_NEXT_ID), the process and with it
//! its perf event fds are gone, and tracefs (events, uprobes, instances)
//! holds the same bytes as before. While a session runs, the same checks
//! do see its programs, maps and perf fds, so they can fail.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kscope_testkit::with_unchanged_tracefs;

/// Names of kscope's BPF programs and maps that the kernel holds.
fn our_objects() -> Vec<String> {
    let programs = kscope_bpf::loaded_programs().expect("list BPF programs");
    let maps = kscope_bpf::loaded_maps().expect("list BPF maps");
    programs
        .into_iter()
        .map(|p| format!("program {}", p.name))
        .chain(maps.into_iter().map(|m| format!("map {}", m.name)))
        .filter(|n| n.contains(" ks_"))
        .collect()
}

/// Waits for the kernel to free what kscope held: programs go when their
/// last fd closes, maps a moment later (the kernel frees them from a work
/// queue after an RCU grace period). Returns what is still there after
/// 5 s.
fn our_objects_after_exit() -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = our_objects();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the fds of `pid` are, as /proc/PID/fd links name them:
/// "anon_inode:bpf-prog", "anon_inode:bpf-map", "anon_inode:[perf_event]".
fn fd_kinds(pid: u32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.display().to_string())
        .filter(|p| p.starts_with("anon_inode:"))
        .collect()
}

/// Starts a session with `-v` and waits until it says it is attached.
fn start(script: &str) -> Child {
    let mut child = kscope_testkit::command_with_signals(env!("CARGO_BIN_EXE_kscope"), &[])
        .args(["probe", "-v", "-e", script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kscope probe");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = lines
            .next()
            .expect("kscope ended before attaching")
            .expect("read stderr");
        if line.starts_with("Pass 5:") {
            break;
        }
        assert!(Instant::now() < deadline, "not attached after 20 s");
    }
    // Keep draining stderr so the child never blocks on it.
    std::thread::spawn(move || lines.for_each(drop));
    child
}

fn wait(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kscope did not end within 20 s of the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

const LONG_RUNNING: &str = "global n
probe syscall.read, kernel.trace(\"sched:sched_switch\") { n++ }
probe timer.ms(50) { n++ }
probe end { printf(\"%d\\n\", n > 0) }";

fn stopped_by(signal: i32, name: &str) {
    with_unchanged_tracefs(&format!("kscope probe stopped by {name}"), |_| {
        assert_eq!(
            our_objects_after_exit(),
            Vec::<String>::new(),
            "left over before the test"
        );
        let mut child = start(LONG_RUNNING);
        let pid = child.id();
        // The checks see a running session's objects.
        let running = our_objects();
        assert!(
            running.iter().any(|n| n.starts_with("program ks_")),
            "{running:?}"
        );
        assert!(running.iter().any(|n| n == "map ks_events"), "{running:?}");
        let fds = fd_kinds(pid);
        assert!(fds.iter().any(|f| f.contains("perf_event")), "{fds:?}");
        assert!(fds.iter().any(|f| f.contains("bpf-prog")), "{fds:?}");
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        // Once it has cleaned up, it ends by the signal, as its shell expects.
        let status = wait(&mut child);
        assert_eq!(status.signal(), Some(signal), "{name}: {status}");
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        assert_eq!(
            our_objects_after_exit(),
            Vec::<String>::new(),
            "left after {name}"
        );
    });
}

#[test]
fn ctrl_c_leaves_nothing_behind() {
    stopped_by(2, "SIGINT");
}

#[test]
fn sigterm_leaves_nothing_behind() {
    stopped_by(15, "SIGTERM");
}

#[test]
fn exit_and_a_refused_load_leave_nothing_behind() {
    with_unchanged_tracefs("kscope probe exiting and failing to load", |_| {
        assert_eq!(
            our_objects_after_exit(),
            Vec::<String>::new(),
            "left over before the test"
        );
        let exited = crate::kscope(&[
            "probe",
            "-e",
            "probe syscall.read, timer.ms(10) { exit() } probe end { printf(\"done\\n\") }",
        ]);
        assert!(exited.status.success(), "{}", crate::stderr(&exited));
        assert_eq!(crate::stdout(&exited), "done\n");
        assert_eq!(
            our_objects_after_exit(),
            Vec::<String>::new(),
            "left after exit()"
        );

        let refused = crate::kscope(&[
            "probe",
            "-e",
            "global g probe syscall.read { n = 0 } probe begin { while (g < 1) { } }",
        ]);
        assert_eq!(refused.status.code(), Some(1));
        let err = crate::stderr(&refused);
        assert!(err.contains("could not prove that this loop ends"), "{err}");
        assert_eq!(
            our_objects_after_exit(),
            Vec::<String>::new(),
            "left after a refused load"
        );
    });
}

#[test]
fn without_privilege_the_error_is_one_sentence_and_nothing_is_left() {
    if !kscope_testkit::live(
        "kscope probe as an unprivileged user",
        kscope_testkit::missing_root(),
    ) {
        return;
    }
    let run = crate::kscope_as_nobody(
        &["probe", "-e", "probe begin { printf(\"hi\\n\"); exit() }"],
        false,
    );
    assert_eq!(run.status.code(), Some(1));
    assert!(run.stdout.is_empty());
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(
            "kscope: error: cannot load the probes (BPF needs root, or CAP_BPF with CAP_PERFMON)"
        ),
        "{err}"
    );
    assert_eq!(err.matches("Operation not permitted").count(), 1, "{err}");
    assert_eq!(our_objects_after_exit(), Vec::<String>::new());
}

#[test]
fn too_few_file_descriptors_is_one_sentence_and_nothing_is_left() {
    with_unchanged_tracefs("kscope probe with 64 file descriptors", |_| {
        let run = Command::new("prlimit")
            .args(["--nofile=64:64", "--"])
            .arg(env!("CARGO_BIN_EXE_kscope"))
            // Every syscall entry as its own tracepoint (syscall.* is one
            // program on raw_syscalls).
            .args([
                "probe",
                "-e",
                "probe kernel.trace(\"syscalls:sys_enter_*\") { next }",
            ])
            .output()
            .expect("run prlimit");
        assert_eq!(run.status.code(), Some(1));
        let err = String::from_utf8_lossy(&run.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("too many open files"), "{err}");
        assert!(err.contains("raise the limit with ulimit -n"), "{err}");
        assert_eq!(our_objects_after_exit(), Vec::<String>::new());
    });
}
