//! trace.dat interoperability with trace-cmd, both ways, judged by
//! trace-cmd itself: `kscope trace report` prints what `trace-cmd report`
//! prints for files trace-cmd wrote (tests/data of kscope-tracedat), and
//! for files kscope wrote (versions 6 and 7, every compression), which
//! trace-cmd must read. A line may differ only for an event that
//! docs/KNOWN-DIFFERENCES.md names in its section on trace-cmd report.

use std::path::{Path, PathBuf};
use std::process::Command;

use kscope_testkit::with_unchanged_tracefs;

/// Event names in backticks in the KNOWN-DIFFERENCES section on reports.
fn documented_events() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/KNOWN-DIFFERENCES.md"
    ))
    .expect("read KNOWN-DIFFERENCES.md");
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("`kscope trace report` and `trace-cmd report`"))
        .expect("a section on trace-cmd report");
    section
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The event name of a report line (`...: NAME: text`), if it has one.
fn event_of(line: &str) -> Option<&str> {
    let after_time = line.split_once("]").map(|(_, r)| r)?;
    let rest = after_time.split_once(": ")?.1;
    rest.split_once(':').map(|(name, _)| name.trim())
}

fn trace_cmd_available() -> bool {
    let found = Command::new("trace-cmd").arg("--version").output().is_ok();
    kscope_testkit::live(
        "trace-cmd report as the oracle",
        (!found).then(|| "trace-cmd is not installed".to_string()),
    )
}

/// The compressions this trace-cmd can read (`trace-cmd list -c`):
/// Debian's is built with zstd only.
fn trace_cmd_compressions() -> Vec<String> {
    let out = Command::new("trace-cmd")
        .args(["list", "-c"])
        .output()
        .expect("trace-cmd list -c");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .flat_map(|l| l.split(','))
        .filter_map(|w| w.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Compares both reports of `file`; returns how many lines matched.
fn compare(file: &Path) -> usize {
    compare_with(file, file)
}

/// Compares kscope's report of `file` with trace-cmd's of `oracle` (the
/// same file, or the same data in a form this trace-cmd reads); returns
/// how many lines matched.
fn compare_with(file: &Path, oracle: &Path) -> usize {
    let theirs = Command::new("trace-cmd")
        .args(["report", "-i"])
        .arg(oracle)
        .output()
        .expect("run trace-cmd report");
    assert!(
        theirs.status.success(),
        "trace-cmd report -i {}: {}",
        oracle.display(),
        String::from_utf8_lossy(&theirs.stderr)
    );
    let ours = crate::kscope(&["trace", "report", "-i", file.to_str().expect("UTF-8 path")]);
    assert!(
        ours.status.success(),
        "kscope trace report -i {}: {}",
        file.display(),
        crate::stderr(&ours)
    );
    let theirs = String::from_utf8_lossy(&theirs.stdout).into_owned();
    let ours = crate::stdout(&ours);
    let (theirs, ours): (Vec<&str>, Vec<&str>) = (theirs.lines().collect(), ours.lines().collect());
    assert_eq!(
        theirs.len(),
        ours.len(),
        "{}: trace-cmd printed {} lines, kscope {}",
        file.display(),
        theirs.len(),
        ours.len()
    );
    let allowed = documented_events();
    let mut same = 0;
    let mut undocumented = Vec::new();
    for (t, o) in theirs.iter().zip(&ours) {
        if t == o {
            same += 1;
            continue;
        }
        match event_of(t) {
            Some(name) if allowed.iter().any(|a| a == name) => {}
            _ => undocumented.push(format!("trace-cmd: {t}\nkscope:    {o}")),
        }
    }
    assert!(
        undocumented.is_empty(),
        "{}: {} lines differ for events KNOWN-DIFFERENCES.md does not name:\n{}",
        file.display(),
        undocumented.len(),
        undocumented
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    same
}

fn data_files() -> Vec<PathBuf> {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tracedat/tests/data"
    ));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("tracedat test data")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "dat"))
        .collect();
    files.sort();
    files
}

#[test]
fn files_trace_cmd_wrote_are_reported_as_trace_cmd_reports_them() {
    if !trace_cmd_available() {
        return;
    }
    let files = data_files();
    assert!(files.len() >= 4, "{files:?}");
    let zlib = trace_cmd_compressions().iter().any(|c| c == "zlib");
    for file in files {
        // v7-zlib.dat holds the data of v7-none.dat (both converted from
        // extract.dat); a trace-cmd without zlib reports the latter.
        let oracle = match file.file_name().and_then(|n| n.to_str()) {
            Some("v7-zlib.dat") if !zlib => file.with_file_name("v7-none.dat"),
            _ => file.clone(),
        };
        let same = compare_with(&file, &oracle);
        assert!(same > 10, "{}: only {same} identical lines", file.display());
    }
}

