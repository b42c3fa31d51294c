//! `kscope core info` on cores of small C, C++ and Rust programs crashed
//! here, checked against gdb: each program is compiled (gcc, g++, rustc),
//! crashed with core dumps on, and kscope's backtraces must name the same
//! functions, files and lines as gdb's backtraces of every thread of the
//! same core (read through gdb's Python API, which also says which frames
//! are gdb's guessed tail-call frames). gdb is the oracle; there are no
//! stored snapshots.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kscope_testkit::live;
use serde_json::Value;

use crate::{kscope, kscope_ok, stderr, stdout};

/// `-O0`: a NULL write in a function called from main.
pub(crate) const NULL_WRITE: &str = r#"
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

/// C++: an exception nobody catches; std::terminate aborts (SIGABRT).
const UNCAUGHT_EXCEPTION: &str = r#"
#include <stdexcept>

volatile int calls;

__attribute__((noinline)) void fail(int value) {
    if (value > 0)
        throw std::runtime_error("no one catches this");
    calls++;
}

int main() {
    fail(3);
    return calls;
}
"#;

/// Rust: an index out of bounds, with `panic=abort` (SIGABRT).
const RUST_PANIC: &str = r#"
#[inline(never)]
fn element(values: &[u32], index: usize) -> u32 {
    values[index]
}

fn main() {
    let values = vec![1, 2, 3];
    let index = std::env::args().count() + 5;
    println!("{}", element(&values, index));
}
"#;

/// Unbounded recursion: the stack runs out (SIGSEGV near the stack
/// pointer).
const STACK_OVERFLOW: &str = r#"
volatile int calls;

int recurse(int n) {
    volatile char pad[256];
    pad[0] = n;
    calls++;
    return recurse(n + 1) + pad[0];
}

int main(void) {
    return recurse(0);
}
"#;

/// SIGBUS: a read of a shared mapping past the end of its (empty) file.
const BUS_ERROR: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

volatile int calls;

__attribute__((noinline)) int crash(volatile char *p) { return p[0]; }

int main(void) {
    FILE *empty = tmpfile();
    volatile char *p = mmap(0, 4096, PROT_READ, MAP_SHARED, fileno(empty), 0);
    if (p == MAP_FAILED)
        return 2;
    return crash(p);
}
"#;

/// A crash inside libc: strlen of a bad pointer.
const BAD_STRLEN: &str = r#"
#include <string.h>

volatile int calls;

__attribute__((noinline)) size_t crash(const char *s) {
    size_t n = strlen(s);
    calls++;
    return n;
}

int main(void) {
    return (int)crash((const char *)16);
}
"#;

/// A crash in a signal handler: the backtrace goes through the signal
/// frame (`__restore_rt`) into the interrupted loop.
const IN_SIGNAL_HANDLER: &str = r#"
#include <signal.h>
#include <sys/time.h>

int *volatile target;
volatile int calls;

__attribute__((noinline)) void crash(void) {
    *target = 1;
    calls++;
}

void handler(int sig) {
    crash();
    calls += sig;
}

__attribute__((noinline)) void interrupted(void) {
    for (;;)
        calls++;
}

int main(void) {
    struct itimerval once = {{0, 0}, {0, 10000}};
    signal(SIGALRM, handler);
    setitimer(ITIMER_REAL, &once, 0);
    interrupted();
    return calls;
}
"#;

/// A call through a NULL function pointer: pc 0, with the caller's return
/// address on top of the stack (eu-stack loses the caller here).
const NULL_FUNCTION_POINTER: &str = r#"
void (*volatile handler)(int);
volatile int calls;

__attribute__((noinline)) void dispatch(int value) {
    handler(value);
    calls++;
}

int main(void) {
    dispatch(1);
    return calls;
}
"#;

/// The language of a test program, which says its compiler.
#[derive(Debug, Clone, Copy)]
enum Lang {
    C,
    Cpp,
    Rust,
}

