//! The interpreter on small scripts, against real maps made as a session
//! makes them: each script's host probes run here and their output must
//! be what SystemTap's semantics (and kscope's BPF code) give. Needs root
//! for the maps; skips otherwise (fails under KSCOPE_REQUIRE_LIVE=1).

use super::{HostCode, HostError, Outcome, Process};
use crate::codegen::{EXIT_FLAG, Generated, Options};
use crate::points::Attachment;
use crate::runtime::Maps;
use crate::testing::catalog;
use crate::{SourceFile, parse, resolve};

/// A script compiled and its maps created.
struct Bed {
    generated: Generated,
    attachments: Vec<Attachment>,
    host: HostCode,
    maps: Maps,
}

impl Bed {
    /// `text` (named t.stp) compiled, its maps made; None when the
    /// machine cannot make BPF maps.
    fn new(text: &str) -> Option<Bed> {
        if !kscope_testkit::live("host probes on BPF maps", kscope_testkit::missing_root()) {
            return None;
        }
        let file = SourceFile::new("t.stp", text);
        let script = parse(&file).unwrap_or_else(|d| panic!("{}", d.render(&file)));
        let catalog = catalog();
        let kernel = crate::testing::kernel(&catalog);
        let resolved = resolve(&script, &kernel).unwrap_or_else(|d| panic!("{}", d.render(&file)));
        let options = Options {
            target: 4242,
            cpus: 2,
            ..Options::default()
        };
        let generated = resolved
            .generate(&file, &script, &options)
            .unwrap_or_else(|d| panic!("{}", d.render(&file)));
        let maps = Maps::create(&generated).expect("the maps");
        Some(Bed {
            generated,
            host: HostCode::new(file, script, resolved.types, 4242),
            attachments: resolved.attachments,
            maps,
        })
    }

    /// Runs the host probe at `point`: its output and outcome.
    fn run(&self, point: &str) -> Result<(String, Outcome), HostError> {
        let attachment = self
            .attachments
            .iter()
            .find(|a| a.name == point)
            .unwrap_or_else(|| panic!("no attachment {point}"));
        assert!(self.host.is_host(attachment), "{point} is not a host probe");
        let process = Process {
            pid: 10,
            tid: 11,
            ppid: 1,
            uid: 0,
            gid: 0,
            cpu: 0,
            comm: "kscope".into(),
        };
        let mut out = Vec::new();
        let shared = self.maps.shared(&self.generated);
        let outcome = self.host.run(attachment, shared, &process, &mut out)?;
        Ok((String::from_utf8(out).expect("UTF-8"), outcome))
    }

    /// The output of the host probe at `point`, which must not fail.
    fn output(&self, point: &str) -> String {
        self.run(point).unwrap_or_else(|e| panic!("{point}: {e}")).0
    }

    /// The map of array `name`.
    fn map(&self, name: &str) -> &kscope_bpf::Map {
        let shared = self.maps.shared(&self.generated);
        let i = shared
            .arrays
            .iter()
            .position(|a| a.name == name)
            .expect("an array");
        &shared.maps[i]
    }
}

/// A host probe: `delete` of an unused array makes it one.
const HOST: &str = "global unused; function host() { delete unused[1]; delete unused }";

#[test]
fn operators_strings_loops_and_functions_behave_as_in_bpf() {
    let text = format!(
        r#"{HOST}
function fact(n) {{ r = 1; for (i = 2; i <= n; i++) r *= i; return r }}
function bang(s) {{ s .= "!"; return s }}
probe begin {{
    host()
    x = 7
    printf("%d %d %d %d %d\n", x / 2, -x / 2, -x % 2, x << 2, ~x & 0xff)
    s = "ab"; s .= "cd"
    printf("%s %d %d %d\n", s, s == "abcd", s < "abd", "b" > s)
    printf("%d %s %s\n", fact(5), bang("hi"), bang("ho"))
    printf("%d %d %d\n", x > 3 ? 10 : 20, !x, 0 && 1 / 0)
    i = 0; while (1) {{ i++; if (i < 3) continue; if (i > 5) break }}
    printf("%d [%s] [%s] %d %d\n", i, substr("hello", 1, 3), substr("hello", 9, 2), isinstr("hello", "ll"), isinstr("hello", "lo!"))
    printf("%d %s|%-4s|\n", strlen(sprintf("%05d", 42)), sprintf("%x", 255), "ab")
    y = x++; z = --x
    printf("%d %d %d\n", x, y, z)
    print("a", 1, "b"); println(2)
    printf("%s %d %d %s %s\n", pp(), pid(), target(), execname(), probefunc())
    printf("[%s]\n", user_string(0))
    next
    printf("not reached\n")
}}"#
    );
    let Some(bed) = Bed::new(&text) else {
        return;
    };
    assert_eq!(
        bed.output("begin"),
        "3 -3 -1 28 248\n\
         abcd 1 1 1\n\
         120 hi! ho!\n\
         10 0 0\n\
         6 [ell] [] 1 0\n\
         5 ff|ab  |\n\
         7 7 7\n\
         a1b2\n\
         begin 10 4242 kscope \n\
         []\n"
    );
}

