//! The verifier's rejections as the session reports them.

use super::*;
use crate::source::Span;

/// A program of three instructions from `spans`, with the script's
/// loops at `loops`, refused with `log`.
fn refused(log: &str, loops: Vec<Span>) -> String {
    let spans = vec![Span::new(0, 5), Span::new(10, 20), Span::new(30, 40)];
    let program = BpfProgram {
        attachment: 0,
        insns: vec![kscope_bpf::Insn::mov64_imm(0, 0); 3],
        spans,
        relocations: Vec::new(),
        loops,
    };
    let e = kscope_bpf::Error::Load {
        name: "ks_0".into(),
        source: io::Error::from_raw_os_error(7), // E2BIG
        verifier_log: log.into(),
    };
    match rejected(e, &program, "begin", &[]) {
        RuntimeError::Rejected { diagnostic, .. } => {
            let file = crate::SourceFile::new("t.stp", "x".repeat(40));
            diagnostic.render(&file)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_rejection_in_an_arrays_code_names_the_array() {
    let span = Span::new(10, 20);
    let program = BpfProgram {
        attachment: 0,
        insns: vec![kscope_bpf::Insn::mov64_imm(0, 0); 3],
        spans: vec![Span::new(0, 5), span, span],
        relocations: vec![(1, MapRef::Array(0))],
        loops: Vec::new(),
    };
    let array = crate::check::ArrayType {
        name: "counts".into(),
        keys: vec![crate::check::Ty::Long],
        value: crate::check::Ty::Long,
        stat: false,
        hist: None,
        capacity: 2048,
        recent: false,
        span,
    };
    let e = kscope_bpf::Error::Load {
        name: "ks_0".into(),
        source: io::Error::from_raw_os_error(13), // EACCES
        verifier_log: "2: (79) r0 = *(u64 *)(r0 +8)\nR0 invalid mem access 'map_value_or_null'\n"
            .into(),
    };
    let RuntimeError::Rejected { diagnostic, .. } = rejected(e, &program, "begin", &[array]) else {
        panic!("not a rejection");
    };
    assert!(
        diagnostic.message.contains(
            "rejected the code made from this, which uses array 'counts', (R0 invalid mem access"
        ),
        "{}",
        diagnostic.message
    );
}

#[test]
fn a_program_too_large_for_the_verifier_is_not_called_a_loop() {
    // What the verifier said of seven isinstr() calls in one condition.
    let log = "1: (bf) r1 = r0\nBPF program is too large. Processed 1000001 insn\n\
               processed 1000001 insns (limit 1000000) max_states_per_insn 4 total_states 912\n";
    let outside = refused(log, vec![Span::new(25, 40)]);
    assert!(
        outside.starts_with(
            "t.stp:1:11: error: the program made for begin is too large for the kernel's verifier"
        ),
        "{outside}"
    );
    assert!(
        outside.contains("split the work over several probes"),
        "{outside}"
    );
    assert!(!outside.contains("loop"), "{outside}");
    // The same give-up inside a loop of the script's own is the loop's.
    let inside = refused(log, vec![Span::new(8, 25)]);
    assert!(
        inside.contains("could not prove that this loop ends"),
        "{inside}"
    );
}

#[test]
fn an_infinite_loop_is_found_before_the_state_dumps() {
    let log = "0: (05) goto pc-1\ninfinite loop detected at insn 0\ncur state: R1=ctx()\nold state: R1=ctx()\n";
    assert_eq!(
        verifier_reason(log),
        (Some(0), "infinite loop detected at insn 0".to_string())
    );
}

#[test]
fn the_verifier_log_gives_the_instruction_and_the_reason() {
    let log = "0: R1=ctx() R10=fp0\n0: (bf) r6 = r1\n1: (79) r0 = *(u64 *)(r6 +0)\ninvalid bpf_context access off=0 size=8\nprocessed 2 insns (limit 1000000)\n";
    let (at, reason) = verifier_reason(log);
    assert_eq!(at, Some(1));
    assert_eq!(
        reason,
        "invalid bpf_context access off=0 size=8; processed 2 insns (limit 1000000)"
    );
}
