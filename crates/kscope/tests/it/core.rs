//! `kscope core info` on cores of small C programs crashed here, checked
//! against gdb: each program is compiled with gcc, crashed with core dumps
//! on, and kscope's backtraces must name the same functions, files and
//! lines as `gdb -batch -ex 'thread apply all bt'` on the same core. gdb is
//! the oracle; there are no stored snapshots.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kscope_testkit::live;
use serde_json::Value;

use crate::{kscope, kscope_ok, stderr, stdout};

/// `-O0`: a NULL write in a function called from main.
const NULL_WRITE: &str = r#"
int *volatile target;
volatile int calls;

void crash(int value) { *target = value; }

int main(void) {
    crash(42);
    return calls;
}
"#;

/// `-O2`: the write two calls deep, with a helper gcc may inline and
/// neither call in tail position (a tail call leaves no frame).
const NULL_WRITE_OPTIMIZED: &str = r#"
int *volatile target;
volatile int calls;

__attribute__((noinline)) void crash(int value) {
    *target = value;
    calls++;
}

static void middle(int value) {
    crash(value + 1);
    calls++;
}

__attribute__((noinline)) void outer(int value) {
    middle(value * 2);
    calls++;
}

int main(void) {
    outer(20);
    return calls;
}
"#;

/// Four threads: three wait in pause(), one writes through NULL.
const THREADS: &str = r#"
#include <pthread.h>
#include <unistd.h>

int *volatile target;
volatile int calls;

__attribute__((noinline)) void wait_forever(void) {
    for (;;)
        pause();
}

__attribute__((noinline)) void crash(void) {
    usleep(200000);
    *target = 1;
    calls++;
}

void *worker(void *arg) {
    if (arg)
        crash();
    else
        wait_forever();
    calls++;
    return 0;
}

int main(void) {
    pthread_t threads[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&threads[i], 0, worker, (void *)(i == 3));
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], 0);
    return calls;
}
"#;

/// SIGFPE: an integer division by zero.
const DIVIDE_BY_ZERO: &str = r#"
volatile int zero;

int divide(int a, int b) { return a / b; }

int main(void) {
    return divide(7, zero);
}
"#;

/// A program crashed in a temporary directory, with its core.
struct Crash {
    _dir: tempfile::TempDir,
    program: PathBuf,
    core: PathBuf,
    source_name: String,
}

/// Why gcc, gdb or core dumps are not available, if they are not.
fn missing_tools() -> Option<String> {
    for tool in ["gcc", "gdb"] {
        let found = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!("{tool} is not installed"));
        }
    }
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    if pattern.starts_with('|') {
        return Some(format!(
            "core_pattern pipes cores to a program ({})",
            pattern.trim()
        ));
    }
    None
}

/// Compiles `source` with `flags`, runs it with core dumps on, and returns
/// it with its core; `None` (after `live` said why) when that cannot be
/// done here.
fn crash(name: &str, source: &str, flags: &[&str]) -> Option<Crash> {
    if !live(&format!("core info on {name}"), missing_tools()) {
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let source_name = format!("{name}.c");
    let source_path = dir.path().join(&source_name);
    std::fs::write(&source_path, source).expect("write the program");
    let program = dir.path().join(name);
    let gcc = Command::new("gcc")
        .args(flags)
        .arg(&source_path)
        .arg("-o")
        .arg(&program)
        .arg("-pthread")
        .output()
        .expect("run gcc");
    assert!(gcc.status.success(), "gcc: {}", stderr(&gcc));
    let run = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -c unlimited; exec ./{name}"))
        .current_dir(dir.path())
        .output()
        .expect("run the program");
    assert!(!run.status.success(), "{name} did not crash");
    let core = std::fs::read_dir(dir.path())
        .expect("read the temp dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("core"))
        });
    let Some(core) = core else {
        let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
        live(
            &format!("core info on {name}"),
            Some(format!(
                "no core was written (core_pattern {})",
                pattern.trim()
            )),
        );
        return None;
    };
    Some(Crash {
        _dir: dir,
        program,
        core,
        source_name,
    })
}

/// One frame as gdb or kscope names it: the function, and file:line when
/// known (the file by its last component, as gdb shows it).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    function: String,
    location: Option<(String, u32)>,
}

/// gdb's backtraces by LWP, and the LWP of the current (crashing) thread.
struct GdbView {
    threads: HashMap<i64, Vec<Named>>,
    current: i64,
}