#[test]
fn a_long_string_is_cut_at_127_bytes() {
    let text = format!(
        r#"{HOST}
probe begin {{ host(); s = "0123456789"; t = ""; for (i = 0; i < 20; i++) t .= s; printf("%d\n", strlen(t)) }}"#
    );
    let Some(bed) = Bed::new(&text) else {
        return;
    };
    assert_eq!(bed.output("begin"), "127\n");
}

#[test]
fn globals_are_shared_with_bpf_in_place() {
    let text = format!(
        r#"{HOST}
global n = 5, name = "x", m
probe begin {{ host(); n++; n += 10; n *= 2; name .= "yz"; m = n - 1; delete name }}
probe end {{ host(); printf("%d [%s] %d\n", n, name, m) }}"#
    );
    let Some(bed) = Bed::new(&text) else {
        return;
    };
    bed.output("begin");
    let value = bed
        .maps
        .globals_at(bed.generated.globals.size)
        .expect("the globals");
    let at = |name: &str| {
        let var = bed.generated.globals.vars.iter().find(|v| v.name == name);
        var.expect("a global").offset as usize
    };
    let long =
        |name: &str| i64::from_ne_bytes(value[at(name)..at(name) + 8].try_into().expect("8"));
    assert_eq!(long("n"), 32);
    assert_eq!(long("m"), 31);
    assert_eq!(bed.output("end"), "32 [] 31\n");
}

#[test]
fn foreach_walks_a_snapshot_in_the_order_asked() {
    let text = format!(
        r#"{HOST}
global a, pair, names
probe begin {{
    host()
    a[3] = 30; a[1] = 50; a[2] = 10; a[4] = 50
    foreach (k in a) printf("%d ", k); printf("\n")
    foreach (k in a- limit 3) printf("%d:%d ", k, a[k]); printf("\n")
    foreach (v = [k] in a+) printf("%d=%d ", k, v); printf("\n")
    foreach ([k-] in a) {{ if (k == 2) continue; printf("%d ", k); delete a[k] }}; printf("\n")
    printf("%d %d\n", 2 in a, 3 in a)
    pair["b", 1] = 1; pair["a", 2] = 2; pair["a", 1] = 3
    foreach ([s, i] in pair) printf("%s%d ", s, i); printf("\n")
    foreach ([s, i+] in pair) printf("%s%d ", s, i); printf("\n")
    names["x"] = "1"; names["y"] = names["x"] . "2"
    foreach (text = [name] in names-) printf("%s=%s ", name, text); printf("\n")
    delete pair
    foreach ([s, i] in pair) printf("never\n")
    foreach (k in a) {{ if (k > 0) break }}
    printf("%d\n", k)
}}"#
    );
    let Some(bed) = Bed::new(&text) else {
        return;
    };
    assert_eq!(
        bed.output("begin"),
        "1 2 3 4 \n\
         1:50 4:50 3:30 \n\
         2=10 3=30 1=50 4=50 \n\
         4 3 1 \n\
         1 0\n\
         a1 a2 b1 \n\
         a1 b1 a2 \n\
         y=12 x=1 \n\
         2\n"
    );
    assert_eq!(bed.map("pair").keys().expect("keys").len(), 0);
}