impl Lang {
    fn compiler(self) -> &'static str {
        match self {
            Lang::C => "gcc",
            Lang::Cpp => "g++",
            Lang::Rust => "rustc",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Lang::C => "c",
            Lang::Cpp => "cc",
            Lang::Rust => "rs",
        }
    }
}

/// gdb's frames of every thread, printed by its Python API one per line:
/// `CURRENT lwp`, then per thread `THREAD lwp` and
/// `FRAME type function file line` (tab-separated; the type tells inline,
/// tail-call and signal frames apart). gdb stops at main, as `bt` does.
const GDB_FRAMES: &str = r#"
import gdb
print("CURRENT\t%d" % gdb.selected_thread().ptid[1])
for thread in gdb.selected_inferior().threads():
    thread.switch()
    print("THREAD\t%d" % thread.ptid[1])
    frame = gdb.newest_frame()
    while frame is not None:
        sal = frame.find_sal()
        name = frame.name() or "??"
        if frame.type() == gdb.SIGTRAMP_FRAME:
            name = SIGNAL_FRAME
        path = sal.symtab.filename if sal.symtab else ""
        print("FRAME\t%d\t%s\t%s\t%d" % (frame.type(), name, path, sal.line))
        frame = frame.older()
"#;

/// The name both sides give a signal trampoline's frame.
const SIGNAL_FRAME: &str = "<signal handler called>";

/// A program crashed in a temporary directory, with its core.
pub(crate) struct Crash {
    _dir: tempfile::TempDir,
    program: PathBuf,
    pub(crate) core: PathBuf,
}

/// Why gcc, gdb or core dumps are not available, if they are not.
fn missing_tools(lang: Lang) -> Option<String> {
    for tool in [lang.compiler(), "gdb"] {
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

/// Compiles the C `source` with `flags`, runs it with core dumps on, and
/// returns it with its core; `None` (after `live` said why) when that
/// cannot be done here.
pub(crate) fn crash(name: &str, source: &str, flags: &[&str]) -> Option<Crash> {
    crash_in(Lang::C, name, source, flags)
}

/// [`crash`] for a program in `lang`.
fn crash_in(lang: Lang, name: &str, source: &str, flags: &[&str]) -> Option<Crash> {
    if !live(&format!("core info on {name}"), missing_tools(lang)) {
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let source_name = format!("{name}.{}", lang.extension());
    let source_path = dir.path().join(&source_name);
    std::fs::write(&source_path, source).expect("write the program");
    let program = dir.path().join(name);
    let mut compile = Command::new(lang.compiler());
    compile
        .args(flags)
        .arg(&source_path)
        .arg("-o")
        .arg(&program);
    if !matches!(lang, Lang::Rust) {
        compile.arg("-pthread");
    }
    let compiled = compile.output().expect("run the compiler");
    assert!(
        compiled.status.success(),
        "{}: {}",
        lang.compiler(),
        stderr(&compiled)
    );
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
    })
}

/// One frame as gdb or kscope names it: the function, and file:line when
/// known (the file by its last component, as gdb shows it).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    function: String,
    location: Option<(String, u32)>,
}

/// gdb's backtraces by LWP (without its guessed tail-call frames), and the
/// LWP of the current (crashing) thread.
struct GdbView {
    threads: HashMap<i64, Vec<Named>>,
    current: i64,
}

/// gdb's frame type for a frame it guessed from DWARF call sites
/// (`gdb.TAILCALL_FRAME`): a function that tail-called, so it is not on
/// the stack; kscope shows what is on the stack.
const GDB_TAILCALL_FRAME: &str = "3";

