//! The generated programs' structure, checked without a kernel: what a
//! user relies on and the verifier would refuse, not the exact bytecode
//! (which changes with every improvement; running the programs, in
//! `runtime`'s tests and the corpus, checks what they compute).

use kscope_bpf::{Insn, Size};

use super::{
    BpfProgram, EXIT_FLAG, GET_CURRENT_COMM, Generated, MapRef, Output, PROBE_READ_KERNEL,
    PROBE_READ_KERNEL_STR, PROBE_READ_USER_STR, RINGBUF_OUTPUT, STACK_LIMIT, STR, is_jump,
};
use crate::codegen::ArgSlot;
use crate::testing::{compiled, try_compile};

/// What a register is known to hold on the straight-line path to an
/// instruction (jumps are read as falling through).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    Unknown,
    Const(i64),
    /// An address in the scratch value, at this offset.
    Scratch(i64),
}

/// Each helper call of `program`, with what r1, r2 and r3 held.
fn calls(program: &BpfProgram) -> Vec<(i32, [Val; 3])> {
    let mut regs = [Val::Unknown; 11];
    regs[8] = Val::Scratch(0);
    let mut out = Vec::new();
    let mut at = 0;
    while at < program.insns.len() {
        let insn = program.insns[at];
        let dst = usize::from(insn.dst);
        match insn.code {
            // ld_imm64: two slots.
            0x18 => {
                regs[dst] = Val::Unknown;
                at += 1;
            }
            0xb7 => regs[dst] = Val::Const(i64::from(insn.imm)),
            // r8 is only ever set to the scratch value's address.
            0xbf if dst == 8 => regs[8] = Val::Scratch(0),
            0xbf => regs[dst] = regs[usize::from(insn.src)],
            0x07 => {
                regs[dst] = match regs[dst] {
                    Val::Const(v) => Val::Const(v + i64::from(insn.imm)),
                    Val::Scratch(v) => Val::Scratch(v + i64::from(insn.imm)),
                    Val::Unknown => Val::Unknown,
                }
            }
            0x85 => {
                out.push((insn.imm, [regs[1], regs[2], regs[3]]));
                regs[..6].fill(Val::Unknown);
            }
            code if code & 0x07 == 0x07 || code & 0x07 == 0x01 => regs[dst] = Val::Unknown,
            _ => {}
        }
        at += 1;
    }
    out
}

/// The only program of a one-probe script.
fn program(text: &str) -> (BpfProgram, Generated) {
    let (generated, _) = compiled(text);
    assert_eq!(generated.programs.len(), 1, "{text}");
    (generated.programs[0].clone(), generated)
}

/// The index of each call of `helper`.
fn calls_of(program: &BpfProgram, helper: i32) -> Vec<usize> {
    (0..program.insns.len())
        .filter(|&i| program.insns[i] == Insn::call(helper))
        .collect()
}

#[test]
fn a_printf_sends_one_record_laid_out_as_its_arguments() {
    let (p, generated) = program("probe begin { printf(\"%d %s\\n\", 7, \"ab\") }");
    let [Output::Printf { args, .. }] = generated.outputs.as_slice() else {
        panic!("{:?}", generated.outputs);
    };
    assert_eq!(args, &[ArgSlot::Int, ArgSlot::Str]);
    let sends = calls_of(&p, RINGBUF_OUTPUT);
    assert_eq!(sends.len(), 1);
    // The id (8 bytes), the long, the string: from one scratch record.
    let size = 8 + 8 + STR;
    let sent = calls(&p)
        .into_iter()
        .find(|(helper, _)| *helper == RINGBUF_OUTPUT)
        .expect("a send");
    let [_, Val::Scratch(record), Val::Const(len)] = sent.1 else {
        panic!("{sent:?}");
    };
    assert_eq!(len, i64::from(size));
    assert!(record + len <= i64::from(generated.scratch_size));
    assert_eq!(p.insns[sends[0] - 1], Insn::mov64_imm(4, 0), "no flags");
    // r1 is the ring buffer, put in by the loader.
    assert!(
        p.relocations
            .iter()
            .any(|&(at, map)| map == MapRef::Events && at < sends[0]),
        "{:?}",
        p.relocations
    );
    // The record starts with its output's id, 0, and holds the 7.
    let stores: Vec<Insn> = p.insns[..sends[0]].to_vec();
    assert!(stores.windows(2).any(|w| {
        w[0] == Insn::mov64_imm(1, 0) && w[1] == Insn::stx(Size::DW, 8, record as i16, 1)
    }));
    assert!(p.insns.contains(&Insn::mov64_imm(0, 7)));
}

