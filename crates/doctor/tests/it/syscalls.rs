//! The verdicts that hang on one syscall's or one file's answer, fed the
//! answers a kernel gives elsewhere (EPERM, EACCES, ENOENT, EINVAL, ...)
//! on top of the facts recorded here as root: the fake-syscall seam of
//! doctor is its facts.

use std::path::PathBuf;

use kscope_doctor::Verdict::{Available, Denied, Missing, Unknown};
use kscope_doctor::{
    BtfHead, ControlFile, DebugCandidate, Facts, Failure, LeftoverJournal, Securityfs,
    TracefsFacts, TracefsLook,
};

use crate::{judged, recorded_facts};

/// The facts recorded here as root, changed by `change`.
fn root_facts_with(change: impl FnOnce(&mut Facts)) -> Facts {
    let mut facts = recorded_facts("host-root");
    change(&mut facts);
    facts
}

/// What was seen in tracefs, in facts recorded where it was readable.
fn look(facts: &mut Facts) -> &mut TracefsLook {
    match &mut facts.tracefs {
        TracefsFacts::Usable(look) => look,
        other => panic!("tracefs was not readable in the recording: {other:?}"),
    }
}

/// A failure that is no kernel errno, as the bpf crate words its errors.
fn failure(message: &str, errno: Option<i32>) -> Failure {
    Failure {
        errno,
        message: message.to_string(),
    }
}

#[test]
fn bpf_prog_load_refused_with_eperm_or_eacces_is_denied() {
    for (errno, name) in [(libc::EPERM, "EPERM"), (libc::EACCES, "EACCES")] {
        let facts = root_facts_with(|f| f.bpf_load = Err(Failure::errno(errno)));
        let bpf = judged(&facts, "bpf");
        assert_eq!(bpf.verdict, Denied, "{name}");
        assert_eq!(bpf.summary, "bpf(2) refuses to load programs");
        assert!(bpf.evidence[0].starts_with(&format!("BPF_PROG_LOAD: {name} (")));
        assert_eq!(
            bpf.evidence[1],
            "bpf_jit_enable=1, unprivileged_bpf_disabled=2"
        );
        assert!(bpf.needs.as_deref().is_some_and(|n| n.contains("CAP_BPF")));
    }
}

#[test]
fn bpf_prog_load_failing_otherwise_is_missing_and_quotes_the_error() {
    for errno in [libc::EINVAL, libc::ENOSYS] {
        let message = "the kernel refused to load BPF program \"kscope_doctor\": no";
        let facts = root_facts_with(|f| f.bpf_load = Err(failure(message, Some(errno))));
        let bpf = judged(&facts, "bpf");
        assert_eq!(bpf.verdict, Missing, "errno {errno}");
        assert_eq!(
            bpf.evidence,
            [message, "CONFIG_BPF_SYSCALL=y (/proc/config.gz)"]
        );
        assert!(
            bpf.needs
                .as_deref()
                .is_some_and(|n| n.contains("CONFIG_BPF_SYSCALL"))
        );
    }
}

#[test]
fn a_refused_software_counter_is_denied_and_a_missing_one_is_missing() {
    let facts = root_facts_with(|f| f.perf_open = Err(Failure::errno(libc::EACCES)));
    let perf = judged(&facts, "perf_events");
    assert_eq!(perf.verdict, Denied);
    assert_eq!(
        perf.evidence[0],
        "perf_event_open: EACCES (permission denied)"
    );
    assert_eq!(perf.evidence[1], "perf_event_paranoid=2");

    let message = "perf_event_open of software event TaskClock failed: No such file or directory (os error 2)";
    let facts = root_facts_with(|f| f.perf_open = Err(failure(message, Some(libc::ENOENT))));
    let perf = judged(&facts, "perf_events");
    assert_eq!(perf.verdict, Missing);
    assert_eq!(perf.evidence, [message]);
    assert_eq!(perf.needs.as_deref(), Some("CONFIG_PERF_EVENTS=y"));
}

