//! The runtime corpus of `kscope probe`: every `tests/corpus/NAME.stp`
//! runs on this machine's kernel with the workload its header names, and
//! what it printed is checked against the header's expectations (the
//! directives are described in `tests/corpus/README.md`). One test runs
//! every case in turn and reports all the failures together, each with
//! its script, stdout and stderr. `KSCOPE_CORPUS=NAME[,NAME...]` runs
//! only the cases named.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kscope_testkit::{TracefsLock, live, missing_root};
use rustix::process::{Pid, Signal, kill_process, kill_process_group};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");

/// How long a case may run when its header does not say.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// One script of the corpus and what its header asks for.
#[derive(Debug)]
struct Case {
    name: String,
    path: PathBuf,
    script: String,
    /// `command:` — run with `-c`.
    command: Option<String>,
    /// `args:` — more arguments, before the script.
    args: Vec<String>,
    /// `argv:` — all the arguments after `probe`; the script is not given.
    argv: Option<Vec<String>>,
    /// `script-args:` — the script's own arguments ($1, @1...), after it.
    script_args: Vec<String>,
    /// `background:` — a shell command running during the case; `{bg}`
    /// is its pid.
    background: Option<String>,
    /// `expect:` — the output's lines, one glob each, in order.
    expect: Vec<String>,
    /// `expect-count:` and `expect-min:`.
    counts: Vec<LineCount>,
    /// `stderr:` — globs that some stderr line must match.
    stderr: Vec<String>,
    /// `exit:` — the exit status.
    exit: i32,
    /// `signal:` — sent this long after the probes are attached.
    signal: Option<(SignalName, Duration)>,
    /// `timeout:`.
    timeout: Duration,
    /// `file:` — the output file (under `{tmp}`) the expectations are
    /// about, instead of stdout.
    file: Option<String>,
}