#[test]
fn exit_raises_the_flag_and_sends_the_exit_record() {
    let (p, generated) = program("probe begin { exit() }");
    assert!(matches!(generated.outputs.as_slice(), [Output::Exit]));
    let raise = p
        .insns
        .windows(2)
        .position(|w| {
            w == [
                Insn::mov64_imm(1, 1),
                Insn::stx(Size::DW, 7, EXIT_FLAG as i16, 1),
            ]
        })
        .expect("the flag raised");
    let sends = calls_of(&p, RINGBUF_OUTPUT);
    assert_eq!(sends.len(), 1);
    assert!(raise < sends[0], "the flag is raised before the record");
    let sent = calls(&p)
        .into_iter()
        .find(|(helper, _)| *helper == RINGBUF_OUTPUT)
        .expect("a send");
    assert_eq!(sent.1[2], Val::Const(8), "a record of just its id");
}

#[test]
fn every_probe_but_end_and_error_stops_once_the_exit_flag_is_up() {
    let (generated, attachments) = compiled(
        "probe begin { printf(\"b\\n\") } probe syscall.read { printf(\"r\\n\") }\n\
         probe end { printf(\"e\\n\") } probe error { printf(\"x\\n\") }",
    );
    let check = Insn::ldx(Size::DW, 1, 7, EXIT_FLAG as i16);
    for p in &generated.programs {
        let name = &attachments[p.attachment].name;
        let checks = p.insns.contains(&check);
        assert_eq!(checks, !matches!(name.as_str(), "end" | "error"), "{name}");
    }
}

#[test]
fn a_division_by_zero_is_a_runtime_error_that_says_where() {
    let (p, generated) = program("probe begin {\n  x = 0\n  printf(\"%d\\n\", 1 / x)\n}");
    let message = generated.outputs.iter().find_map(|o| match o {
        Output::Error { message } => Some(message.clone()),
        _ => None,
    });
    assert_eq!(
        message.as_deref(),
        Some("division by 0 at t.stp:3:18 in begin")
    );
    // The error record and the printf record.
    assert_eq!(calls_of(&p, RINGBUF_OUTPUT).len(), 2);
}

