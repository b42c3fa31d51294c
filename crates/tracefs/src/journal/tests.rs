use super::*;

fn root() -> PathBuf {
    PathBuf::from(DEFAULT_MOUNT)
}

fn every_kind() -> Vec<Change> {
    vec![
        Change::Instance {
            root: root(),
            name: "kscope-1234".into(),
        },
        Change::Control {
            root: root(),
            file: "instances/kscope-1234/events/sched/sched_switch/filter".into(),
            restore: Restore::Value("prev_comm == \"a b\\c\"\n".into()),
        },
        Change::Control {
            root: root(),
            file: "set_event".into(),
            restore: Restore::List(vec!["sched:sched_switch".into(), String::new()]),
        },
        Change::Control {
            root: root(),
            file: "buffer_size_kb".into(),
            restore: Restore::ExpandedSize("1408".into()),
        },
        Change::Control {
            root: root(),
            file: "trace_clock".into(),
            restore: Restore::Value(String::new()),
        },
        Change::Probe {
            root: root(),
            file: "uprobe_events".into(),
            name: "uprobes/p_1".into(),
        },
        Change::Trigger {
            root: root(),
            file: "events/sched/sched_switch/trigger".into(),
            trigger: "hist:keys=pid if comm == \"x y\"".into(),
        },
        Change::TempDir(PathBuf::from(std::ffi::OsString::from_vec(
            b"/tmp/d\xffir with space/.kscope-record-1".to_vec(),
        ))),
    ]
}

fn journal_of(changes: &[Change], settled: &[u64]) -> String {
    let mut text = format!("{HEADER}\npid 1234\n");
    for (index, change) in changes.iter().enumerate() {
        text.push_str(&change_line(index as u64 + 1, change));
    }
    for id in settled {
        text.push_str(&format!("-{id}\n"));
    }
    text
}

#[test]
fn every_kind_of_change_reads_back_as_written() {
    let changes = every_kind();
    let text = journal_of(&changes, &[]);
    assert!(text.is_ascii(), "{text}");
    assert_eq!(text.lines().count(), changes.len() + 2, "{text}");
    let recorded = parse(text.as_bytes()).unwrap();
    assert_eq!(recorded.pid, Some(1234));
    let read: Vec<Change> = recorded.pending.into_iter().map(|(_, c)| c).collect();
    assert_eq!(read, changes);
}

#[test]
fn settled_changes_and_a_cut_last_line_are_not_pending() {
    let changes = every_kind();
    let mut text = journal_of(&changes, &[2, 5]);
    text.push_str("+9 instance /sys/kernel/tracing kscope-9");
    let recorded = parse(text.as_bytes()).unwrap();
    let ids: Vec<u64> = recorded.pending.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![1, 3, 4, 6, 7, 8]);
    assert_eq!(parse(b"kscope-jour").unwrap(), Recorded::default());
    assert_eq!(parse(b"").unwrap(), Recorded::default());
}

#[test]
fn a_corrupt_journal_is_an_error_naming_the_line() {
    let good = journal_of(&every_kind()[..1], &[]);
    let cases: &[(&str, &str)] = &[
        ("kscope-journal 2\n", "unknown version"),
        ("hello\n", "not a kscope journal"),
        ("kscope-journal 1\n+x instance a b\n", "line 2: bad id"),
        ("kscope-journal 1\n+1 mount /x\n", "unknown change"),
        ("kscope-journal 1\n+1 instance /x\n", "no name"),
        ("kscope-journal 1\n+1 instance /x a b\n", "a field too many"),
        ("kscope-journal 1\n+1 tempdir /x\\q\n", "bad escape"),
        ("kscope-journal 1\n+1 tempdir /x\\x4\n", "bad \\x escape"),
        ("kscope-journal 1\n+1 instance /x \\xff\n", "not UTF-8"),
        (
            "kscope-journal 1\n+1 control /x f maybe 1\n",
            "restore kind",
        ),
        ("kscope-journal 1\npid -1\n", "bad pid"),
        ("kscope-journal 1\n?\n", "unknown line"),
        ("kscope-journal 1\n\n", "unknown line"),
    ];
    for (text, expected) in cases {
        let err = parse(text.as_bytes()).unwrap_err();
        assert!(err.contains(expected), "{text:?}: {err}");
    }
    let twice = format!("{good}{}", good.lines().nth(2).unwrap_or_default());
    let err = parse(format!("{twice}\n").as_bytes()).unwrap_err();
    assert!(err.contains("recorded twice"), "{err}");
    assert!(parse(&[0xff, b'\n']).is_err());
}