/// `expect-count: GLOB N` (exactly N lines match) or `expect-min: GLOB N`
/// (at least N).
#[derive(Debug, PartialEq)]
struct LineCount {
    glob: String,
    n: usize,
    at_least: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum SignalName {
    Int,
    Term,
}

impl SignalName {
    fn signal(self) -> Signal {
        match self {
            SignalName::Int => Signal::INT,
            SignalName::Term => Signal::TERM,
        }
    }
}

const DIRECTIVES: &[&str] = &[
    "command",
    "args",
    "argv",
    "script-args",
    "background",
    "expect",
    "expect-count",
    "expect-min",
    "stderr",
    "exit",
    "signal",
    "timeout",
    "file",
];

impl Case {
    /// Reads the directives from the `#` lines that open `script`.
    fn parse(name: &str, path: PathBuf, script: String) -> Result<Case, String> {
        let mut case = Case {
            name: name.to_string(),
            path,
            script: String::new(),
            command: None,
            args: Vec::new(),
            argv: None,
            script_args: Vec::new(),
            background: None,
            expect: Vec::new(),
            counts: Vec::new(),
            stderr: Vec::new(),
            exit: 0,
            signal: None,
            timeout: DEFAULT_TIMEOUT,
            file: None,
        };
        for (number, line) in script.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let Some(comment) = line.strip_prefix('#') else {
                break;
            };
            let Some((key, value)) = comment.trim_start().split_once(':') else {
                continue;
            };
            let value = value.trim();
            let bad = |what: &str| format!("line {}: {key}: {what}", number + 1);
            if !DIRECTIVES.contains(&key) {
                // A lowercase word and a colon is a directive's shape: a
                // misspelt one must not pass silently as a comment.
                if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                    return Err(bad(&format!(
                        "not a directive (they are: {})",
                        DIRECTIVES.join(", ")
                    )));
                }
                continue;
            }
            match key {
                "command" => case.command = Some(value.to_string()),
                "args" => case.args = value.split_whitespace().map(String::from).collect(),
                "argv" => case.argv = Some(value.split_whitespace().map(String::from).collect()),
                "script-args" => {
                    case.script_args = value.split_whitespace().map(String::from).collect()
                }
                "background" => case.background = Some(value.to_string()),
                "expect" => case.expect.push(value.to_string()),
                "expect-count" | "expect-min" => {
                    let (glob, n) = value
                        .rsplit_once(' ')
                        .and_then(|(g, n)| Some((g.trim_end(), n.parse().ok()?)))
                        .ok_or_else(|| bad("expected GLOB N"))?;
                    case.counts.push(LineCount {
                        glob: glob.to_string(),
                        n,
                        at_least: key == "expect-min",
                    });
                }
                "stderr" => case.stderr.push(value.to_string()),
                "exit" => case.exit = value.parse().map_err(|_| bad("expected a number"))?,
                "signal" => {
                    let (signal, ms) = value
                        .split_once(" after ")
                        .ok_or_else(|| bad("expected INT|TERM after MS"))?;
                    let signal = match signal.trim() {
                        "INT" => SignalName::Int,
                        "TERM" => SignalName::Term,
                        _ => return Err(bad("the signal is INT or TERM")),
                    };
                    let ms = ms
                        .trim()
                        .parse()
                        .map_err(|_| bad("expected milliseconds"))?;
                    case.signal = Some((signal, Duration::from_millis(ms)));
                }
                "timeout" => {
                    case.timeout = Duration::from_secs(
                        value.parse().map_err(|_| bad("expected whole seconds"))?,
                    )
                }
                "file" => case.file = Some(value.to_string()),
                _ => unreachable!("{key} is in DIRECTIVES"),
            }
        }
        if case.argv.is_some() && (case.command.is_some() || !case.args.is_empty()) {
            return Err("argv: replaces every argument; command: and args: go without it".into());
        }
        case.script = script;
        Ok(case)
    }

    /// The arguments after `kscope probe`, with `{tmp}` and `{bg}` filled.
    fn arguments(&self, tmp: &Path, background: Option<u32>) -> Vec<String> {
        let fill = |s: &str| {
            let s = s.replace("{tmp}", &tmp.display().to_string());
            match background {
                Some(pid) => s.replace("{bg}", &pid.to_string()),
                None => s,
            }
        };
        let mut out = Vec::new();
        if self.signal.is_some() {
            // -v reports "Pass 5" once the probes are attached: the
            // signal's delay counts from there.
            out.push("-v".to_string());
        }
        if let Some(argv) = &self.argv {
            out.extend(argv.iter().map(|a| fill(a)));
            return out;
        }
        out.extend(self.args.iter().map(|a| fill(a)));
        if let Some(command) = &self.command {
            out.push("-c".to_string());
            out.push(fill(command));
        }
        out.push(self.path.display().to_string());
        out.extend(self.script_args.iter().map(|a| fill(a)));
        out
    }
}

/// What one run of kscope did.
struct Run {
    arguments: Vec<String>,
    /// The exit status, or None when a signal ended it.
    code: Option<i32>,
    /// The signal that ended it, if one did.
    killed_by: Option<i32>,
    timed_out: bool,
    stdout: String,
    stderr: String,
    /// The contents of the `file:` output file.
    file: Option<Result<String, String>>,
    elapsed: Duration,
    /// Why the case could not even run, if it could not.
    setup_error: Option<String>,
    /// tracefs mounts before and after, from /proc/self/mounts.
    tracefs_mounts: (usize, usize),
}

/// A process started by a test in a process group of its own: the whole
/// group is killed (SIGKILL) and the process reaped when it is dropped.
pub(crate) struct Group(pub(crate) Child);

impl Group {
    pub(crate) fn pid(&self) -> Pid {
        Pid::from_child(&self.0)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // ESRCH when every process of the group has already exited.
        let _ = kill_process_group(self.pid(), Signal::KILL);
        let _ = self.0.wait();
    }
}

/// What a pipe gave so far.
pub(crate) type Collected = Arc<Mutex<Vec<u8>>>;

/// Reads a pipe to its end in a thread, into a buffer the test can look
/// at while it fills.
pub(crate) fn drain(mut pipe: impl Read + Send + 'static) -> (Collected, JoinHandle<()>) {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buffer);
    let thread = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("pipe buffer")
                .extend_from_slice(&chunk[..n]);
        }
    });
    (buffer, thread)
}

