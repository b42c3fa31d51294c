use super::conversion::bitmap_list;
use super::*;

const FORMAT: &str = "name: demo\nID: 7\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\n\
\tfield:char comm[8];\toffset:8;\tsize:8;\tsigned:0;\n\
\tfield:long state;\toffset:16;\tsize:8;\tsigned:1;\n\
\tfield:__data_loc char[] name;\toffset:24;\tsize:4;\tsigned:0;\n\
\tfield:u8 addr[4];\toffset:28;\tsize:4;\tsigned:0;\n\
\tfield:unsigned int mode;\toffset:32;\tsize:4;\tsigned:0;\n\
\tfield:__data_loc u32[] vals;\toffset:36;\tsize:4;\tsigned:0;\n\
\n\
print fmt: \"x\"\n";

/// A record of FORMAT: comm "bash", state -1, name "hello", addr
/// 10.0.0.1, mode 0x41, vals [1, 2].
fn record() -> Vec<u8> {
    let mut data = vec![0u8; 40];
    data[0..2].copy_from_slice(&7u16.to_le_bytes());
    data[4..8].copy_from_slice(&1234i32.to_le_bytes());
    data[8..12].copy_from_slice(b"bash");
    data[16..24].copy_from_slice(&(-1i64).to_le_bytes());
    data[24..28].copy_from_slice(&((6u32 << 16) | 40).to_le_bytes());
    data[28..32].copy_from_slice(&[10, 0, 0, 1]);
    data[32..36].copy_from_slice(&0x41u32.to_le_bytes());
    data[36..40].copy_from_slice(&((8u32 << 16) | 46).to_le_bytes());
    data.extend_from_slice(b"hello\0");
    data.extend_from_slice(&1u32.to_le_bytes());
    data.extend_from_slice(&2u32.to_le_bytes());
    data
}

fn render(print_fmt: &str) -> Result<String, EvalError> {
    let text = FORMAT.replace("print fmt: \"x\"", &format!("print fmt: {print_fmt}"));
    let format = EventFormat::parse(&text).unwrap();
    let formatter = Formatter::new(&format).unwrap();
    let mut out = String::new();
    formatter
        .render(&record(), &Env::default(), &mut out)
        .map(|()| out)
}