fn gdb(crash: &Crash) -> GdbView {
    let script = crash.program.with_extension("gdb.py");
    std::fs::write(
        &script,
        GDB_FRAMES.replace("SIGNAL_FRAME", &format!("{SIGNAL_FRAME:?}")),
    )
    .expect("write the gdb script");
    let output = Command::new("gdb")
        .arg("-batch")
        .arg("-x")
        .arg(&script)
        .arg(&crash.program)
        .arg(&crash.core)
        .output()
        .expect("run gdb");
    let text = stdout(&output);
    let mut threads = HashMap::new();
    let mut current = None;
    let mut lwp = None;
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["CURRENT", id] => current = id.parse().ok(),
            ["THREAD", id] => {
                let id: i64 = id.parse().expect("gdb's thread id");
                lwp = Some(id);
                threads.insert(id, Vec::new());
            }
            ["FRAME", kind, function, file, line] if *kind != GDB_TAILCALL_FRAME => {
                let id = lwp.expect("a frame after a thread");
                let location = Path::new(file)
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .zip(line.parse().ok().filter(|line| *line != 0));
                threads.entry(id).or_insert_with(Vec::new).push(Named {
                    function: (*function).to_string(),
                    location,
                });
            }
            _ => {}
        }
    }
    GdbView {
        threads,
        current: current.unwrap_or_else(|| {
            panic!(
                "no current thread in gdb's output:\n{text}\n{}",
                stderr(&output)
            )
        }),
    }
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
            function: if f["signal_trampoline"] == true {
                SIGNAL_FRAME.to_string()
            } else {
                f["function"].as_str().unwrap_or("??").to_string()
            },
            location: f["file"].as_str().and_then(|file| {
                let name = Path::new(file).file_name()?.to_string_lossy().into_owned();
                Some((name, u32::try_from(f["line"].as_u64()?).ok()?))
            }),
        })
        .collect()
}

/// kscope and gdb agree on `crash`: the crashing thread is the one gdb
/// calls current, and in every thread kscope's frames begin with gdb's
/// (gdb stops at main; kscope goes on to `_start`): the same functions,
/// and the same file:line wherever gdb has one. Returns kscope's report.
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
        let names = |frames: &[Named]| -> Vec<String> {
            frames.iter().map(|f| f.function.clone()).collect()
        };
        let ours = &ours[..theirs.len().min(ours.len())];
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
fn an_uncaught_cpp_exception_matches_gdb() {
    let Some(crash) = crash_in(Lang::Cpp, "exception", UNCAUGHT_EXCEPTION, &["-O0", "-g"]) else {
        return;
    };
    let report = assert_matches_gdb(&crash);
    assert_eq!(report["signal"]["name"], "SIGABRT");
    let frames = kscope_frames(&report["threads"][0]);
    let names: Vec<&str> = frames.iter().map(|f| f.function.as_str()).collect();
    let throw = names.iter().position(|n| *n == "__cxa_throw");
    let fail = names.iter().position(|n| *n == "fail");
    assert!(throw.is_some() && fail == throw.map(|i| i + 1), "{names:?}");
    // The symbol keeps what the name leaves out: the parameter list.
    let fail = &report["threads"][0]["frames"][fail.unwrap_or_default()];
    assert_eq!(fail["symbol"], "fail(int)");
}

#[test]
fn a_rust_panic_with_panic_abort_matches_gdb() {
    let flags = ["-g", "-C", "panic=abort"];
    let Some(crash) = crash_in(Lang::Rust, "panic", RUST_PANIC, &flags) else {
        return;
    };
    let report = assert_matches_gdb(&crash);
    assert_eq!(report["signal"]["name"], "SIGABRT");
    let frames = kscope_frames(&report["threads"][0]);
    let names: Vec<&str> = frames.iter().map(|f| f.function.as_str()).collect();
    assert!(
        names.contains(&"core::panicking::panic_bounds_check"),
        "{names:?}"
    );
    let element = frames
        .iter()
        .find(|f| f.function == "panic::element")
        .unwrap_or_else(|| panic!("no panic::element in {names:?}"));
    assert_eq!(element.location, Some(("panic.rs".to_string(), 4)));
}

