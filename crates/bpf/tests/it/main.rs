//! Live tests of the bpf crate against the running kernel.

use kscope_bpf::{Insn, PerfEvent, Program, ProgramType, SoftwareEvent};
use kscope_testkit::{live, missing_root};

#[test]
fn a_trivial_tracepoint_program_loads_and_unloads() {
    if !live("BPF program load", missing_root()) {
        return;
    }
    let program = Program::load(
        ProgramType::Tracepoint,
        "kscope_test",
        &[Insn::mov64_imm(0, 0), Insn::exit()],
    )
    .expect("load");
    assert_eq!(program.name(), "kscope_test");
}

#[test]
fn the_verifier_explains_a_program_that_does_not_set_r0() {
    if !live("BPF verifier log", missing_root()) {
        return;
    }
    let err = Program::load(ProgramType::Tracepoint, "kscope_bad", &[Insn::exit()]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("R0 !read_ok"), "{text}");
    assert!(text.contains("kscope_bad"), "{text}");
}

#[test]
fn a_software_counter_opens() {
    if !live("perf_event_open", None) {
        return;
    }
    PerfEvent::software_counter(SoftwareEvent::TaskClock).expect("perf_event_open");
    PerfEvent::software_counter(SoftwareEvent::CpuClock).expect("perf_event_open");
}
