//! A [`Recorder`] dropped before [`Recorder::finish`] (what every error
//! between the start of a recording and its end does), or one that fails
//! to start half way, stops its threads: none is left running, and none
//! holds a file of the instance open, so the guard removes the instance
//! and tracefs is as it was.

use std::time::{Duration, Instant};

use kscope_ftrace::{EventSelection, Recorder, Session, SessionConfig};
use kscope_outfile::PrivateDir;
use kscope_testkit::with_unchanged_tracefs;
use kscope_tracefs::StateGuard;

/// This process's threads that record a CPU (`kscope-cpuN`).
fn recording_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("list /proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.starts_with("kscope-cpu"))
        .count()
}

/// Runs `body` on a session of `sched:sched_switch` (woken as a recording
/// wants) and a private directory for its files, then drops the session
/// and expects the guard to remove the instance: it cannot while a thread
/// holds one of the instance's files open.
fn with_session(what: &str, body: impl FnOnce(&Session, &PrivateDir)) {
    with_unchanged_tracefs(what, |fs| {
        let parent = tempfile::tempdir().expect("a temp dir");
        let dir = PrivateDir::create_temporary(parent.path(), ".kscope-record-")
            .expect("a private directory");
        let guard = StateGuard::new();
        let config = SessionConfig {
            events: vec![EventSelection::new("sched", "sched_switch")],
            wake_percent: 10,
            ..SessionConfig::default()
        };
        let session = Session::start(&guard, fs, &config).expect("start a session");
        body(&session, &dir);
        drop(session);
        guard
            .restore()
            .expect("the instance is removed: no thread holds its files open");
    });
}

#[test]
fn a_recorder_dropped_before_it_finishes_stops_its_threads_and_the_instance_goes() {
    with_session("a recorder dropped before it finishes", |session, dir| {
        let recorder =
            Recorder::start(session, dir, session.subbuf_size()).expect("start recording");
        let cpus = recorder.cpus().len();
        assert!(cpus > 0);
        // A thread takes its name once it runs.
        let deadline = Instant::now() + Duration::from_secs(5);
        while recording_threads() < cpus && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(recording_threads(), cpus);
        drop(recorder);
        assert_eq!(recording_threads(), 0, "recording threads still run");
    });
}

#[test]
fn a_recorder_that_fails_to_start_half_way_stops_the_threads_it_started() {
    with_session("a recorder that fails to start", |session, dir| {
        // The last CPU's file is taken: its thread never starts, and
        // every CPU's before it has one running by then.
        let last = session.cpu_fds().map(|(cpu, _)| cpu).max().expect("a CPU");
        dir.create_file(&format!("cpu{last}"))
            .expect("take the last CPU's name");
        let error = Recorder::start(session, dir, session.subbuf_size())
            .err()
            .expect("the taken name is refused");
        assert!(error.to_string().contains(&format!("cpu{last}")), "{error}");
        // A thread takes its name once it runs: one left running has had
        // time to by then.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(recording_threads(), 0, "recording threads still run");
    });
}