#[test]
fn the_undo_commands_quote_what_they_write() {
    let commands: Vec<String> = every_kind().iter().map(Change::undo_command).collect();
    assert_eq!(
        commands[0],
        "echo 0 > '/sys/kernel/tracing/instances/kscope-1234/tracing_on'; rmdir '/sys/kernel/tracing/instances/kscope-1234'"
    );
    assert_eq!(
        commands[2],
        ": > '/sys/kernel/tracing/set_event'; echo 'sched:sched_switch' >> '/sys/kernel/tracing/set_event'; echo '' >> '/sys/kernel/tracing/set_event'"
    );
    assert_eq!(
        commands[5],
        "echo '-:uprobes/p_1' >> '/sys/kernel/tracing/uprobe_events'"
    );
    assert_eq!(
        shell_quote("it's"),
        r"'it'\''s'",
        "a quote inside is closed, escaped and reopened"
    );
}

#[test]
fn roots_map_to_the_tracefs_in_use_only_when_they_were_tracefs() {
    let here = Path::new("/sys/kernel/debug/tracing");
    let mounts = vec![here.to_path_buf(), PathBuf::from("/mnt/t")];
    assert_eq!(
        rebase_root(Path::new(DEFAULT_MOUNT), &mounts, Some(here)),
        here
    );
    assert_eq!(rebase_root(Path::new("/mnt/t"), &mounts, Some(here)), here);
    assert_eq!(
        rebase_root(Path::new("/tmp/fake"), &mounts, Some(here)),
        Path::new("/tmp/fake")
    );
    assert_eq!(
        rebase_root(Path::new(DEFAULT_MOUNT), &mounts, None),
        Path::new(DEFAULT_MOUNT)
    );
}

/// A fake tracefs tree: an instance with a filter and a trigger, a
/// changed top-level file, a uprobe_events file, and a temp dir.
fn fake_tree(base: &Path) -> (PathBuf, Vec<Change>) {
    let root = base.join("tracing");
    let instance = root.join("instances/kscope-77");
    std::fs::create_dir_all(instance.join("events/sched/sched_switch")).unwrap();
    std::fs::write(instance.join("tracing_on"), "1\n").unwrap();
    std::fs::write(root.join("trace_clock"), "global\n").unwrap();
    std::fs::write(root.join("uprobe_events"), "").unwrap();
    let temp = base.join(".kscope-record-77");
    std::fs::create_dir_all(&temp).unwrap();
    std::fs::write(temp.join("cpu0"), "data").unwrap();
    let changes = vec![
        Change::Instance {
            root: root.clone(),
            name: "kscope-77".into(),
        },
        Change::Control {
            root: root.clone(),
            file: "instances/kscope-77/tracing_on".into(),
            restore: Restore::Value("1".into()),
        },
        Change::Control {
            root: root.clone(),
            file: "trace_clock".into(),
            restore: Restore::Value("local".into()),
        },
        Change::Probe {
            root: root.clone(),
            file: "uprobe_events".into(),
            name: "uprobes/p_1".into(),
        },
        Change::TempDir(temp),
    ];
    (root, changes)
}