#[test]
fn a_stack_overflow_matches_gdb_and_is_named() {
    let Some(crash) = crash("overflow", STACK_OVERFLOW, &["-O0", "-g"]) else {
        return;
    };
    let report = assert_matches_gdb(&crash);
    assert_eq!(report["signal"]["stack_overflow"], true);
    let description = report["signal"]["description"].as_str().unwrap_or_default();
    assert!(
        description.contains("(stack overflow: the stack pointer is 0x"),
        "{description}"
    );
    let frames = report["threads"][0]["frames"].as_array().expect("frames");
    assert!(frames.len() > 1000, "{} frames", frames.len());
    assert_eq!(report["threads"][0]["truncated"], false);
    // The text report folds the recursion into one line.
    let core = crash.core.to_str().expect("utf-8 path");
    let text = stdout(&kscope_ok(&["core", "info", core]));
    assert!(text.lines().count() < 20, "{text}");
    assert!(text.contains("    ... the same frame "), "{text}");
    assert!(text.contains(" in main+0x"), "{text}");
    // --max-frames cuts, and says so.
    let text = stdout(&kscope_ok(&["core", "info", "--max-frames", "5", core]));
    assert!(
        text.contains("    ... cut at 5 frames (--max-frames)"),
        "{text}"
    );
}

#[test]
fn a_bus_error_matches_gdb() {
    let Some(crash) = crash("bus", BUS_ERROR, &["-O0", "-g"]) else {
        return;
    };
    let report = assert_matches_gdb(&crash);
    assert_eq!(report["signal"]["name"], "SIGBUS");
    let description = report["signal"]["description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with("SIGBUS: nonexistent physical address, at 0x"),
        "{description}"
    );
    assert_reaches_main(&report);
}

#[test]
fn a_crash_inside_strlen_matches_gdb() {
    let Some(crash) = crash("strlen", BAD_STRLEN, &["-O0", "-g"]) else {
        return;
    };
    let report = assert_matches_gdb(&crash);
    assert_eq!(
        report["signal"]["description"],
        "SIGSEGV: address not mapped, at 0x10"
    );
    let frames = kscope_frames(&report["threads"][0]);
    assert!(frames[0].function.starts_with("__strlen_"), "{frames:?}");
    assert_eq!(report["threads"][0]["frames"][0]["module"], "libc.so.6");
    assert_eq!(frames[1].function, "crash");
}

#[test]
fn a_crash_in_a_signal_handler_unwinds_through_the_signal_frame() {
    let Some(crash) = crash("handler", IN_SIGNAL_HANDLER, &["-O0", "-g"]) else {
        return;
    };
    let report = assert_matches_gdb(&crash);
    let names: Vec<String> = kscope_frames(&report["threads"][0])
        .into_iter()
        .map(|f| f.function)
        .collect();
    assert_eq!(
        names[..5],
        ["crash", "handler", SIGNAL_FRAME, "interrupted", "main"],
        "{names:?}"
    );
    let frames = report["threads"][0]["frames"].as_array().expect("frames");
    assert_eq!(frames[2]["function"], "__restore_rt");
    assert_eq!(frames[3]["source"], "signal");
}

