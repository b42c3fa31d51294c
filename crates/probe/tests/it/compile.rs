//! The compiler's passes after parsing: resolution and type errors as a
//! user sees them (against a catalog made of format files written the
//! kernel's way), and the generated BPF run for real: each script's
//! `begin` probe computes something and prints it, and the output must be
//! what SystemTap's semantics give. Running the code (the verifier, then
//! the program) tests code generation; comparing bytecode would not.

use std::time::Duration;

use kscope_probe::catalog::Catalog;
use kscope_probe::codegen::{Generated, Options};
use kscope_probe::host::HostCode;
use kscope_probe::points::{Attachment, Kernel};
use kscope_probe::runtime::{Ending, RuntimeError, Session};
use kscope_probe::{Diagnostic, SourceFile, compile, parse, resolve};

/// Format files as this machine's kernel writes them (tests/data/README.md).
const SYS_ENTER_READ: &str = include_str!("../data/sys_enter_read.format");
const SYS_EXIT_READ: &str = include_str!("../data/sys_exit_read.format");

fn catalog() -> Catalog {
    Catalog::from_formats([("syscalls", SYS_ENTER_READ), ("syscalls", SYS_EXIT_READ)])
        .expect("the formats parse")
}

/// The options of these tests: `target()` is 4242; statistics merge over
/// every possible CPU.
fn options() -> Options {
    Options {
        target: 4242,
        realtime_offset_ns: kscope_probe::sys::realtime_offset_ns(),
        cpus: kscope_bpf::possible_cpu_ids_end().unwrap_or(1),
        ..Options::default()
    }
}

/// A kernel of `catalog`'s tracepoints, HZ 250, without kprobes or BTF.
fn kernel(catalog: &Catalog) -> Kernel<'_> {
    Kernel {
        catalog,
        hz: 250,
        has_kprobes: false,
        btf: None,
    }
}

/// Compiles `text` (named t.stp) against the catalog of the read
/// syscall, with `target()` 4242.
fn compiled(text: &str) -> (SourceFile, Result<(Generated, Vec<Attachment>), Diagnostic>) {
    let file = SourceFile::new("t.stp", text);
    let script = parse(&file).expect("the script parses");
    let catalog = catalog();
    let kernel = kernel(&catalog);
    let result = compile(&file, &script, &kernel, &options());
    (file, result)
}

/// A session of `text`, loaded, its host probes interpreted.
fn loaded(text: &str) -> (SourceFile, Result<Session, RuntimeError>) {
    let file = SourceFile::new("t.stp", text);
    let script = parse(&file).expect("the script parses");
    let catalog = catalog();
    let kernel = kernel(&catalog);
    let resolved = resolve(&script, &kernel).unwrap_or_else(|d| panic!("{}", d.render(&file)));
    let generated = resolved
        .generate(&file, &script, &options())
        .unwrap_or_else(|d| panic!("{}", d.render(&file)));
    let host = HostCode::new(file.clone(), script, resolved.types, 4242);
    let session = Session::load(generated, resolved.attachments, host);
    (file, session)
}

/// The rendered error of compiling `text`.
pub(crate) fn error(text: &str) -> String {
    match compiled(text) {
        (_, Ok(_)) => panic!("{text:?} compiled"),
        (file, Err(d)) => d.render(&file),
    }
}

#[test]
fn resolution_errors_name_the_nearest_thing_that_exists() {
    assert_eq!(
        error("probe syscall.raed { }"),
        "t.stp:1:7: error: no syscall tracepoint matches 'raed'; did you mean 'syscall.read'?\n\
         probe syscall.raed { }\n      ^^^^^^^^^^^^\n"
    );
    assert!(error("probe vfs.read { }").contains(
        "'vfs.read' needs a kprobe on kernel.function(\"vfs_read\"), and this kernel has no kprobes"
    ));
    assert!(
        error("probe vfs.read { }").contains("the nearest probe that works here is syscall.read")
    );
    assert!(error("probe kernel.function(\"do_sys_open\") { }").contains("needs a kprobe"));
    assert!(error("probe timer.ms(0) { }").contains("needs a positive interval"));
    assert!(error("probe bgein { }").contains("did you mean 'begin'?"));
    assert!(
        error("probe syscall.read { printf(\"%d\\n\", $fdd) }").contains(
            "unknown target variable '$fdd'; did you mean '$fd'? (the probe has $fd $buf $count)"
        )
    );
    assert!(error("probe syscall.read { x = retval }").contains("unknown variable 'retval'"));
}