#[test]
fn a_dead_sessions_journal_is_undone_newest_first_and_deleted() {
    let base = tempfile::tempdir().unwrap();
    let run = base.path().join("run");
    kscope_outfile::PrivateDir::open_or_create(&run).unwrap();
    let (root, changes) = fake_tree(base.path());
    let journal = run.join("1-0-0.journal");
    std::fs::write(&journal, journal_of(&changes, &[])).unwrap();
    // Another journal whose changes were all undone: deleted silently.
    std::fs::write(
        run.join("2-0-0.journal"),
        journal_of(&changes, &[1, 2, 3, 4, 5]),
    )
    .unwrap();

    let found = find_leftovers_in(&run, None).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].pid, Some(1234));
    assert_eq!(
        found[0].changes[0],
        format!(
            "temporary directory {}",
            base.path().join(".kscope-record-77").display()
        )
    );
    assert_eq!(found[0].changes[3], "instance kscope-77");
    assert_eq!(found[0].changes[2], "trace_clock (was \"local\")");
    assert!(found[0].commands.last().unwrap().starts_with("rm '"));
    assert!(journal.exists(), "listing changes nothing");

    // The instance is a plain directory here, with files in it: its
    // rmdir fails, so the journal stays and names the command.
    let outcomes = undo_leftovers_in(&run, None).unwrap();
    let [LeftoverOutcome::Failed(leftover, err)] = outcomes.as_slice() else {
        panic!("{outcomes:?}");
    };
    assert!(err.to_string().contains("kscope-77"), "{err}");
    assert_eq!(leftover.commands.len(), 6, "{:?}", leftover.commands);
    assert!(leftover.commands[4].contains("rmdir"));
    assert!(journal.exists());
    assert_eq!(
        std::fs::read_to_string(root.join("trace_clock")).unwrap(),
        "local\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("uprobe_events")).unwrap(),
        "-:uprobes/p_1\n"
    );
    assert!(!base.path().join(".kscope-record-77").exists());
    let instance = root.join("instances/kscope-77");
    assert_eq!(
        std::fs::read_to_string(instance.join("tracing_on")).unwrap(),
        "0\n"
    );

    // Once it can be removed, the next run finishes the job.
    std::fs::remove_dir_all(instance.join("events")).unwrap();
    std::fs::remove_file(instance.join("tracing_on")).unwrap();
    let outcomes = undo_leftovers_in(&run, None).unwrap();
    assert!(
        matches!(outcomes.as_slice(), [LeftoverOutcome::Undone(_)]),
        "{outcomes:?}"
    );
    assert!(!instance.exists());
    assert!(!journal.exists());
    assert!(std::fs::read_dir(&run).unwrap().next().is_none());
}

#[test]
fn a_locked_journal_is_alive_and_a_corrupt_one_is_reported_and_kept() {
    let base = tempfile::tempdir().unwrap();
    let run = base.path().join("run");
    let mut live = Writer::create(&run).unwrap();
    live.append(&change_line(1, &Change::TempDir(base.path().join("x"))))
        .unwrap();
    let corrupt = run.join("9-0-0.journal");
    std::fs::write(&corrupt, "kscope-journal 1\n+1 mount /\n").unwrap();
    let found = find_leftovers_in(&run, None).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].journal, corrupt);
    assert!(
        found[0]
            .corrupt
            .as_deref()
            .unwrap()
            .contains("unknown change")
    );
    let outcomes = undo_leftovers_in(&run, None).unwrap();
    assert!(
        matches!(
            &outcomes[..],
            [LeftoverOutcome::Failed(_, Error::CorruptJournal { .. })]
        ),
        "{outcomes:?}"
    );
    assert!(corrupt.exists() && live.path.exists());
    // Once its owner is gone (the file closed), it is a leftover.
    let path = live.path.clone();
    drop(live);
    let found = find_leftovers_in(&run, None).unwrap();
    assert!(found.iter().any(|l| l.journal == path), "{found:?}");
}

#[test]
fn a_journal_name_that_is_a_link_is_skipped() {
    let base = tempfile::tempdir().unwrap();
    let run = base.path().join("run");
    kscope_outfile::PrivateDir::open_or_create(&run).unwrap();
    let elsewhere = base.path().join("elsewhere");
    std::fs::write(&elsewhere, "kscope-journal 1\n+1 tempdir /nonexistent\n").unwrap();
    std::os::unix::fs::symlink(&elsewhere, run.join("1-0-0.journal")).unwrap();
    assert!(find_leftovers_in(&run, None).unwrap().is_empty());
}
