//! The guard undoes every kind of change it records, and refuses what it
//! could not undo.

use std::path::Path;

use kscope_tracefs::{Error, ProbeFile, StateGuard, control};

use crate::with_unchanged_tracefs;

/// Creating an instance records the instance, and also the top-level
/// buffer's expanded size while that buffer is unexpanded.
fn records_per_instance(fs: &kscope_tracefs::Tracefs) -> usize {
    let top = fs.top().read("buffer_size_kb").unwrap_or_default();
    1 + usize::from(control::unexpanded_size(&top).is_some())
}

#[test]
fn every_kind_of_change_is_undone() {
    with_unchanged_tracefs("StateGuard restore", |fs| {
        let guard = StateGuard::new();
        let mine = guard.private_instance(fs).expect("instance");
        assert_eq!(
            mine.name(),
            Some(format!("kscope-{}", std::process::id()).as_str())
        );
        guard.set_buffer_size_kb(&mine, 256).expect("buffer size");
        guard.set_tracing_on(&mine, false).expect("tracing_on");
        guard.set(&mine, "trace_clock", "mono").expect("clock");
        guard
            .enable_event(&mine, "sched", "sched_switch")
            .expect("enable");
        guard
            .set_filter(&mine, "sched", "sched_switch", "prev_pid != 0")
            .expect("filter");
        guard
            .add_trigger(&mine, "sched", "sched_switch", "traceoff")
            .expect("trigger");

        let top = fs.top();
        guard.set_tracing_on(&top, false).expect("top tracing_on");
        guard.set(&top, "trace_clock", "global").expect("top clock");
        guard
            .set_filter(&top, "sched", "sched_wakeup", "pid == 1")
            .expect("top filter");
        guard
            .set(&top, "set_event_pid", &std::process::id().to_string())
            .expect("event pid");
        let probe = guard
            .add_probe(
                fs,
                ProbeFile::Uprobe,
                "p:kscope_test/true_entry /bin/true:0x1000",
            )
            .expect("uprobe");
        assert_eq!(probe, "kscope_test/true_entry");

        // The changes are real before the restore.
        assert_eq!(top.read("tracing_on").unwrap().trim(), "0");
        assert!(top.read("trace_clock").unwrap().contains("[global]"));
        assert_eq!(
            top.read("set_event_pid").unwrap().trim(),
            std::process::id().to_string()
        );
        assert!(
            control::read(&fs.uprobe_events())
                .unwrap()
                .contains("kscope_test/true_entry")
        );
        assert!(
            mine.read("events/sched/sched_switch/trigger")
                .unwrap()
                .contains("traceoff")
        );
        // The kernel rounds up to whole sub-buffers.
        let size: u64 = mine.read("buffer_size_kb").unwrap().trim().parse().unwrap();
        assert!((256..300).contains(&size), "buffer_size_kb {size}");
        assert!(fs.instance(mine.name().unwrap()).is_some());
        assert_eq!(guard.pending(), 11 + records_per_instance(fs));

        guard.restore().expect("restore");
        assert!(fs.instance(mine.name().unwrap()).is_none());
    });
}

#[test]
fn a_guard_restores_when_dropped() {
    with_unchanged_tracefs("StateGuard drop", |fs| {
        let guard = StateGuard::new();
        let top = fs.top();
        guard.set_tracing_on(&top, false).expect("tracing_on");
        let mine = guard.private_instance(fs).expect("instance");
        guard
            .enable_event(&mine, "syscalls", "sys_enter_openat")
            .expect("enable");
        drop(guard);
        assert_eq!(top.read("tracing_on").unwrap().trim(), "1");
    });
}

#[test]
fn a_refused_probe_carries_the_kernels_error_log_entry() {
    with_unchanged_tracefs("error_log capture", |fs| {
        let error_log = fs.top().error_log();
        let log_before = control::read(&error_log).expect("error_log");
        let guard = StateGuard::new();
        let err = guard
            .add_probe(
                fs,
                ProbeFile::Uprobe,
                "p:kscope_test/bad /nonexistent/kscope:0x10",
            )
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Write { .. }), "{text}");
        assert!(text.contains("uprobe_events"), "{text}");
        assert!(text.contains("kernel error_log:"), "{text}");
        assert!(text.contains("/nonexistent/kscope"), "{text}");
        assert_eq!(guard.pending(), 0);
        // The kernel's log is append-only; put back what it held when it
        // was empty, so the comparison holds.
        if log_before.is_empty() {
            control::write(&error_log, "", control::WriteMode::Replace, None).expect("clear");
        }
    });
}

#[test]
fn a_refused_filter_names_the_file_and_leaves_nothing_behind() {
    with_unchanged_tracefs("refused filter", |fs| {
        let guard = StateGuard::new();
        let mine = guard.private_instance(fs).expect("instance");
        let err = guard
            .set_filter(&mine, "sched", "sched_switch", "no_such_field == 1")
            .unwrap_err();
        assert!(
            err.to_string().contains("events/sched/sched_switch/filter"),
            "{err}"
        );
        assert_eq!(
            guard.pending(),
            records_per_instance(fs),
            "only the instance is recorded"
        );
        let mine_dir = mine.dir().to_path_buf();
        guard.restore().expect("restore");
        assert!(!Path::new(&mine_dir).exists());
    });
}