#[test]
fn a_call_through_a_null_function_pointer_matches_gdb() {
    let Some(crash) = crash("nullfn", NULL_FUNCTION_POINTER, &["-O0", "-g"]) else {
        return;
    };
    let report = assert_matches_gdb(&crash);
    let frames = report["threads"][0]["frames"].as_array().expect("frames");
    assert_eq!(frames[0]["pc"], 0);
    assert_eq!(frames[1]["function"], "dispatch");
    assert_eq!(frames[1]["source"], "return-address");
    assert_eq!(frames[2]["function"], "main");
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
fn files_are_read_under_the_sysroot() {
    let Some(crash) = crash("sysroot", NULL_WRITE, &["-O0", "-g"]) else {
        return;
    };
    // The program exists only in the sysroot, at the path the core names.
    let sysroot = tempfile::tempdir().expect("temp dir");
    let relative = crash.program.strip_prefix("/").expect("an absolute path");
    let copy = sysroot.path().join(relative);
    std::fs::create_dir_all(copy.parent().expect("a parent")).expect("mkdir");
    std::fs::rename(&crash.program, &copy).expect("move the program");
    let core = crash.core.to_str().expect("utf-8 path");
    let root = sysroot.path().to_str().expect("utf-8 path");
    let without = stdout(&kscope_ok(&["core", "info", core]));
    assert!(!without.contains(" in crash+0x"), "{without}");
    let with = stdout(&kscope_ok(&["core", "info", "--sysroot", root, core]));
    assert!(with.contains(" in crash+0x"), "{with}");
    assert!(with.contains("sysroot.c:5 (sysroot)"), "{with}");
}

#[test]
fn the_dwarf_cache_is_written_once_and_changes_nothing() {
    let Some(crash) = crash("cached", THREADS, &["-O0", "-g"]) else {
        return;
    };
    let cache = tempfile::tempdir().expect("temp dir");
    let core = crash.core.to_str().expect("utf-8 path");
    let run = |extra: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_kscope"))
            .args(["core", "info"])
            .args(extra)
            .arg(core)
            .env("KSCOPE_CACHE_DIR", cache.path())
            .output()
            .expect("run kscope");
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output)
    };
    let files = || {
        std::fs::read_dir(cache.path().join("dwarf"))
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .map(|e| e.path())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let uncached = run(&["--no-cache"]);
    assert!(files().is_empty(), "--no-cache wrote {:?}", files());
    // The first run stores libc's inflated debug sections, the second
    // reads them.
    let first = run(&[]);
    let stored = files();
    assert!(
        has_compressed_libc_debug_info(),
        "libc6-dbg is not installed (scripts/setup installs it)"
    );
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].to_string_lossy().ends_with(".dwarf"));
    let second = run(&[]);
    assert_eq!(first, uncached);
    assert_eq!(second, uncached);
}

/// Whether libc's debug file (libc6-dbg, which scripts/setup installs) is
/// there with compressed sections, the case the cache is for.
fn has_compressed_libc_debug_info() -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(
            "id=$(readelf -n /lib/x86_64-linux-gnu/libc.so.6 | sed -n 's/.*Build ID: //p'); \
             readelf -SW /usr/lib/debug/.build-id/$(echo $id | cut -c1-2)/$(echo $id | cut -c3-).debug \
             | grep -q 'debug_info.* C '",
        )
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_file_that_is_not_a_core_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("not-a-core");
    std::fs::write(&path, b"hello").expect("write");
    let output = kscope(&["core", "info", path.to_str().expect("utf-8 path")]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("is not a core dump: it starts with the text \"hello\""),
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

#[test]
fn the_dwarf_cache_writes_past_planted_links() {
    let Some(crash) = crash("cachelinks", THREADS, &["-O0", "-g"]) else {
        return;
    };
    assert!(
        has_compressed_libc_debug_info(),
        "libc6-dbg is not installed (scripts/setup installs it)"
    );
    let shared = crate::safe_files::Shared::new();
    let cache = shared.dir().join("cache");
    std::fs::create_dir(&cache).expect("make the cache");
    let run = || {
        let output = Command::new(env!("CARGO_BIN_EXE_kscope"))
            .args(["core", "info"])
            .arg(&crash.core)
            .env("KSCOPE_CACHE_DIR", &cache)
            .output()
            .expect("run kscope");
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output)
    };
    let uncached = stdout(&kscope_ok(&[
        "core",
        "info",
        "--no-cache",
        crash.core.to_str().expect("utf-8 path"),
    ]));

    // The cache directory is a link to someone else's directory: nothing
    // is written there.
    let elsewhere = shared.dir().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("make a directory");
    std::os::unix::fs::symlink(&elsewhere, cache.join("dwarf")).expect("plant a link");
    assert_eq!(run(), uncached);
    assert_eq!(
        std::fs::read_dir(&elsewhere).expect("list").count(),
        0,
        "the cache wrote through the link at its directory"
    );

    // The cache file and its old temporary names are links to the victim.
    std::fs::remove_file(cache.join("dwarf")).expect("remove the link");
    std::fs::create_dir(cache.join("dwarf")).expect("make the directory");
    let readelf = Command::new("readelf")
        .args(["-n", "/lib/x86_64-linux-gnu/libc.so.6"])
        .output()
        .expect("run readelf");
    let id = stdout(&readelf)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: ").map(str::to_string))
        .expect("libc's build-id");
    let file = shared.plant(&format!("cache/dwarf/{id}.dwarf"));
    shared.plant_for_next_pids(|pid| format!("cache/dwarf/{id}.tmp{pid}"));
    assert_eq!(run(), uncached);
    shared.assert_victim_intact();
    assert!(
        std::fs::symlink_metadata(&file)
            .expect("the cache file")
            .is_file(),
        "the link at the cache file was not replaced"
    );
    assert_eq!(run(), uncached);
}