#[test]
fn statistics_merge_over_cpus_and_sort_by_their_aggregates() {
    let text = format!(
        r#"{HOST}
global lat, total
probe begin {{
    host()
    lat["a"] <<< 10; lat["a"] <<< 30; lat["b"] <<< 5; lat["c"] <<< 100
    total <<< 4; total <<< 8; total <<< -3
}}
probe end {{
    host()
    foreach (k in lat @max-) printf("%s %d %d %d %d\n", k, @count(lat[k]), @sum(lat[k]), @min(lat[k]), @max(lat[k]))
    foreach (k in lat+) printf("%s ", k); printf("\n")
    printf("%d %d %d %d %d %d\n", @count(total), @sum(total), @min(total), @max(total), @avg(total), @variance(total))
    printf("%d\n", @variance(lat["b"]))
}}"#
    );
    let Some(bed) = Bed::new(&text) else {
        return;
    };
    bed.output("begin");
    // What a BPF program on CPU 1 added to lat["b"]: 7 and 1.
    let map = bed.map("lat");
    let mut key = vec![0u8; 128];
    key[0] = b'b';
    let mut value = vec![0u8; map.value_len()];
    map.lookup(&key, &mut value).expect("lat[b]");
    let stride = value.len() / kscope_bpf::possible_cpus().expect("cpus") as usize;
    if stride < value.len() {
        for (i, n) in [2i64, 8, 1, 7, 50].iter().enumerate() {
            value[stride + 8 * i..stride + 8 * i + 8].copy_from_slice(&n.to_ne_bytes());
        }
        map.update(&key, &value).expect("CPU 1's slot");
    }
    let merged = stride < value.len();
    let b = if merged { "b 3 13 1 7" } else { "b 1 5 5 5" };
    let by_count = if merged { "c a b " } else { "b c a " };
    assert_eq!(
        bed.output("end"),
        format!(
            "c 1 100 100 100\na 2 40 10 30\n{b}\n{by_count}\n3 9 -3 8 3 31\n{}\n",
            if merged { 9 } else { 0 }
        )
    );
}

#[test]
fn histograms_print_the_merged_buckets() {
    let text = format!(
        r#"{HOST}
global s, lin
probe begin {{ host(); s <<< 1; s <<< 2; s <<< 3; s <<< 0; lin <<< 5; lin <<< 25; lin <<< 99 }}
probe end {{ print(@hist_log(s)); print(@hist_linear(lin, 0, 30, 10)) }}"#
    );
    let Some(bed) = Bed::new(&text) else {
        return;
    };
    bed.output("begin");
    // SystemTap's charts (crate::stats): the merged buckets, empty ones
    // shown around the data, a blank line after each.
    let bar = |n: usize| format!("{:<50}", "@".repeat(n));
    let expected = format!(
        "value |{dashes} count\n    0 |{one} 1\n    1 |{one} 1\n    2 |{two} 2\n    4 |{none} 0\n    8 |{none} 0\n\n\
         value |{dashes} count\n    0 |{one} 1\n   10 |{none} 0\n   20 |{one} 1\n   30 |{none} 0\n  >30 |{one} 1\n\n",
        dashes = "-".repeat(50),
        one = bar(1),
        two = bar(2),
        none = bar(0),
    );
    assert_eq!(bed.output("end"), expected);
}

#[test]
fn runtime_errors_name_the_place_and_the_point() {
    let text = format!(
        r#"{HOST}
global s
probe begin {{ host(); x = 0; printf("before\n"); y = 10 / x }}
probe end {{ host(); printf("%d\n", @min(s)) }}
probe timer.ms(100) {{ host(); s <<< 1; while (1) {{ }} }}"#
    );
    let Some(bed) = Bed::new(&text) else {
        return;
    };
    match bed.run("begin") {
        Err(HostError::Script(m)) => assert_eq!(m, "division by 0 at t.stp:3:54 in begin"),
        other => panic!("{other:?}"),
    }
    match bed.run("end") {
        Err(HostError::Script(m)) => assert_eq!(
            m,
            "empty aggregate: @min() of a statistic with no values at t.stp:4:36 in end"
        ),
        other => panic!("{other:?}"),
    }
    match bed.run("timer.ms(100)") {
        Err(HostError::Script(m)) => assert!(
            m.starts_with(
                "the handler ran more than 10000000 steps (an endless loop?) at t.stp:5:"
            ) && m.ends_with(" in timer.ms(100)"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn exit_raises_the_flag_and_the_handler_goes_on() {
    let text = format!(r#"{HOST} probe end {{ host(); exit(); printf("after\n") }}"#);
    let Some(bed) = Bed::new(&text) else {
        return;
    };
    let (out, outcome) = bed.run("end").expect("runs");
    assert_eq!(out, "after\n");
    assert!(outcome.exited);
    let value = bed
        .maps
        .globals_at(bed.generated.globals.size)
        .expect("the globals");
    assert_eq!(value[EXIT_FLAG as usize], 1);
}
