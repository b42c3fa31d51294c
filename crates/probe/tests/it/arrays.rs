//! Arrays and statistics: the checker's errors as a user sees them, and
//! the BPF that updates and reads them run for real in a `begin` probe
//! (whose BPF runs in kscope's own process with BPF_PROG_TEST_RUN).

use super::compile::{error, run, run_to_error};

/// Runs a begin probe of `body` with `globals` declared, which must print
/// `expected`.
fn assert_prints(globals: &str, body: &str, expected: &str) {
    let text = format!("global {globals}\nprobe begin {{ {body}\n exit() }}");
    if let Some(out) = run(&text) {
        assert_eq!(out, expected, "{body}");
    }
}

#[test]
fn array_type_clashes_show_both_places() {
    assert_eq!(
        error("global a\nprobe begin { a[1] = \"x\"\n a[2] = 3 }"),
        "t.stp:3:2: error: type mismatch: array 'a' holds a string, but a long is needed here\n a[2] = 3 }\n ^^^^\n\
         t.stp:2:15: note: 'a' got its type here\nprobe begin { a[1] = \"x\"\n              ^^^^\n"
    );
    let keys = error("global a\nprobe begin { a[1] = 1\n a[\"k\"] = 2 }");
    assert!(
        keys.contains("type mismatch: key 1 of array 'a' is a long, but this is a string"),
        "{keys}"
    );
    assert!(
        keys.contains("note: key 1 of array 'a' is a long because of this"),
        "{keys}"
    );
    let count = error("global a\nprobe begin { a[1] = 1\n a[1, 2] = 2 }");
    assert!(
        count.contains("'a' is used with 2 key(s) here, but with 1 elsewhere"),
        "{count}"
    );
    assert!(
        count.contains("note: 'a' takes 1 key(s) because of this"),
        "{count}"
    );
}

#[test]
fn arrays_and_statistics_are_used_as_what_they_are() {
    assert!(
        error("probe begin { a[1] = 1 }")
            .contains("arrays and statistics are globals: declare 'global a'")
    );
    assert!(
        error("global a probe begin { a[1] = 1; x = a }")
            .contains("'a' is an array: use an entry, a[KEY]")
    );
    assert!(
        error("global s probe begin { s <<< 1; x = s }")
            .contains("'s' is a statistic: read it with @count(s)")
    );
    assert!(
        error("global s probe begin { s[1] <<< 1; x = s[1] }")
            .contains("'s' is a statistic: read an entry with @count(s[...])")
    );
    assert!(
        error("global a probe begin { a[1] = 2; x = @count(a[1]) }")
            .contains("@count() reads a statistic, and nothing is added to 'a' with '<<<'")
    );
    assert!(
        error("global a probe begin { a[1] = 2; a[2] <<< 1 }")
            .contains("'a' holds values, so '<<<' cannot add to it as a statistic")
    );
    assert!(
        error("global n = 1 probe begin { n[1] = 2 }")
            .contains("'n' is used as an array here, but it is a scalar")
    );
    assert!(
        error("global s probe begin { s <<< 1; print(@hist_linear(s, 10, 0, 1)) }")
            .contains("@hist_linear: ")
    );
}

#[test]
fn walking_an_array_in_an_event_probe_says_where_it_can_be_done() {
    let e =
        error("global a probe syscall.read { a[1] = 1; foreach (k in a) printf(\"%d\\n\", k) }");
    assert!(
        e.contains("foreach needs the whole array, which kscope has in its own process"),
        "{e}"
    );
    assert!(
        e.contains("collect here and walk or print in 'probe end'"),
        "{e}"
    );
    let through = error(
        "global s function show() { print(@hist_log(s)) }\nprobe syscall.read { s <<< 1; show() }",
    );
    assert!(
        through.contains("printing a histogram needs the whole array"),
        "{through}"
    );
    assert!(
        through.contains("note: printing a histogram is here, in the called function"),
        "{through}"
    );
    assert!(
        error("global a probe syscall.read { a[1] = 1; delete a }")
            .contains("deleting a whole array needs the whole array")
    );
}

#[test]
fn array_elements_are_set_counted_and_tested_in_bpf() {
    assert_prints(
        "a, b",
        r#"a["x"] = 5; a["x"] += 3; a["x"]++; a["y"]--; b[1, "one"] = "un"; b[2, "two"] .= "deux";
           printf("%d %d %d %s %s %d %d\n", a["x"], a["y"], a["z"], b[1, "one"], b[2, "two"],
                  [1, "one"] in b, [1, "two"] in b)
           old = a["x"]++; new = ++a["x"]; delete a["x"]; printf("%d %d %d %d\n", old, new, a["x"], "x" in a)"#,
        "9 -1 0 un deux 1 0\n9 11 0 0\n",
    );
}

#[test]
fn statistics_merge_count_sum_min_max_avg_and_variance() {
    assert_prints(
        "s, t",
        r#"s <<< 1; s <<< 5; s <<< -3; t["a"] <<< 10; t["a"] <<< 20;
           printf("%d %d %d %d %d %d\n", @count(s), @sum(s), @min(s), @max(s), @avg(s), @variance(s))
           printf("%d %d %d\n", @count(t["a"]), @avg(t["a"]), @count(t["b"]))
           t["v"] <<< 444; t["v"] <<< 999; printf("%d %d\n", @variance(t["v"]), @variance(t["v"], 7))"#,
        "3 3 -3 5 1 16\n2 15 0\n154012 154012\n",
    );
}

#[test]
fn reading_the_minimum_of_an_empty_statistic_is_a_runtime_error() {
    if let Some(out) = run_to_error("global s probe begin { s[1] <<< 1; x = @min(s[2]) }") {
        assert!(
            out.contains("empty aggregate: @min() of a statistic with no values at t.stp:1:"),
            "{out}"
        );
    }
}

#[test]
fn a_full_array_drops_updates_and_says_how_many_at_the_end() {
    let text = "global a[4] probe begin { for (i = 0; i < 10; i++) a[i] = i; printf(\"%d %d\\n\", a[3], a[9]); exit() }";
    if let Some(out) = run(text) {
        assert_eq!(
            out,
            "3 0\nwarning: array a: 6 updates dropped (4 entries; declare global a[N])\n"
        );
    }
}