#[test]
fn fields_of_every_kind_are_read() {
    assert_eq!(
        render(r#""comm=%s state=%ld name=%s addr=%pI4 pid=%d", REC->comm, REC->state, __get_str(name), REC->addr, REC->common_pid"#)
            .unwrap(),
        "comm=bash state=-1 name=hello addr=10.0.0.1 pid=1234"
    );
}

#[test]
fn flags_and_symbols_follow_the_kernels_rules() {
    let flags = r#""%s", __print_flags(REC->mode, "|", { 0x1, "A" }, { 0x40, "G" }, { 0x2, "B" })"#;
    assert_eq!(render(flags).unwrap(), "A|G");
    let leftover = r#""%s", __print_flags(REC->mode | 0x100, "|", { 0x1, "A" })"#;
    assert_eq!(render(leftover).unwrap(), "A|0x140");
    let unknown = r#""%s", __print_symbolic(REC->mode, { SOME_ENUM, "enum" }, { 0x41, "A" })"#;
    assert_eq!(render(unknown).unwrap(), "A");
    let symbolic = r#""%s %s", __print_symbolic(REC->mode, { 1, "one" }, { 0x41, "sixty-five" }), __print_symbolic(2, { 1, "one" })"#;
    assert_eq!(render(symbolic).unwrap(), "sixty-five 0x2");
}

#[test]
fn arithmetic_ternaries_casts_and_sizeof() {
    assert_eq!(render(r#""%d", REC->mode & 1 ? 10 : 20"#).unwrap(), "10");
    assert_eq!(
        render(r#""%lu", (unsigned char)REC->state"#).unwrap(),
        "255"
    );
    assert_eq!(render(r#""%d", (REC->mode >> 4) * 3 - 1"#).unwrap(), "11");
    assert_eq!(render(r#""%d", sizeof(u32) + sizeof(long)"#).unwrap(), "12");
    assert_eq!(render(r#""%d", REC->state < 0"#).unwrap(), "1");
    assert_eq!(render(r#""%d", jiffies_to_msecs(500)"#).unwrap(), "2000");
    let min =
        r#""%d", ({ int __x = (REC->mode); int __y = (16); ((__x) < (__y) ? (__x) : (__y)); })"#;
    assert_eq!(render(min).unwrap(), "16");
}

#[test]
fn dynamic_arrays_hex_and_arrays() {
    assert_eq!(
        render(r#""%s %d", __print_array(__get_dynamic_array(vals), __get_dynamic_array_len(vals) / 4, 4), __get_dynamic_array_len(vals)"#)
            .unwrap(),
        "{0x1,0x2} 8"
    );
    assert_eq!(
        render(r#""%s", __print_hex(REC->addr, 4)"#).unwrap(),
        "0a 00 00 01"
    );
    assert_eq!(
        render(r#""%s", __print_hex_str(REC->addr, 2)"#).unwrap(),
        "0a00"
    );
    assert_eq!(render(r#""%d", REC->addr[3]"#).unwrap(), "1");
}

#[test]
fn the_libtraceevent_dialect_prints_pointers_and_alternate_zeros_as_glibc_does() {
    let text = FORMAT.replace(
        "print fmt: \"x\"",
        r#"print fmt: "%p %p %#x %#x", REC->state, 0, REC->mode, 0"#,
    );
    let format = EventFormat::parse(&text).unwrap();
    let formatter = Formatter::new(&format).unwrap();
    let mut kernel = String::new();
    formatter
        .render(&record(), &Env::default(), &mut kernel)
        .unwrap();
    let env = Env {
        dialect: Dialect::Libtraceevent,
        ..Env::default()
    };
    let mut libtraceevent = String::new();
    formatter
        .render(&record(), &env, &mut libtraceevent)
        .unwrap();
    assert!(kernel.ends_with(" 0000000000000000 0x41 0x0"), "{kernel}");
    assert!(libtraceevent.ends_with(" (nil) 0x41 0"), "{libtraceevent}");
    assert!(libtraceevent.starts_with("0x"), "{libtraceevent}");
}

#[test]
fn kernel_variables_print_as_a_question_mark_and_the_rest_still_prints() {
    assert_eq!(
        render(r#""age=%lu mode=%u", (jiffies - REC->state) / 250, REC->mode"#).unwrap(),
        "age=? mode=65"
    );
}

#[test]
fn kernel_variables_given_by_the_caller_are_used_with_pointer_arithmetic() {
    let text = FORMAT.replace(
        "print fmt: \"x\"",
        r#"print fmt: "page=%p", (((struct page *)vmemmap_base) + (REC->mode))"#,
    );
    let format = EventFormat::parse(&text).unwrap();
    let formatter = Formatter::new(&format).unwrap();
    let variables = [("vmemmap_base".to_string(), 0xffffea0000000000u64)];
    // Without BTF the size of struct page is unknown: elements of 1.
    let env = Env {
        variables: &variables,
        ..Env::default()
    };
    let mut out = String::new();
    formatter.render(&record(), &env, &mut out).unwrap();
    assert_eq!(out, "page=ffffea0000000041");
    let mut out = String::new();
    let env = Env {
        variables: &variables,
        ..Env::default()
    };
    let sized = FORMAT.replace(
        "print fmt: \"x\"",
        r#"print fmt: "%p", ((u64 *)vmemmap_base) + 2"#,
    );
    let format = EventFormat::parse(&sized).unwrap();
    Formatter::new(&format)
        .unwrap()
        .render(&record(), &env, &mut out)
        .unwrap();
    assert_eq!(out, "ffffea0000000010");
}

#[test]
fn unresolved_names_are_listed_once() {
    let text = FORMAT.replace(
        "print fmt: \"x\"",
        r#"print fmt: "%lu %d %s %s", (jiffies - REC->state), ({ int x = jiffies; x; }), __print_symbolic(REC->mode, { SOME_ENUM, "e" }), __get_str(name)"#,
    );
    let format = EventFormat::parse(&text).unwrap();
    let formatter = Formatter::new(&format).unwrap();
    assert_eq!(
        formatter.unresolved_names(&Env::default()),
        ["SOME_ENUM", "jiffies"]
    );
}

#[test]
fn a_null_name_ends_a_symbol_table() {
    let text = r#""%s", __print_symbolic(REC->mode, { 1, "one" }, { -1, 0 })"#;
    assert_eq!(render(text).unwrap(), "0x41");
    let text = r#""%s", __print_symbolic(REC->mode, { 1, "one" }, { -1, ((void *)0) }, { 0x41, "never" })"#;
    assert_eq!(render(text).unwrap(), "0x41");
}

#[test]
fn bitmaps_print_as_lists_and_hex_words() {
    let list = r#""%*pbl %*pb", 32, REC->addr, 32, REC->addr"#;
    // addr is 0a 00 00 01: bits 1, 3 and 24 are set.
    assert_eq!(render(list).unwrap(), "1,3,24 0100000a");
    let mut out = String::new();
    bitmap_list(&mut out, &[0b1110_1111], 8);
    assert_eq!(out, "0-3,5-7");
}

#[test]
fn unsupported_helpers_and_missing_fields_are_errors_that_write_nothing() {
    let err = render(r#""%s", trace_seq_printf(p, "x")"#).unwrap_err();
    assert!(err.0.contains("trace_seq_printf"), "{err}");
    assert!(
        render(r#""%d", REC->nope"#)
            .unwrap_err()
            .0
            .contains("no field nope")
    );
    assert!(render(r#""%d %d", REC->mode"#).is_err());
    assert!(render(r#""%d", 1 / 0"#).is_err());
}

#[test]
fn a_truncated_record_is_an_error_not_a_panic() {
    let text = FORMAT.replace(
        "print fmt: \"x\"",
        r#"print fmt: "%s %s", __get_str(name), REC->comm"#,
    );
    let format = EventFormat::parse(&text).unwrap();
    let formatter = Formatter::new(&format).unwrap();
    let data = record();
    for end in 0..data.len() {
        let mut out = String::new();
        let _ = formatter.render(&data[..end], &Env::default(), &mut out);
    }
}

#[test]
fn raw_fields_are_shown_when_the_print_fmt_cannot_be() {
    let format = EventFormat::parse(FORMAT).unwrap();
    let mut out = String::new();
    render_raw(&format, &record(), &mut out);
    assert_eq!(
        out,
        "comm=bash state=-1 name=hello addr=0a000001 mode=65 vals={0x1,0x2}"
    );
}

#[test]
fn the_deepest_expressions_the_parser_accepts_evaluate() {
    // A few levels go to the argument itself and to `REC->`.
    let deepest = super::super::MAX_DEPTH - 3;
    let negated = format!(r#""%d", {}REC->common_pid"#, "- ".repeat(deepest));
    assert_eq!(render(&negated).unwrap(), "-1234");
    let summed = format!(r#""%d", REC->common_pid{}"#, " + 1".repeat(deepest));
    assert_eq!(render(&summed).unwrap(), (1234 + deepest).to_string());
    let chosen = format!(
        r#""%d", {}REC->common_pid{}"#,
        "1 ? ".repeat(deepest),
        " : 0".repeat(deepest)
    );
    assert_eq!(render(&chosen).unwrap(), "1234");
}
