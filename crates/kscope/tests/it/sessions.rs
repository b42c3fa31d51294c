//! Several kscope sessions at once, in a mount namespace where tracefs is
//! not mounted (each kscope then mounts it in a private namespace of its
//! own, where no other can unmount it), ended in every order and by
//! SIGKILL; and what a SIGKILLed session leaves, which `kscope doctor`
//! lists and the next tracing command undoes from its journal.
//!
//! The sessions share one mount namespace made with util-linux's
//! `unshare -m --propagation private`, tracefs unmounted there, entered
//! with `nsenter` (which execs, so each child's pid is kscope's): the
//! test's own mounts, and the host's, are left alone. Each test gives the
//! sessions a journal directory of its own (`KSCOPE_RUN_DIR`), so that
//! no other kscope on the machine undoes its leftovers first.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kscope_testkit::{TracefsLock, assert_tracefs_unchanged_by, live, missing_root};
use kscope_tracefs::StateGuard;
use rustix::process::{Pid, Signal, kill_process};

/// How long a session may take to start or to end.
const PATIENCE: Duration = Duration::from_secs(30);

const PROBE: &str = "global n
probe kernel.trace(\"sched:sched_switch\") { n++ }
probe end { printf(\"%d\\n\", n > 0) }";

/// A mount namespace where tracefs is mounted nowhere, held open by a
/// sleeping process until dropped.
struct Namespace {
    holder: Child,
}

impl Namespace {
    fn without_tracefs() -> Namespace {
        let mut holder = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("umount -a -t tracefs 2>/dev/null; grep -q ' - tracefs ' /proc/self/mountinfo && exit 1; echo ready; exec sleep 300")
            .stdout(Stdio::piped())
            .spawn()
            .expect("run unshare");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read unshare's output");
        assert_eq!(
            line, "ready\n",
            "tracefs could not be unmounted in the namespace"
        );
        Namespace { holder }
    }

    /// `kscope ARGS` started in the namespace.
    fn kscope(&self, args: &[&str], run_dir: &Path) -> Command {
        let mut command = Command::new("nsenter");
        command
            .args(["-t", &self.holder.id().to_string(), "-m", "--"])
            .arg(env!("CARGO_BIN_EXE_kscope"))
            .args(args)
            .env("KSCOPE_RUN_DIR", run_dir)
            .env("NO_COLOR", "1");
        command
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Stream,
    Record,
    Probe,
}

/// One running kscope and what it has written to stderr so far.
struct Session {
    kind: Kind,
    child: Child,
    stderr: Arc<Mutex<String>>,
    output: Option<PathBuf>,
}

impl Session {
    fn start(namespace: &Namespace, kind: Kind, dir: &Path, index: usize) -> Session {
        let run_dir = dir.join("run");
        let output = (kind == Kind::Record).then(|| dir.join(format!("record-{index}.dat")));
        let out_text = output
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let args: Vec<&str> = match kind {
            Kind::Stream => vec!["trace", "stream", "-e", "sched:sched_switch"],
            Kind::Record => vec![
                "trace",
                "record",
                "-e",
                "sched:sched_switch",
                "-o",
                &out_text,
            ],
            Kind::Probe => vec!["probe", "-v", "-e", PROBE],
        };
        let mut child = namespace
            .kscope(&args, &run_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kscope");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap_or_else(|p| p.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
        });
        Session {
            kind,
            child,
            stderr,
            output,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Tracing: its instance records (stream, record), or its programs
    /// are attached (probe).
    fn ready(&self, tracefs: &Path) -> bool {
        match self.kind {
            Kind::Probe => self.stderr().contains("Pass 5:"),
            Kind::Stream | Kind::Record => {
                let on = tracefs.join(format!("instances/kscope-{}/tracing_on", self.pid()));
                std::fs::read_to_string(on).is_ok_and(|t| t.trim() == "1")
            }
        }
    }

    fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(self.pid() as i32).expect("a pid is positive");
        kill_process(pid, signal).expect("send the signal");
    }

    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "{:?} {} did not end within {PATIENCE:?}: {}",
                    self.kind,
                    self.pid(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ends it with `signal` and checks that it ended cleanly: by itself
    /// or by that signal, with nothing left unrestored, and for a record a
    /// trace.dat that kscope's report reads.
    fn end_cleanly(&mut self, signal: Signal) {
        self.signal(signal);
        let status = self.wait();
        let err = self.stderr();
        assert!(
            status.success() || status.signal() == Some(signal.as_raw()),
            "{:?} {} ended with {status}: {err}",
            self.kind,
            self.pid()
        );
        assert!(
            !err.contains("could not restore") && !err.contains("kscope: error"),
            "{:?} {}: {err}",
            self.kind,
            self.pid()
        );
        if let Some(output) = &self.output {
            let report = crate::kscope(&["trace", "report", "-i", &output.to_string_lossy()]);
            assert!(
                report.status.success(),
                "the record's {} does not read: {}",
                output.display(),
                crate::stderr(&report)
            );
            assert!(
                crate::stdout(&report).contains("sched_switch:"),
                "no event in {}",
                output.display()
            );
        }
    }
}

impl Drop for Session {
    /// A failed test leaves no session running (what a kill leaves, the
    /// next kscope undoes).
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// 4 streams, a record and a probe, started together and waited for
/// until all trace.
fn start_six(namespace: &Namespace, dir: &Path, tracefs: &Path) -> Vec<Session> {
    let kinds = [
        Kind::Stream,
        Kind::Record,
        Kind::Stream,
        Kind::Probe,
        Kind::Stream,
        Kind::Stream,
    ];
    let sessions: Vec<Session> = kinds
        .iter()
        .enumerate()
        .map(|(index, kind)| Session::start(namespace, *kind, dir, index))
        .collect();
    let deadline = Instant::now() + PATIENCE;
    while !sessions.iter().all(|s| s.ready(tracefs)) {
        for session in &sessions {
            assert!(
                Instant::now() < deadline,
                "{:?} {} not tracing after {PATIENCE:?}: {}",
                session.kind,
                session.pid(),
                session.stderr()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Some events for every buffer.
    std::thread::sleep(Duration::from_millis(300));
    sessions
}

/// The kscope-PID instances of `pids` in tracefs.
fn instances_of(tracefs: &Path, pids: &[u32]) -> Vec<String> {
    pids.iter()
        .map(|pid| format!("kscope-{pid}"))
        .filter(|name| tracefs.join("instances").join(name).exists())
        .collect()
}

/// The frame of these tests: root, the tracefs lock, a tracefs to look
/// at (mounted for this test thread only when absent), and every control
/// file as before at the end.
fn with_tracefs(what: &str, body: impl FnOnce(&Path)) {
    if !live(what, missing_root()) {
        return;
    }
    let _lock = TracefsLock::acquire();
    let outer = StateGuard::new();
    let fs = outer.tracefs().expect("tracefs");
    assert_tracefs_unchanged_by(what, fs.root(), || body(fs.root()));
}

#[test]
fn six_sessions_at_once_end_cleanly_in_any_order_and_survive_a_killed_one() {
    with_tracefs("six kscope sessions at once", |tracefs| {
        let namespace = Namespace::without_tracefs();
        let dir = tempfile::tempdir().expect("temp dir");

        let mut sessions = start_six(&namespace, dir.path(), tracefs);
        for session in &mut sessions {
            session.end_cleanly(Signal::INT);
        }
        let pids: Vec<u32> = sessions.iter().map(Session::pid).collect();
        assert_eq!(instances_of(tracefs, &pids), Vec::<String>::new());

        let mut sessions = start_six(&namespace, dir.path(), tracefs);
        for session in sessions.iter_mut().rev() {
            session.end_cleanly(Signal::TERM);
        }
        let pids: Vec<u32> = sessions.iter().map(Session::pid).collect();
        assert_eq!(instances_of(tracefs, &pids), Vec::<String>::new());

        // One of each kind killed while the others run; the survivors
        // (three streams) end as if nothing happened.
        let mut sessions = start_six(&namespace, dir.path(), tracefs);
        let mut killed = Vec::new();
        for kind in [Kind::Stream, Kind::Record, Kind::Probe] {
            let index = sessions
                .iter()
                .position(|s| s.kind == kind)
                .expect("one of each kind");
            let mut session = sessions.remove(index);
            session.signal(Signal::KILL);
            assert_eq!(session.wait().signal(), Some(Signal::KILL.as_raw()));
            killed.push(session.pid());
            std::thread::sleep(Duration::from_millis(200));
            assert!(sessions.iter().all(|s| s.ready(tracefs)));
        }
        for session in &mut sessions {
            session.end_cleanly(Signal::INT);
        }
        // What the killed left, the next kscope undoes.
        assert_eq!(instances_of(tracefs, &killed[..2]).len(), 2);
        let next = namespace
            .kscope(&["trace", "list", "-t"], &dir.path().join("run"))
            .output()
            .expect("run kscope");
        assert!(next.status.success(), "{}", crate::stderr(&next));
        assert_eq!(instances_of(tracefs, &killed), Vec::<String>::new());
        let mut all: Vec<u32> = sessions.iter().map(Session::pid).collect();
        all.extend(&killed);
        assert_eq!(instances_of(tracefs, &all), Vec::<String>::new());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list the temp dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".kscope-record"))
            .collect();
        assert_eq!(left, Vec::<String>::new(), "the killed record's files");
    });
}

#[test]
fn what_a_killed_session_left_is_listed_by_doctor_and_undone_by_the_next_run() {
    with_tracefs("kscope sessions killed by SIGKILL", |tracefs| {
        let namespace = Namespace::without_tracefs();
        let dir = tempfile::tempdir().expect("temp dir");
        let run_dir = dir.path().join("run");
        let mut sessions = vec![
            Session::start(&namespace, Kind::Stream, dir.path(), 0),
            Session::start(&namespace, Kind::Record, dir.path(), 1),
        ];
        let deadline = Instant::now() + PATIENCE;
        while !sessions.iter().all(|s| s.ready(tracefs)) {
            assert!(Instant::now() < deadline, "not tracing after {PATIENCE:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        for session in &mut sessions {
            session.signal(Signal::KILL);
            session.wait();
        }
        let pids: Vec<u32> = sessions.iter().map(Session::pid).collect();
        let temp_dir = |pid: u32| dir.path().join(format!(".kscope-record-{pid}"));
        // Left behind: both instances, still tracing, and the record's
        // per-CPU files.
        assert_eq!(instances_of(tracefs, &pids).len(), 2);
        assert!(temp_dir(pids[1]).exists());

        let doctor = namespace
            .kscope(&["doctor", "--json"], &run_dir)
            .output()
            .expect("run kscope doctor");
        assert!(doctor.status.success(), "{}", crate::stderr(&doctor));
        let report: serde_json::Value =
            serde_json::from_slice(&doctor.stdout).expect("doctor's JSON");
        let check = report["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["id"] == "leftovers")
            .expect("a leftovers check");
        assert_eq!(check["verdict"], "denied", "{check}");
        let summary = check["summary"].as_str().unwrap_or_default();
        assert!(summary.starts_with("2 kscope session(s) died"), "{summary}");
        for pid in &pids {
            assert!(
                summary.contains(&format!("instance kscope-{pid}")),
                "{summary}"
            );
        }
        assert!(
            summary.contains(&format!(
                "temporary directory {}",
                temp_dir(pids[1]).display()
            )),
            "{summary}"
        );
        // Doctor only looked.
        assert_eq!(instances_of(tracefs, &pids).len(), 2);
        assert!(temp_dir(pids[1]).exists());

        let next = namespace
            .kscope(&["trace", "list", "-t"], &run_dir)
            .output()
            .expect("run kscope");
        assert!(next.status.success(), "{}", crate::stderr(&next));
        let said = crate::stderr(&next);
        for pid in &pids {
            assert!(
                said.contains(&format!("undid what a kscope that died (pid {pid}) left")),
                "{said}"
            );
        }
        assert_eq!(instances_of(tracefs, &pids), Vec::<String>::new());
        assert!(!temp_dir(pids[1]).exists());
        let journals = std::fs::read_dir(&run_dir)
            .expect("the journal directory")
            .count();
        assert_eq!(journals, 0, "journals left in {}", run_dir.display());
    });
}