#[test]
fn a_rebuilt_executable_is_named_and_lends_no_symbol() {
    let Some(crash) = crash("rebuilt", NULL_WRITE, &["-O0", "-g"]) else {
        return;
    };
    // The same path, rebuilt from another source after the crash (as gdb
    // says, "exec file is newer than core file"): its addresses now hold
    // other code.
    let source = crash.program.with_extension("c");
    let padded =
        format!("volatile int pad[64];\nvoid before(void) {{ pad[3]++; pad[9]--; }}\n{NULL_WRITE}");
    std::fs::write(&source, padded).expect("write the new source");
    let rebuilt = Command::new("gcc")
        .args(["-O2", "-g"])
        .arg(&source)
        .arg("-o")
        .arg(&crash.program)
        .output()
        .expect("run gcc");
    assert!(rebuilt.status.success(), "{}", stderr(&rebuilt));
    let core = crash.core.to_str().expect("utf-8 path");
    let output = kscope_ok(&["core", "info", "--json", core]);
    let warning = stderr(&output);
    assert!(
        warning.contains("is not the build that crashed") && warning.contains("/rebuilt "),
        "{warning}"
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let mismatches = report["build_id_mismatches"].as_array().expect("a list");
    assert_eq!(mismatches.len(), 1, "{report}");
    assert_eq!(mismatches[0]["module"], "rebuilt");
    assert_ne!(
        mismatches[0]["core_build_id"],
        mismatches[0]["file_build_id"]
    );
    // The program's frames keep their address and module, and name nothing
    // from the new file; libc's frames are still named.
    let frames = report["threads"][0]["frames"].as_array().expect("frames");
    let (ours, others): (Vec<&Value>, Vec<&Value>) =
        frames.iter().partition(|f| f["module"] == "rebuilt");
    assert!(ours.len() >= 2, "{frames:?}");
    for frame in &ours {
        assert_eq!(frame["build_id_mismatch"], true, "{frame}");
        assert!(
            frame["function"].is_null() && frame["file"].is_null(),
            "{frame}"
        );
    }
    assert!(
        others.iter().any(|f| f["function"].is_string()),
        "{frames:?}"
    );
    let text = stdout(&kscope_ok(&["core", "info", core]));
    assert!(
        text.contains(" in ?? (rebuilt) (build-id mismatch)"),
        "{text}"
    );
    assert!(
        !text.contains(" in crash") && !text.contains(" in main"),
        "{text}"
    );
}

#[test]
fn crash_given_a_user_core_says_to_read_it_with_core_info() {
    let Some(crash) = crash("not_a_vmcore", NULL_WRITE, &["-O0", "-g"]) else {
        return;
    };
    let output = kscope(&["crash", crash.core.to_str().expect("utf-8 path"), "sys"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("this is a user-space core")
            && stderr(&output).contains("kscope core info"),
        "{}",
        stderr(&output)
    );
}