#[test]
fn files_kscope_writes_are_read_by_trace_cmd() {
    if !trace_cmd_available() {
        return;
    }
    with_unchanged_tracefs("kscope trace record for trace-cmd", |_| {
        // Removed when dropped, a failing assertion included.
        let dir_holder = tempfile::Builder::new()
            .prefix("kscope-interop-")
            .tempdir()
            .expect("a temp dir");
        let dir = dir_holder.path().to_path_buf();
        let readable = trace_cmd_compressions();
        for (version, compression) in [("6", "none"), ("7", "none"), ("7", "zlib"), ("7", "zstd")] {
            let path = dir.join(format!("v{version}-{compression}.dat"));
            let output = crate::kscope(&[
                "trace",
                "record",
                "-e",
                "sched",
                "-e",
                "syscalls:sys_enter_openat",
                "-e",
                "syscalls:sys_exit_openat",
                "-o",
                path.to_str().expect("UTF-8"),
                "--file-version",
                version,
                "--compression",
                compression,
                "--",
                "cat",
                "/etc/hostname",
            ]);
            assert!(
                output.status.success(),
                "record v{version} {compression}: {}",
                crate::stderr(&output)
            );
            let same = if compression != "none" && !readable.iter().any(|c| c == compression) {
                // This trace-cmd cannot read it: kscope's report of it
                // must equal trace-cmd's of the same file converted (by
                // kscope) to an uncompressed one.
                let plain = dir.join(format!("v{version}-{compression}-as-none.dat"));
                let converted = crate::kscope(&[
                    "trace",
                    "convert",
                    "-i",
                    path.to_str().expect("UTF-8"),
                    "-o",
                    plain.to_str().expect("UTF-8"),
                    "--file-version",
                    "7",
                ]);
                assert!(converted.status.success(), "{}", crate::stderr(&converted));
                compare_with(&path, &plain)
            } else {
                compare(&path)
            };
            assert!(same > 10, "{}: only {same} identical lines", path.display());
            if version == "6" {
                // Raw fields, as libtraceevent prints them, for these events.
                let theirs = Command::new("trace-cmd")
                    .args(["report", "-R", "-i"])
                    .arg(&path)
                    .output()
                    .expect("trace-cmd report -R");
                let ours =
                    crate::kscope(&["trace", "report", "-R", "-i", path.to_str().expect("UTF-8")]);
                assert_eq!(
                    crate::stdout(&ours),
                    String::from_utf8_lossy(&theirs.stdout),
                    "-R"
                );
            }
        }
    });
}

#[test]
fn extract_takes_an_instances_buffer_and_changes_nothing() {
    if !trace_cmd_available() {
        return;
    }
    with_unchanged_tracefs("kscope trace extract", |fs| {
        let guard = kscope_tracefs::StateGuard::new();
        let instance = guard
            .create_instance(fs, "kscope-extract-test")
            .expect("an instance");
        guard
            .enable_event(&instance, "sched", "sched_switch")
            .expect("enable sched_switch");
        std::thread::sleep(std::time::Duration::from_millis(200));
        guard.set_tracing_on(&instance, false).expect("tracing off");
        let settings = |i: &kscope_tracefs::Instance| {
            [
                "tracing_on",
                "buffer_size_kb",
                "trace_clock",
                "events/sched/sched_switch/enable",
            ]
            .map(|f| i.read(f).unwrap_or_default())
        };
        let before = settings(&instance);
        // Removed when dropped, a failing assertion included.
        let dir_holder = tempfile::Builder::new()
            .prefix("kscope-extract-")
            .tempdir()
            .expect("a temp dir");
        let dir = dir_holder.path().to_path_buf();
        let path = dir.join("extract.dat");
        let output = crate::kscope(&[
            "trace",
            "extract",
            "-B",
            "kscope-extract-test",
            "-o",
            path.to_str().expect("UTF-8"),
        ]);
        assert!(output.status.success(), "{}", crate::stderr(&output));
        assert_eq!(
            settings(&instance),
            before,
            "extract changed the instance's settings"
        );
        let same = compare(&path);
        assert!(same > 3, "only {same} identical lines");
        guard.restore().expect("restore");
    });
}

#[test]
fn stat_prints_trace_cmds_statistics_then_the_event_counts() {
    if !trace_cmd_available() {
        return;
    }
    for file in data_files() {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "v7-zlib.dat" {
            // This trace-cmd has no zlib.
            continue;
        }
        let theirs = Command::new("trace-cmd")
            .args(["report", "--stat", "-i"])
            .arg(&file)
            .output()
            .expect("trace-cmd report --stat");
        let ours = crate::kscope(&[
            "trace",
            "report",
            "--stat",
            "-i",
            file.to_str().expect("UTF-8"),
        ]);
        assert!(ours.status.success(), "{}", crate::stderr(&ours));
        let (theirs, ours) = (
            String::from_utf8_lossy(&theirs.stdout),
            crate::stdout(&ours),
        );
        assert!(
            ours.starts_with(theirs.as_ref()),
            "{name}:\ntrace-cmd:\n{theirs}\nkscope:\n{ours}"
        );
        let counts = &ours[theirs.len()..];
        assert!(
            counts.contains("\nEvents in the file:\n"),
            "{name}: {counts}"
        );
        assert!(counts.contains("  total "), "{name}: {counts}");
    }
}

#[test]
fn json_gives_one_object_per_record_with_the_text_trace_cmd_prints() {
    let file = data_files()
        .into_iter()
        .find(|f| f.ends_with("v6.dat"))
        .expect("v6.dat");
    let path = file.to_str().expect("UTF-8");
    let text = crate::stdout(&crate::kscope(&["trace", "report", "-i", path]));
    let json = crate::kscope(&["trace", "report", "--json", "-i", path]);
    assert!(json.status.success(), "{}", crate::stderr(&json));
    let objects: Vec<serde_json::Value> = crate::stdout(&json)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    // The text report has the cpus= line more.
    assert_eq!(objects.len() + 1, text.lines().count());
    for (object, line) in objects.iter().zip(text.lines().skip(1)) {
        let event = object["event"].as_str().expect("event");
        let body = object["text"].as_str().expect("text");
        assert!(line.contains(&format!(" {event}: ")), "{line} / {object}");
        assert!(line.ends_with(body), "{line} / {object}");
        assert!(object["ts"].as_u64().is_some() && object["pid"].as_i64().is_some());
    }
}