fn gdb(crash: &Crash) -> GdbView {
    let output = Command::new("gdb")
        .arg("-batch")
        .args(["-ex", "set width 0", "-ex", "set pagination off"])
        .args(["-ex", "thread", "-ex", "thread apply all bt"])
        .arg(&crash.program)
        .arg(&crash.core)
        .output()
        .expect("run gdb");
    let text = stdout(&output);
    let mut threads = HashMap::new();
    let mut current = None;
    let mut lwp = None;
    for line in text.lines() {
        if let Some(rest) = line.split("(LWP ").nth(1) {
            let id: i64 = rest
                .split(')')
                .next()
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or_else(|| panic!("gdb thread line {line:?}"));
            if line.starts_with("[Current thread is") {
                current = Some(id);
            } else if line.starts_with("Thread ") {
                lwp = Some(id);
                threads.insert(id, Vec::new());
            }
            continue;
        }
        if let (Some(id), Some(frame)) = (lwp, gdb_frame(line)) {
            threads.entry(id).or_insert_with(Vec::new).push(frame);
        }
    }
    GdbView {
        threads,
        current: current.unwrap_or_else(|| panic!("no current thread in gdb's output:\n{text}")),
    }
}

/// `#N  0x... in FUNC (ARGS) at FILE:LINE`, the address absent on inlined
/// frames and `at FILE:LINE` absent (or `from LIB`) without line info.
fn gdb_frame(line: &str) -> Option<Named> {
    let rest = line.strip_prefix('#')?;
    let rest = rest
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_start();
    let rest = match rest.strip_prefix("0x") {
        Some(after) => after.split_once(" in ")?.1,
        None => rest,
    };
    let function = rest.split(" (").next()?.to_string();
    let location = rest.rsplit_once(") at ").and_then(|(_, at)| {
        let (file, line) = at.rsplit_once(':')?;
        let name = Path::new(file).file_name()?.to_string_lossy().into_owned();
        Some((name, line.trim().parse().ok()?))
    });
    Some(Named { function, location })
}

/// kscope's JSON report of the core.
fn kscope_report(crash: &Crash) -> Value {
    let core = crash.core.to_str().expect("utf-8 path");
    let output = kscope_ok(&["core", "info", "--json", core]);
    serde_json::from_slice(&output.stdout).expect("core info --json is JSON")
}

fn kscope_frames(thread: &Value) -> Vec<Named> {
    thread["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|f| Named {
            function: f["function"].as_str().unwrap_or("??").to_string(),
            location: f["file"].as_str().and_then(|file| {
                let name = Path::new(file).file_name()?.to_string_lossy().into_owned();
                Some((name, u32::try_from(f["line"].as_u64()?).ok()?))
            }),
        })
        .collect()
}

/// The frames up to and including `main`, or all when main is not one.
fn up_to_main(frames: &[Named]) -> &[Named] {
    let end = frames
        .iter()
        .position(|f| f.function == "main")
        .map_or(frames.len(), |i| i + 1);
    &frames[..end]
}

/// The frames in the test program's own source file.
fn in_program<'a>(frames: &'a [Named], source: &str) -> Vec<&'a Named> {
    frames
        .iter()
        .filter(|f| f.location.as_ref().is_some_and(|(file, _)| file == source))
        .collect()
}

/// kscope and gdb agree on `crash`: the crashing thread is the one gdb
/// calls current, its frames name the same functions up to main with the
/// same file:line where gdb has one, and every other thread has the same
/// frames in the program's source. (Only those: in libc, gdb adds "tail
/// call frames" guessed from DWARF call sites, which are not on the
/// stack.) Returns kscope's report.
fn assert_matches_gdb(crash: &Crash) -> Value {
    let report = kscope_report(crash);
    let gdb = gdb(crash);
    let threads = report["threads"].as_array().expect("threads");
    assert_eq!(threads.len(), gdb.threads.len(), "thread count");
    let crashed = &threads[0];
    assert_eq!(crashed["crashed"], true);
    assert_eq!(
        crashed["tid"].as_i64(),
        Some(gdb.current),
        "crashing thread"
    );
    for thread in threads {
        let tid = thread["tid"].as_i64().expect("tid");
        let theirs = gdb
            .threads
            .get(&tid)
            .unwrap_or_else(|| panic!("gdb has no thread {tid}"));
        let ours = kscope_frames(thread);
        if tid == gdb.current {
            // A thread other than main's ends in start_thread and clone3.
            let theirs = up_to_main(theirs);
            let ours = up_to_main(&ours);
            let names = |frames: &[Named]| -> Vec<String> {
                frames.iter().map(|f| f.function.clone()).collect()
            };
            assert_eq!(names(ours), names(theirs), "functions of thread {tid}");
            for (our, their) in ours.iter().zip(theirs) {
                if their.location.is_some() {
                    assert_eq!(
                        our.location, their.location,
                        "{} in thread {tid}",
                        their.function
                    );
                }
            }
        }
        assert_eq!(
            in_program(&ours, &crash.source_name),
            in_program(theirs, &crash.source_name),
            "frames in {} of thread {tid}",
            crash.source_name
        );
    }
    report
}

/// The crashing thread's frames go from crash to main.
fn assert_reaches_main(report: &Value) {
    let names: Vec<String> = kscope_frames(&report["threads"][0])
        .into_iter()
        .map(|f| f.function)
        .collect();
    assert_eq!(
        names.first().map(String::as_str),
        Some("crash"),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n == "main"), "{names:?}");
}