#[test]
fn type_errors_show_both_places() {
    assert_eq!(
        error("probe begin { x = \"a\"\n x = 1 }"),
        "t.stp:2:2: error: type mismatch: 'x' is a string, but a long is needed here\n x = 1 }\n ^\n\
         t.stp:1:15: note: 'x' got its type here\nprobe begin { x = \"a\"\n              ^\n"
    );
    assert!(
        error("probe begin { printf(\"%d %s\\n\", 1) }")
            .contains("the format takes 2 argument(s), and 1 are given")
    );
    assert!(error("probe begin { printf(\"%s\\n\", 1) }").contains("a string is needed here"));
    assert!(
        error("probe begin { if (\"a\" == 1) next }")
            .contains("cannot compare a string with a long")
    );
    assert!(error("probe begin { exit(1) }").contains("exit() takes 0 argument(s)"));
    assert!(error("probe begin { x = execnme() }").contains("did you mean 'execname'?"));
    assert!(error("function f(n) { return f(n) } probe begin { f(1) }").contains("calls itself"));
    assert!(error("probe begin { return 1 }").contains("'return' outside a function"));
    assert!(error("probe begin { break }").contains("inside a loop"));
    assert!(error("probe begin { $x = 1 }").contains("read-only"));
    assert!(
        error("probe begin { s = sprintf(\"%.3s\", \"abcd\") }")
            .contains("cannot do it (printf can)")
    );
}

/// Runs `text`, whose `begin` probe prints and calls exit(); returns the
/// output. None when the machine cannot run BPF (the live gate decides).
pub(crate) fn run(text: &str) -> Option<String> {
    if !kscope_testkit::live("running generated BPF", kscope_testkit::missing_root()) {
        return None;
    }
    let mut session = loaded(text).1.unwrap_or_else(|e| panic!("{text}: {e:?}"));
    let (out, ending) = run_for_five_seconds(&mut session);
    assert_eq!(ending, Ending::Exit, "{text}");
    Some(out)
}

/// Runs a loaded session for at most five seconds: its output and ending.
fn run_for_five_seconds(session: &mut Session) -> (String, Ending) {
    let mut out = Vec::new();
    let started = std::time::Instant::now();
    let ending = session
        .run(
            &mut out,
            &mut || started.elapsed() > Duration::from_secs(5),
            &mut || {},
        )
        .expect("the session runs");
    (String::from_utf8(out).expect("UTF-8 output"), ending)
}

/// Runs `text`, which must end with a runtime error; returns its message.
/// None when the machine cannot run BPF.
pub(crate) fn run_to_error(text: &str) -> Option<String> {
    if !kscope_testkit::live("running generated BPF", kscope_testkit::missing_root()) {
        return None;
    }
    let mut session = loaded(text).1.unwrap_or_else(|e| panic!("{text}: {e:?}"));
    match session.run(&mut Vec::new(), &mut || false, &mut || {}) {
        Ok(Ending::Error(message)) => Some(message),
        other => panic!("{text}: ended with {other:?}"),
    }
}

pub(crate) fn assert_prints(body: &str, expected: &str) {
    let text = format!("probe begin {{ {body}\n exit() }}");
    if let Some(out) = run(&text) {
        assert_eq!(out, expected, "{body}");
    }
}