fn tracefs_mounts() -> usize {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("tracefs"))
        .count()
}

/// Runs `case` (its background command, then kscope) within its timeout.
fn run(case: &Case, tmp: &Path) -> Run {
    let mounts_before = tracefs_mounts();
    let started = Instant::now();
    let mut result = Run {
        arguments: Vec::new(),
        code: None,
        killed_by: None,
        timed_out: false,
        stdout: String::new(),
        stderr: String::new(),
        file: None,
        elapsed: Duration::ZERO,
        setup_error: None,
        tracefs_mounts: (mounts_before, mounts_before),
    };
    let background = match &case.background {
        Some(command) => match Command::new("sh")
            .args(["-c", command])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => Some(Group(child)),
            Err(e) => {
                result.setup_error = Some(format!("cannot start the background command: {e}"));
                return result;
            }
        },
        None => None,
    };
    result.arguments = case.arguments(tmp, background.as_ref().map(|g| g.0.id()));
    let spawned = kscope_testkit::command_with_signals(env!("CARGO_BIN_EXE_kscope"), &[])
        .arg("probe")
        .args(&result.arguments)
        .env("NO_COLOR", "1")
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut kscope = match spawned {
        Ok(child) => Group(child),
        Err(e) => {
            result.setup_error = Some(format!("cannot start kscope: {e}"));
            return result;
        }
    };
    let (stdout, stdout_thread) = drain(kscope.0.stdout.take().expect("piped stdout"));
    let (stderr, stderr_thread) = drain(kscope.0.stderr.take().expect("piped stderr"));

    let deadline = started + case.timeout;
    let mut signal = case.signal;
    let mut attached_at = None;
    let status = loop {
        match kscope.0.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(e) => {
                result.setup_error = Some(format!("cannot wait for kscope: {e}"));
                break None;
            }
        }
        if let Some((name, delay)) = signal {
            if attached_at.is_none()
                && String::from_utf8_lossy(&stderr.lock().expect("stderr buffer"))
                    .contains("Pass 5:")
            {
                attached_at = Some(Instant::now());
            }
            if attached_at.is_some_and(|at| at.elapsed() >= delay) {
                if let Err(e) = kill_process(kscope.pid(), name.signal()) {
                    result.setup_error = Some(format!("cannot signal kscope: {e}"));
                }
                signal = None;
            }
        }
        if Instant::now() >= deadline {
            // SIGTERM first, so that kscope can restore what it changed.
            result.timed_out = true;
            let _ = kill_process_group(kscope.pid(), Signal::TERM);
            let grace = Instant::now() + Duration::from_secs(3);
            while Instant::now() < grace && matches!(kscope.0.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            break kscope.0.try_wait().ok().flatten();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    result.elapsed = started.elapsed();
    result.code = status.and_then(|s| s.code());
    result.killed_by = status.and_then(|s| s.signal());
    // Whatever the workload left behind holds the pipes open: end it.
    drop(kscope);
    drop(background);
    let _ = stdout_thread.join();
    let _ = stderr_thread.join();
    result.stdout = String::from_utf8_lossy(&stdout.lock().expect("stdout buffer")).into_owned();
    result.stderr = String::from_utf8_lossy(&stderr.lock().expect("stderr buffer")).into_owned();
    if let Some(name) = &case.file {
        let path = tmp.join(name);
        result.file =
            Some(std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display())));
    }
    result.tracefs_mounts.1 = tracefs_mounts();
    result
}

