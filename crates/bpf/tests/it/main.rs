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

#[test]
fn a_kernel_variable_is_read_through_a_bpf_program() {
    if !live("reading kernel memory through BPF", missing_root()) {
        return;
    }
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").expect("kallsyms");
    let address_of = |name: &str| {
        kallsyms
            .lines()
            .find_map(|l| l.strip_suffix(&format!(" {name}")))
            .and_then(|l| u64::from_str_radix(l.split_whitespace().next()?, 16).ok())
    };
    // linux_banner is a data symbol, listed only with CONFIG_KALLSYMS_ALL;
    // without it, read the start of a function, which is never all zeros
    // (a failed read leaves zeros).
    let (address, banner) = match address_of("linux_banner") {
        Some(a) => (a, true),
        None => (address_of("schedule").expect("schedule in kallsyms"), false),
    };
    let _lock = kscope_testkit::TracefsLock::acquire();
    let guard = kscope_tracefs::StateGuard::new();
    let fs = guard.tracefs().expect("tracefs");
    let id: u64 =
        kscope_tracefs::control::read(&fs.root().join("events/syscalls/sys_enter_getpid/id"))
            .expect("id")
            .trim()
            .parse()
            .expect("number");
    let values = kscope_bpf::read_kernel_u64s(&[address, address + 8], id, || {
        let _ = std::process::id();
    })
    .expect("read");
    let mut bytes = values[0].to_ne_bytes().to_vec();
    bytes.extend(values[1].to_ne_bytes());
    if banner {
        assert_eq!(&bytes[..14], b"Linux version ", "{bytes:?}");
    } else {
        assert_ne!(values[0], 0, "the read left zeros: it failed");
        let again = kscope_bpf::read_kernel_u64s(&[address], id, || {
            let _ = std::process::id();
        })
        .expect("read again");
        assert_eq!(again[0], values[0]);
    }
    guard.restore().expect("restore");
}