#[test]
fn set_ftrace_filter_tells_refused_from_missing_and_switched_off() {
    let facts = root_facts_with(|f| look(f).set_ftrace_filter = Err(Failure::errno(libc::ENOENT)));
    let tracer = judged(&facts, "function_tracer");
    assert_eq!(tracer.verdict, Missing);
    assert_eq!(tracer.needs.as_deref(), Some("CONFIG_DYNAMIC_FTRACE=y"));
    assert!(tracer.evidence[1].ends_with("set_ftrace_filter: ENOENT (entity not found)"));

    let facts = root_facts_with(|f| {
        look(f).set_ftrace_filter = Ok(());
        f.settings.ftrace_enabled = Some("0".into());
    });
    let tracer = judged(&facts, "function_tracer");
    assert_eq!(tracer.verdict, Denied);
    assert_eq!(
        tracer.summary,
        "the function tracer is switched off (ftrace_enabled is 0)"
    );

    let facts = root_facts_with(|f| look(f).set_ftrace_filter = Ok(()));
    let tracer = judged(&facts, "function_tracer");
    assert_eq!(tracer.verdict, Available);
    assert_eq!(tracer.summary, "function tracers can be used");

    let facts = root_facts_with(|f| look(f).available_tracers = "blk nop".into());
    let tracer = judged(&facts, "function_tracer");
    assert_eq!(tracer.verdict, Missing);
    assert_eq!(tracer.summary, "the function tracer is not built in");
}

#[test]
fn probe_definition_files_that_refuse_writes_are_denied() {
    let facts = root_facts_with(|f| {
        look(f).uprobe_events = ControlFile::Refused(Failure::errno(libc::EACCES));
        look(f).kprobe_events = ControlFile::Refused(Failure::errno(libc::EPERM));
    });
    let report = facts.judge();
    let uprobes = crate::check(&report, "uprobes");
    assert_eq!(uprobes.verdict, Denied);
    assert_eq!(
        uprobes.evidence,
        ["opening /sys/kernel/tracing/uprobe_events for writing: EACCES (permission denied)"]
    );
    let kprobes = crate::check(&report, "kprobes");
    assert_eq!(kprobes.verdict, Denied);
    assert_eq!(kprobes.summary, "kprobe_events refuses writes");
}

#[test]
fn kprobes_without_kprobe_events_but_with_the_pmu_work_through_perf() {
    let facts = root_facts_with(|f| f.pmus.kprobe = true);
    let kprobes = judged(&facts, "kprobes");
    assert_eq!(kprobes.verdict, Available);
    assert_eq!(kprobes.summary, "kprobes through perf (BPF) only");
    assert_eq!(
        kprobes.evidence,
        [
            "/sys/kernel/tracing/kprobe_events does not exist",
            "perf PMU /sys/bus/event_source/devices/kprobe: present"
        ]
    );
}

#[test]
fn an_absent_tracefs_is_denied_where_the_kernel_has_it_and_missing_where_not() {
    for (known, verdict) in [(true, Denied), (false, Missing)] {
        let facts = root_facts_with(|f| {
            f.tracefs = TracefsFacts::Absent {
                error: "tracefs is not mounted".into(),
                known_filesystem: known,
            }
        });
        let report = facts.judge();
        assert_eq!(crate::check(&report, "tracefs").verdict, verdict);
        assert_eq!(
            crate::check(&report, "tracefs").summary,
            "tracefs is not mounted"
        );
        assert_eq!(crate::check(&report, "tracepoints").verdict, Unknown);
        assert!(!report.mounted_tracefs);
    }
}

#[test]
fn kcore_and_btf_tell_denied_from_missing_by_errno() {
    let facts = root_facts_with(|f| {
        f.kcore = Err(Failure::errno(libc::EPERM));
        f.btf = Err(Failure::errno(libc::EACCES));
    });
    let report = facts.judge();
    assert_eq!(crate::check(&report, "kcore").verdict, Denied);
    assert_eq!(
        crate::check(&report, "kcore").summary,
        "cannot read /proc/kcore: EPERM (permission denied)"
    );
    assert_eq!(crate::check(&report, "btf").verdict, Denied);

    let facts = root_facts_with(|f| {
        f.kcore = Ok(*b"\x7fELF");
        f.btf = Err(Failure::errno(libc::ENOENT));
    });
    let report = facts.judge();
    assert_eq!(crate::check(&report, "kcore").verdict, Available);
    assert_eq!(crate::check(&report, "btf").verdict, Missing);

    let facts = root_facts_with(|f| {
        f.btf = Ok(BtfHead {
            size: 10,
            magic: [0x7f, b'E'],
        })
    });
    let btf = judged(&facts, "btf");
    assert_eq!(btf.verdict, Unknown);
    assert_eq!(btf.evidence, ["first bytes 7f 45"]);
}