/// Whether `text` matches `glob`, where `*` stands for any run of
/// characters and every other character for itself.
fn glob_matches(glob: &str, text: &str) -> bool {
    let mut parts = glob.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let middle: Vec<&str> = parts.collect();
    let Some((last, middle)) = middle.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Everything wrong with a run, one sentence each; empty when it passed.
fn problems(case: &Case, run: &Run) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = &run.setup_error {
        out.push(e.clone());
    }
    if run.timed_out {
        out.push(format!(
            "did not end within {} s and was killed",
            case.timeout.as_secs()
        ));
    } else if let Some((name, _)) = case.signal {
        // Stopped by a signal, kscope cleans up, then ends by that signal.
        let expected = name.signal().as_raw();
        if run.killed_by != Some(expected) {
            out.push(format!(
                "ended with status {:?} (signal {:?}), expected to be killed by signal {expected}",
                run.code, run.killed_by
            ));
        }
    } else if run.code != Some(case.exit) {
        match run.code {
            Some(code) => out.push(format!("exit status {code}, expected {}", case.exit)),
            None => out.push(format!(
                "ended by a signal, expected exit status {}",
                case.exit
            )),
        }
    }
    if run.tracefs_mounts.0 != run.tracefs_mounts.1 {
        out.push(format!(
            "tracefs was mounted {} times before and {} times after",
            run.tracefs_mounts.0, run.tracefs_mounts.1
        ));
    }
    let (what, text) = match &run.file {
        Some(Ok(text)) => {
            if !run.stdout.is_empty() {
                out.push("stdout is not empty although the output goes to a file".into());
            }
            ("the output file", text.as_str())
        }
        Some(Err(e)) => {
            out.push(format!("no output file: {e}"));
            ("the output file", "")
        }
        None => ("stdout", run.stdout.as_str()),
    };
    let lines: Vec<&str> = text.lines().collect();
    if !case.expect.is_empty() {
        if let Some((i, (glob, line))) = case
            .expect
            .iter()
            .zip(&lines)
            .enumerate()
            .find(|(_, (glob, line))| !glob_matches(glob, line))
        {
            out.push(format!(
                "{what} line {}: {line:?} does not match {glob:?}",
                i + 1
            ));
        }
        if lines.len() != case.expect.len() {
            out.push(format!(
                "{what} has {} lines, expected {}",
                lines.len(),
                case.expect.len()
            ));
        }
    }
    for count in &case.counts {
        let n = lines
            .iter()
            .filter(|l| glob_matches(&count.glob, l))
            .count();
        let fine = if count.at_least {
            n >= count.n
        } else {
            n == count.n
        };
        if !fine {
            out.push(format!(
                "{n} lines of {what} match {:?}, expected {}{}",
                count.glob,
                if count.at_least { "at least " } else { "" },
                count.n
            ));
        }
    }
    for glob in &case.stderr {
        if !run.stderr.lines().any(|l| glob_matches(glob, l)) {
            out.push(format!("no stderr line matches {glob:?}"));
        }
    }
    out
}

/// Every case of the corpus, sorted by name; `KSCOPE_CORPUS` picks some.
fn corpus() -> Vec<Result<Case, String>> {
    let wanted: Option<Vec<String>> = std::env::var("KSCOPE_CORPUS")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let mut paths: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .unwrap_or_else(|e| panic!("cannot list {CORPUS}: {e}"))
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "stp"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|path| {
            let name = path.file_stem()?.to_string_lossy().into_owned();
            if wanted.as_ref().is_some_and(|w| !w.contains(&name)) {
                return None;
            }
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            Some(Case::parse(&name, path, text).map_err(|e| format!("{name}.stp: {e}")))
        })
        .collect()
}

/// A failed case, with everything needed to see why.
fn report(case: &Case, run: &Run, problems: &[String]) -> String {
    let mut text = format!("=== {} ({})\n", case.name, case.path.display());
    for p in problems {
        text.push_str(&format!("  - {p}\n"));
    }
    text.push_str(&format!(
        "command: kscope probe {}\n--- script ---\n{}",
        run.arguments.join(" "),
        case.script
    ));
    if !case.script.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "--- stdout ---\n{}--- stderr ---\n{}",
        run.stdout, run.stderr
    ));
    if let Some(Ok(file)) = &run.file {
        text.push_str(&format!("--- output file ---\n{file}"));
    }
    text
}