#[test]
fn a_null_write_at_o0_matches_gdb() {
    let Some(crash) = crash("null_write", NULL_WRITE, &["-O0", "-g"]) else {
        return;
    };
    let report = assert_matches_gdb(&crash);
    assert_eq!(
        report["signal"]["description"],
        "SIGSEGV: address not mapped, at 0x0"
    );
    let functions: Vec<Named> = kscope_frames(&report["threads"][0]);
    assert_eq!(functions[0].function, "crash");
    assert_eq!(functions[1].function, "main");
}

#[test]
fn a_null_write_at_o2_with_frame_pointers_matches_gdb() {
    let flags = ["-O2", "-g", "-fno-omit-frame-pointer"];
    if let Some(crash) = crash("null_write_fp", NULL_WRITE_OPTIMIZED, &flags) {
        let report = assert_matches_gdb(&crash);
        assert_reaches_main(&report);
    }
}

#[test]
fn a_null_write_at_o2_without_frame_pointers_matches_gdb() {
    let flags = ["-O2", "-g", "-fomit-frame-pointer"];
    if let Some(crash) = crash("null_write_nofp", NULL_WRITE_OPTIMIZED, &flags) {
        let report = assert_matches_gdb(&crash);
        assert_reaches_main(&report);
        let frames = report["threads"][0]["frames"].as_array().expect("frames");
        assert!(
            frames
                .iter()
                .skip(1)
                .all(|f| f["source"] != "frame-pointer"),
            "unwound by CFI, not by rbp: {frames:?}"
        );
    }
}

#[test]
fn a_null_write_without_unwind_tables_matches_gdb_by_frame_pointers() {
    let flags = [
        "-O0",
        "-g",
        "-fno-asynchronous-unwind-tables",
        "-fno-unwind-tables",
    ];
    if let Some(crash) = crash("null_write_nocfi", NULL_WRITE, &flags) {
        let report = assert_matches_gdb(&crash);
        let frames = report["threads"][0]["frames"].as_array().expect("frames");
        assert_eq!(frames[1]["function"], "main");
        assert_eq!(frames[1]["source"], "frame-pointer", "{frames:?}");
    }
}

#[test]
fn a_crash_in_one_of_four_threads_matches_gdb() {
    if let Some(crash) = crash("threads", THREADS, &["-O0", "-g"]) {
        let report = assert_matches_gdb(&crash);
        assert_eq!(report["threads"].as_array().map(Vec::len), Some(5));
    }
}

#[test]
fn a_division_by_zero_matches_gdb() {
    if let Some(crash) = crash("divide", DIVIDE_BY_ZERO, &["-O0", "-g"]) {
        let report = assert_matches_gdb(&crash);
        assert_eq!(report["signal"]["name"], "SIGFPE");
        let description = report["signal"]["description"].as_str().unwrap_or_default();
        assert!(
            description.starts_with("SIGFPE: integer divide by zero"),
            "{description}"
        );
    }
}

#[test]
fn the_text_report_names_the_process_signal_and_frames() {
    let Some(crash) = crash("text_report", NULL_WRITE, &["-O0", "-g"]) else {
        return;
    };
    let core = crash.core.to_str().expect("utf-8 path");
    let text = stdout(&kscope_ok(&["core", "info", "--full", core]));
    assert!(
        text.contains("Signal: SIGSEGV: address not mapped, at 0x0"),
        "{text}"
    );
    assert!(text.contains("./text_report"), "{text}");
    assert!(text.contains(" (crashed)\n#0 "), "{text}");
    assert!(text.contains(" in crash+0x"), "{text}");
    assert!(text.contains("text_report.c:5 (text_report)"), "{text}");
    assert!(text.contains("rip 0x"), "{text}");
}

#[test]
fn a_moved_executable_is_found_with_exe() {
    let Some(crash) = crash("moved", NULL_WRITE, &["-O0", "-g"]) else {
        return;
    };
    let moved = crash.program.with_file_name("moved-elsewhere");
    std::fs::rename(&crash.program, &moved).expect("move the program");
    let core = crash.core.to_str().expect("utf-8 path");
    let without = stdout(&kscope_ok(&["core", "info", core]));
    assert!(!without.contains(" in crash"), "{without}");
    assert!(
        without.contains(" in ?? (moved)"),
        "address and module stay: {without}"
    );
    let exe = moved.to_str().expect("utf-8 path");
    let with = stdout(&kscope_ok(&["core", "info", "--exe", exe, core]));
    assert!(with.contains(" in crash+0x"), "{with}");
    assert!(with.contains(" in main+0x"), "{with}");
}

#[test]
fn a_file_that_is_not_a_core_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("not-a-core");
    std::fs::write(&path, b"hello").expect("write");
    let output = kscope(&["core", "info", path.to_str().expect("utf-8 path")]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("is not a core dump kscope can read"),
        "{}",
        stderr(&output)
    );
    let output = kscope(&["core", "info", "/nonexistent/core"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("cannot open the core"),
        "{}",
        stderr(&output)
    );
}