#[test]
fn string_reads_stay_inside_their_slot() {
    let (p, generated) = program(
        "probe syscall.read {\n\
           a = execname(); b = user_string($buf); c = kernel_string($buf)\n\
           d = a . b; e = substr(c, 1, 3); f = sprintf(\"%s\", d)\n\
           printf(\"%s %s %s %d\\n\", e, f, argstr, strlen(a))\n\
         }",
    );
    let reads: Vec<[Val; 3]> = calls(&p)
        .into_iter()
        .filter(|(helper, _)| {
            [
                GET_CURRENT_COMM,
                PROBE_READ_KERNEL_STR,
                PROBE_READ_USER_STR,
                PROBE_READ_KERNEL,
            ]
            .contains(helper)
        })
        .map(|(_, regs)| regs)
        .collect();
    let mut bounded = 0;
    for [dst, len, _] in &reads {
        match (dst, len) {
            (Val::Scratch(at), Val::Const(n)) => {
                assert!(*n <= i64::from(STR), "a read of {n} bytes");
                assert!(at + n <= i64::from(generated.scratch_size));
                bounded += 1;
            }
            // The second half of a join and a substring: computed, and
            // each into a slot of twice STR bytes.
            (_, Val::Unknown) | (Val::Unknown, _) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(bounded >= 6, "{reads:?}");
}

#[test]
fn user_string_n_clamps_its_length_to_the_slot() {
    let (p, _) = program("probe syscall.read { printf(\"%s\\n\", user_string_n($buf, $count)) }");
    let read = calls_of(&p, PROBE_READ_USER_STR)[0];
    let before = &p.insns[..read];
    let clamp = [
        Insn::jmp_imm(kscope_bpf::Jmp::Sle, 0, STR as i32, 1),
        Insn::mov64_imm(0, STR as i32),
    ];
    let at = before
        .windows(2)
        .rposition(|w| w == clamp)
        .expect("the length is clamped");
    assert!(before[at + 2..].contains(&Insn::mov64_reg(2, 0)));
}

#[test]
fn the_stack_holds_63_longs_and_not_64() {
    let locals = |n: usize| {
        let body: String = (0..n).map(|i| format!("v{i} = {i}\n")).collect();
        format!("probe begin {{\n{body}}}")
    };
    let (p, _) = program(&locals(63));
    let deepest = p
        .insns
        .iter()
        .filter(|i| i.dst == 10 && i.code & 0x07 != 0x07 && i.code & 0x07 != 0x05)
        .map(|i| i.off)
        .min()
        .expect("stack stores");
    assert_eq!(i32::from(deepest), -STACK_LIMIT);
    let err = try_compile(&locals(64)).expect_err("64 longs do not fit");
    assert!(
        err.contains("more than the 512 bytes of BPF stack"),
        "{err}"
    );
}

#[test]
fn the_stack_is_within_512_bytes_for_nested_expressions_and_calls() {
    let (generated, _) = compiled(
        "function f(a, b) { return a * (b + (a - (b * (a + 1)))) }\n\
         probe begin { x = f(f(1, 2), f(3, f(4, 5))) + (1 + (2 + (3 + (4 + 5))))\n\
         printf(\"%d %d\\n\", x, ppid()) }",
    );
    for p in &generated.programs {
        for insn in &p.insns {
            let memory = matches!(insn.code & 0x07, 0x01..=0x03);
            if memory && (insn.dst == 10 || insn.src == 10) {
                let off = i32::from(insn.off);
                assert!((-STACK_LIMIT..0).contains(&off), "{insn:?}");
            }
        }
    }
}

#[test]
fn jumps_land_inside_and_every_program_ends_with_exit() {
    let (generated, _) = compiled(
        "global n\n\
         function g(s) { if (s == \"x\") return 1; return 0 }\n\
         probe syscall.read if ($count > 1) {\n\
           for (i = 0; i < 3; i++) { if (i == 1) continue; n += g(execname()) }\n\
           while (n > 10) { n--; if (n == 5) break }\n\
           if (isinstr(execname(), \"sh\")) next\n\
           printf(\"%d\\n\", n)\n\
         }\n\
         probe end { printf(\"%d\\n\", n) }",
    );
    for p in &generated.programs {
        let n = p.insns.len();
        assert_eq!(p.spans.len(), n);
        assert_eq!(p.insns[n - 1], Insn::exit());
        for (at, insn) in p.insns.iter().enumerate() {
            if is_jump(insn) {
                let target = at as i64 + 1 + i64::from(insn.off);
                assert!((0..n as i64).contains(&target), "jump at {at} to {target}");
            }
        }
        for &(at, _) in &p.relocations {
            assert_eq!(p.insns[at].code, 0x18, "a relocation on an ld_imm64");
        }
    }
    // The read probe's `for` and `while`, where a verifier's refusal
    // would be reported.
    let loops: Vec<usize> = generated.programs.iter().map(|p| p.loops.len()).collect();
    assert_eq!(loops, [2, 0]);
}

#[test]
fn code_after_next_is_left_out() {
    let (p, _) = program("probe begin { next; printf(\"never\\n\") }");
    assert!(calls_of(&p, RINGBUF_OUTPUT).is_empty());
}