#[test]
fn arithmetic_follows_c_on_signed_longs() {
    assert_prints(
        r#"printf("%d %d %d %d\n", 7 / 2, -7 / 2, 7 / -2, -7 / -2)"#,
        "3 -3 -3 3\n",
    );
    assert_prints(
        r#"printf("%d %d %d %d\n", 7 % 3, -7 % 3, 7 % -3, -7 % -3)"#,
        "1 -1 1 -1\n",
    );
    assert_prints(
        r#"printf("%d %d %d %d\n", 1 << 62, -16 >> 2, 5 & 3, 5 | 3 ^ 1)"#,
        "4611686018427387904 -4 1 7\n",
    );
    assert_prints(
        r#"printf("%d %d %d %d %d\n", 0x7fffffffffffffff + 1, -(-5), ~0, !7, !0)"#,
        "-9223372036854775808 5 -1 0 1\n",
    );
    assert_prints(
        r#"printf("%d%d%d%d%d%d\n", 1 < 2, 2 <= 2, 3 > 4, -1 >= 0, 1 == 1, 1 != 1)"#,
        "110010\n",
    );
    assert_prints(r#"x = 5; y = x++ + ++x; printf("%d %d\n", x, y)"#, "7 12\n");
    assert_prints(
        r#"x = 10; x -= 3; x *= 2; x /= 4; x %= 2; x <<= 3; x |= 1; printf("%d\n", x)"#,
        "9\n",
    );
    assert_prints(r#"printf("%d %d\n", 0 && 1 / 0, 1 || 1 / 0)"#, "0 1\n");
    assert_prints(r#"printf("%d\n", 3 > 2 ? 10 : 20)"#, "10\n");
}

#[test]
fn strings_compare_join_and_cut() {
    assert_prints(
        r#"a = "abc"; b = "abd"; printf("%d%d%d%d%d\n", a < b, a == "abc", a != b, b > a, "" < a)"#,
        "11111\n",
    );
    assert_prints(
        r#"s = "ab" . "cd"; s .= "ef"; printf("%s %d\n", s, strlen(s))"#,
        "abcdef 6\n",
    );
    assert_prints(
        r#"printf("[%s][%s][%s][%s]\n", substr("hello", 1, 3), substr("hello", 3, 10), substr("hello", 9, 2), substr("hello", 0, 0))"#,
        "[ell][lo][][]\n",
    );
    assert_prints(
        r#"printf("%d%d%d%d\n", isinstr("kscope", "cop"), isinstr("kscope", "pe"), isinstr("kscope", "x"), isinstr("ab", "abc"))"#,
        "1100\n",
    );
    assert_prints(r#"printf("%d\n", isinstr("abc", ""))"#, "1\n");
    // A join longer than a string holds is cut at 127 bytes.
    assert_prints(
        r#"s = "0123456789"; t = ""; for (i = 0; i < 14; i++) t .= s; printf("%d\n", strlen(t))"#,
        "127\n",
    );
    assert_prints(
        r#"s = sprintf("%s=%-4d|%x", "n", 42, 255); println(s)"#,
        "n=42  |ff\n",
    );
}

#[test]
fn control_flow_functions_and_globals() {
    if let Some(out) = run(r#"
        global total = 100, label = "sum"
        function add(a, b) { return a + b }
        function tag:string (s:string) { return "<" . s . ">" }
        function nothing() { return }
        probe begin {
            for (i = 0; i < 10; i++) {
                if (i == 2) continue
                if (i == 6) break
                total = add(total, i)
            }
            n = 0
            while (n < 3) n++
            nothing()
            printf("%s %s %d %d\n", tag(label), tag("x"), total, n)
            exit()
        }
    "#)
    {
        assert_eq!(out, "<sum> <x> 113 3\n");
    }
}

#[test]
fn builtins_give_the_running_process() {
    let Some(out) = run(r#"probe begin {
        printf("%s %d %d %d %d\n", execname(), tid() > 0, target(), pid() > 0, cpu() < 4096)
        printf("%s|%s|%d\n", pp(), probefunc(), gettimeofday_s() > 1700000000)
        exit()
    }"#) else {
        return;
    };
    let comm: String = std::fs::read_to_string("/proc/thread-self/comm")
        .unwrap_or_default()
        .trim()
        .to_string();
    let first = out.lines().next().unwrap_or_default();
    // begin runs in this thread (BPF_PROG_TEST_RUN), so execname() is
    // the test thread's name.
    assert!(first.ends_with(" 1 4242 1 1"), "{out}");
    assert!(
        comm.starts_with(first.split(' ').next().unwrap_or("?")),
        "{out} vs {comm}"
    );
    assert_eq!(out.lines().nth(1), Some("begin||1"));
}

#[test]
fn a_runtime_error_ends_the_session_and_runs_error_then_end() {
    if !kscope_testkit::live("running generated BPF", kscope_testkit::missing_root()) {
        return;
    }
    let text = r#"
        probe begin { x = 0; printf("before\n"); printf("%d\n", 1 / x); printf("never\n") }
        probe error { printf("error probe\n") }
        probe end { printf("end probe\n") }
    "#;
    let mut session = loaded(text).1.expect("loads");
    let mut out = Vec::new();
    let ending = session
        .run(&mut out, &mut || false, &mut || {})
        .expect("runs");
    assert_eq!(
        ending,
        Ending::Error("division by 0 at t.stp:2:65 in begin".into())
    );
    assert_eq!(
        String::from_utf8_lossy(&out),
        "before\nerror probe\nend probe\n"
    );
}

#[test]
fn a_loop_the_verifier_cannot_bound_is_reported_at_the_loop() {
    if !kscope_testkit::live("loading generated BPF", kscope_testkit::missing_root()) {
        return;
    }
    let text = "global g\nprobe begin {\n  while (g < 10) { }\n}\n";
    let (file, session) = loaded(text);
    match session {
        Ok(_) => panic!("an endless loop loaded"),
        Err(RuntimeError::Rejected { diagnostic, .. }) => {
            let rendered = diagnostic.render(&file);
            assert!(
                rendered.contains("could not prove that this loop ends"),
                "{rendered}"
            );
            assert!(rendered.starts_with("t.stp:3:"), "{rendered}");
        }
        Err(other) => panic!("{other:?}"),
    }
}

#[test]
fn the_longest_chain_the_parser_accepts_compiles() {
    // 60 operators (the parser allows 64 levels in all), compiled in a
    // test thread's 2 MiB stack: every pass recurses on the tree; a chain
    // of 100,000 is a parse error.
    let text = format!(
        "probe syscall.read {{ x = 1{}; printf(\"%d\\n\", x) }}",
        " + 1".repeat(60)
    );
    let (file, result) = compiled(&text);
    if let Err(d) = result {
        panic!("{}", d.render(&file));
    }
    let text = format!("probe syscall.read {{ x = 1{} }}", " + 1".repeat(100_000));
    let file = SourceFile::new("t.stp", &text);
    assert!(parse(&file).is_err());
}

#[test]
fn a_script_without_probes_is_an_error() {
    // SystemTap refuses it too; running it would wait for nothing.
    assert_eq!(
        error(""),
        "t.stp:1:1: error: the script has no probes; add one, such as 'probe begin { printf(\"hello\\n\") }'\n\n^\n"
    );
    assert!(error("# only a comment\n").contains("the script has no probes"));
    assert!(error("global n\nfunction f() { return 1 }\n").contains("the script has no probes"));
}

#[test]
fn seven_isinstr_calls_in_one_condition_load_and_answer() {
    // The verifier gave up on this (1,000,001 instructions processed).
    let needles = [
        "x",
        "seven",
        "01234567",
        "012345678",
        "0123456789abcdef",
        "0123456789abcdefg",
        "fg",
    ];
    let hay = "the seven 0123456789abcdefg";
    let any = needles
        .iter()
        .map(|n| format!("isinstr(s, \"{n}\")"))
        .collect::<Vec<_>>()
        .join(" || ");
    let each = needles
        .iter()
        .map(|n| format!("printf(\"%d\", isinstr(s, \"{n}\"));"))
        .collect::<String>();
    assert_prints(
        &format!("s = \"{hay}\"; if ({any}) printf(\"any\\n\"); {each} printf(\"\\n\")"),
        "any\n0111111\n",
    );
    // Needles around the 8-byte words the comparison works in: present at
    // the end, cut by one byte, or one byte longer than the haystack.
    assert_prints(
        r#"s = "abcdefghijklmnopq"; printf("%d%d%d%d%d%d\n", isinstr(s, "ijklmnopq"), isinstr(s, "abcdefghijklmnopq"), isinstr(s, "abcdefghijklmnopqr"), isinstr(s, "q"), isinstr(s, "hijklmnpq"), isinstr(s, "abcdefgi"))"#,
        "110100\n",
    );
}

/// Counts the writes the session makes.
struct CountingWriter {
    bytes: Vec<u8>,
    writes: usize,
}

impl std::io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writes += 1;
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_batch_of_output_is_written_at_once() {
    if !kscope_testkit::live("running generated BPF", kscope_testkit::missing_root()) {
        return;
    }
    // 200 lines in one begin probe arrive in one batch: one write for
    // all (each printf was its own write(2): 59,318 a second).
    let text = "probe begin { for (i = 0; i < 200; i++) printf(\"%d\\n\", i); exit() }";
    let mut session = loaded(text).1.expect("loads");
    let mut out = CountingWriter {
        bytes: Vec::new(),
        writes: 0,
    };
    let ending = session
        .run(&mut out, &mut || false, &mut || {})
        .expect("runs");
    assert_eq!(ending, Ending::Exit);
    let expected: String = (0..200).map(|i| format!("{i}\n")).collect();
    assert_eq!(String::from_utf8_lossy(&out.bytes), expected);
    assert!(out.writes <= 2, "{} writes for 200 lines", out.writes);
}

/// Runs `body` in a begin probe compiled to BPF and in one interpreted in
/// kscope's process (a `delete` of a whole array makes it a host probe);
/// both session's output and ending.
fn run_both_ways(body: &str) -> Option<[(String, Ending); 2]> {
    if !kscope_testkit::live("running generated BPF", kscope_testkit::missing_root()) {
        return None;
    }
    let run = |host: &str| {
        let text = format!(
            "global arr, s, g = 3, name = \"n\"\nprobe begin {{ arr[0] = 0; {host}\n{body}\nexit() }}"
        );
        let mut session = loaded(&text).1.unwrap_or_else(|e| panic!("{text}: {e:?}"));
        // The host probe has no program.
        assert_eq!(session.program_count(), usize::from(host.is_empty()));
        run_for_five_seconds(&mut session)
    };
    Some([run(""), run("delete arr;")])
}

#[test]
fn a_probe_run_in_kscopes_process_computes_what_bpf_computes() {
    let bodies = [
        r#"printf("%d %d %d %d %d %d\n", 7 / -2, -7 % 3, 1 << 63, -16 >> 2, ~5, !0)"#,
        r#"x = 9223372036854775807; x++; printf("%d %d\n", x, x * 3)"#,
        r#"t = "0123456789"; u = ""; for (i = 0; i < 15; i++) u .= t; printf("%d %s\n", strlen(u), substr(u, 120, 10))"#,
        r#"printf("[%s] [%s] [%s] %d %d %d\n", substr("hello", 1, 3), substr("hello", 5, 1), substr("hello", -1, 2), isinstr("hello", "llo"), isinstr("hello", ""), isinstr("he", "hello"))"#,
        r#"printf("%d %d %d %d\n", "abc" < "abd", "ab" < "abc", "b" > "abc", "x" == "x")"#,
        r#"printf("%s|%s|%s\n", sprintf("%5d", 42), sprintf("%-4s", "ab"), sprintf("%x %X", 255, 255))"#,
        r#"s <<< 5; s <<< -3; s <<< 10; printf("%d %d %d %d %d %d\n", @count(s), @sum(s), @min(s), @max(s), @avg(s), @variance(s))"#,
        r#"arr[1] = 1; arr[2] += 5; arr[2]++; printf("%d %d %d\n", arr[2], 2 in arr, 3 in arr)"#,
        r#"g += 4; g *= 2; a = g++; b = --g; ++g; name .= "ame"; printf("%d %d %d %s %s %d\n", g, a, b, name, pp(), target())"#,
        r#"x = 0; printf("before\n"); y = 5 / x; printf("after\n")"#,
        r#"if (0) s <<< 1; printf("%d\n", @max(s))"#,
    ];
    for body in bodies {
        let Some([bpf, host]) = run_both_ways(body) else {
            return;
        };
        assert_eq!(host, bpf, "{body}");
    }
}