#[test]
fn lockdown_levels_and_an_unreadable_lockdown_file() {
    let facts = root_facts_with(|f| f.lockdown = Ok("none integrity [confidentiality]".into()));
    let lockdown = judged(&facts, "lockdown");
    assert_eq!(lockdown.verdict, Denied);
    assert!(lockdown.summary.starts_with("lockdown=confidentiality:"));

    let facts = root_facts_with(|f| {
        f.securityfs = None;
        f.lockdown = Err(Failure::errno(libc::ENOENT));
        f.kernel_parameters = vec!["lockdown=integrity".into()];
    });
    let lockdown = judged(&facts, "lockdown");
    assert_eq!(lockdown.verdict, Unknown);
    assert_eq!(
        lockdown.evidence,
        [
            "/sys/kernel/security/lockdown does not exist",
            "CONFIG_SECURITY_LOCKDOWN_LSM=y (/proc/config.gz)",
            "kernel command line has lockdown=integrity"
        ]
    );

    let facts = root_facts_with(|f| {
        f.securityfs = Some(Securityfs {
            path: "/elsewhere".into(),
            mounted_by_us: false,
        });
        f.lockdown = Ok("[none] integrity confidentiality".into());
    });
    let lockdown = judged(&facts, "lockdown");
    assert_eq!(lockdown.verdict, Available);
    assert_eq!(
        lockdown.evidence,
        ["/elsewhere/lockdown: [none] integrity confidentiality"]
    );
}

#[test]
fn a_pipe_handler_with_rlimit_core_1_is_denied() {
    let facts = root_facts_with(|f| {
        f.core_pattern = "|/usr/lib/systemd/systemd-coredump %P %u %g %s %t".into();
        if let Some(limit) = &mut f.core_limit {
            limit.soft = Some(1);
        }
    });
    let core = judged(&facts, "core_dumps");
    assert_eq!(core.verdict, Denied);
    assert_eq!(
        core.summary,
        "RLIMIT_CORE is 1, which turns off the core handler"
    );
}

#[test]
fn a_reserved_and_loaded_crash_kernel_is_available() {
    let facts = root_facts_with(|f| {
        f.settings.kexec_crash_size = Some((256u64 << 20).to_string());
        f.settings.kexec_crash_loaded = Some("1".into());
        f.kernel_parameters = vec!["crashkernel=256M".into()];
    });
    let kdump = judged(&facts, "kdump");
    assert_eq!(kdump.verdict, Available);
    assert_eq!(
        kdump.summary,
        "a crash kernel is loaded in 256 MiB reserved memory"
    );
    assert_eq!(
        kdump.evidence[2],
        "kernel command line has crashkernel=256M"
    );
}

#[test]
fn a_dead_sessions_journal_is_listed_with_its_undo_commands() {
    let facts = root_facts_with(|f| {
        f.leftovers.found = Ok(vec![LeftoverJournal {
            journal: PathBuf::from("/run/kscope/4242-1-0.journal"),
            pid: Some(4242),
            changes: vec!["instance kscope-4242".into()],
            commands: vec![
                "rmdir '/sys/kernel/tracing/instances/kscope-4242'".into(),
                "rm '/run/kscope/4242-1-0.journal'".into(),
            ],
            corrupt: None,
        }])
    });
    let leftovers = judged(&facts, "leftovers");
    assert_eq!(leftovers.verdict, Denied);
    assert_eq!(
        leftovers.summary,
        "1 kscope session(s) died without cleaning up: instance kscope-4242"
    );
    assert_eq!(
        leftovers.evidence,
        [
            "/run/kscope/4242-1-0.journal (pid 4242): instance kscope-4242; by hand: \
          rmdir '/sys/kernel/tracing/instances/kscope-4242'; rm '/run/kscope/4242-1-0.journal'"
        ]
    );
}

#[test]
fn a_vmlinux_with_dwarf_and_the_running_build_id_is_available() {
    let facts = root_facts_with(|f| {
        let id = f.kernel.build_id.clone();
        f.vmlinux = vec![
            DebugCandidate {
                path: "/boot/vmlinux-old".into(),
                build_id: Some("00ff".into()),
                has_dwarf: true,
            },
            DebugCandidate {
                path: "/usr/lib/debug/boot/vmlinux".into(),
                build_id: id,
                has_dwarf: true,
            },
        ];
    });
    let debuginfo = judged(&facts, "debuginfo");
    assert_eq!(debuginfo.verdict, Available);
    assert_eq!(
        debuginfo.summary,
        "/usr/lib/debug/boot/vmlinux matches the running kernel"
    );
    assert!(debuginfo.evidence[1].contains("00ff differs from the running kernel's"));
}