#[test]
fn every_case_of_the_probe_corpus_gives_its_expected_output() {
    if !live("the kscope probe corpus", missing_root()) {
        return;
    }
    let mut failures = Vec::new();
    let mut passed = 0;
    let started = Instant::now();
    for case in corpus() {
        let case = match case {
            Ok(case) => case,
            Err(e) => {
                failures.push(format!("=== {e}\n"));
                continue;
            }
        };
        // Removed when dropped, a failing assertion included.
        let tmp_holder = tempfile::Builder::new()
            .prefix("kscope-corpus-")
            .tempdir()
            .expect("a temp dir");
        let tmp = tmp_holder.path().to_path_buf();
        let run = {
            // kscope mounts tracefs when it needs it and unmounts it
            // after: one test at a time may do that.
            let _lock = TracefsLock::acquire();
            run(&case, &tmp)
        };
        let problems = problems(&case, &run);
        eprintln!(
            "corpus: {:<28} {:>6.2} s  {}",
            case.name,
            run.elapsed.as_secs_f64(),
            if problems.is_empty() { "ok" } else { "FAILED" }
        );
        if problems.is_empty() {
            passed += 1;
        } else {
            failures.push(report(&case, &run, &problems));
        }
    }
    eprintln!(
        "corpus: {passed} passed, {} failed in {:.1} s",
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} corpus cases failed:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_corpus_has_at_least_30_cases_and_every_header_parses() {
    if std::env::var_os("KSCOPE_CORPUS").is_some() {
        return;
    }
    let cases = corpus();
    let errors: Vec<&String> = cases.iter().filter_map(|c| c.as_ref().err()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let failing = cases
        .iter()
        .flatten()
        .filter(|c| c.exit != 0 && c.stderr.is_empty())
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>();
    assert!(
        failing.is_empty(),
        "cases that must fail must also say how (stderr:): {failing:?}"
    );
}

#[test]
fn globs_match_any_run_with_a_star_and_the_rest_literally() {
    assert!(glob_matches("read performed", "read performed"));
    assert!(!glob_matches("read performed", "read performed!"));
    assert!(glob_matches("*", ""));
    assert!(glob_matches("a*", "abc"));
    assert!(glob_matches("*c", "abc"));
    assert!(glob_matches("a*b*c", "a-b-b-c"));
    assert!(!glob_matches("a*b*c", "a-c-b"));
    assert!(glob_matches("[%-10s]*", "[%-10s] x"));
    assert!(!glob_matches("ab*ba", "aba"));
    assert!(glob_matches("x?y", "x?y"));
    assert!(!glob_matches("x?y", "xzy"));
}

#[test]
fn headers_give_directives_and_reject_misspelt_ones() {
    let text = "# Counts reads.\n# command: dd if=/dev/zero of=/dev/null count=3\n\
        # expect: n = *\n# expect-min: read * 3\n# signal: TERM after 200\n\
        # exit: 1\n# timeout: 4\nprobe begin {}\n# expect: not a directive\n";
    let case = Case::parse("c", PathBuf::from("c.stp"), text.into()).unwrap();
    assert_eq!(
        case.command.as_deref(),
        Some("dd if=/dev/zero of=/dev/null count=3")
    );
    assert_eq!(case.expect, ["n = *"]);
    assert_eq!(
        case.counts,
        [LineCount {
            glob: "read *".into(),
            n: 3,
            at_least: true
        }]
    );
    assert_eq!(
        case.signal,
        Some((SignalName::Term, Duration::from_millis(200)))
    );
    assert_eq!((case.exit, case.timeout), (1, Duration::from_secs(4)));
    let args = case.arguments(Path::new("/t"), None);
    assert_eq!(args[0], "-v");
    assert_eq!(
        &args[args.len() - 2..],
        ["dd if=/dev/zero of=/dev/null count=3", "c.stp"]
    );

    for bad in [
        "# expct: x\n",
        "# expect-count: x\n",
        "# signal: KILL after 3\n",
        "# argv: -l x\n# command: true\n",
    ] {
        assert!(
            Case::parse("c", PathBuf::from("c.stp"), bad.into()).is_err(),
            "{bad}"
        );
    }
}
