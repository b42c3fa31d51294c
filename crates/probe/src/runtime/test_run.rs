//! Generated handlers run for real, each once, through BPF_PROG_TEST_RUN:
//! every program is loaded as a raw_tracepoint program (tracepoint and
//! perf_event programs cannot be test-run), whose context is a record
//! made up here, laid out as the tracepoint's format says (a
//! raw_tracepoint's context is read as u64 words, at most 12). The
//! verifier checks each program, and the ring buffer and the globals show
//! what it did. Needs root; skips otherwise (fails under
//! KSCOPE_REQUIRE_LIVE=1).

use kscope_bpf::{Program, ProgramType};

use super::{Maps, decode};
use crate::codegen::{EXIT_FLAG, Generated, Output};
use crate::points::Attachment;
use crate::testing::compiled;

/// A script's programs loaded as raw_tracepoint programs, with its maps.
struct TestBed {
    generated: Generated,
    attachments: Vec<Attachment>,
    maps: Maps,
    programs: Vec<Program>,
}

impl TestBed {
    /// `text` compiled and loaded; None when the machine cannot run BPF.
    fn load(text: &str) -> Option<TestBed> {
        if !kscope_testkit::live("test runs of generated BPF", kscope_testkit::missing_root()) {
            return None;
        }
        let (generated, attachments) = compiled(text);
        let maps = Maps::create(&generated).expect("the maps");
        let programs = maps
            .load(&generated, &attachments, |_| ProgramType::RawTracepoint)
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        Some(TestBed {
            generated,
            attachments,
            maps,
            programs,
        })
    }

    /// Runs the handler of `point` once on `record`; returns what it
    /// returned.
    fn run(&self, point: &str, record: &[u8]) -> u32 {
        let index = self
            .generated
            .programs
            .iter()
            .position(|p| self.attachments[p.attachment].name == point)
            .unwrap_or_else(|| panic!("no program for {point}"));
        self.programs[index]
            .test_run(&words(record))
            .expect("the test run")
    }

    /// The lines the handlers printed since the last call, as the
    /// session formats them, and whether an exit record came.
    fn output(&mut self) -> (String, bool) {
        let mut text = Vec::new();
        let mut exited = false;
        let outputs = &self.generated.outputs;
        let stacks = &mut self.maps.stacks;
        self.maps
            .events
            .drain(|record| {
                let mut line = Vec::new();
                exited |= matches!(
                    decode(outputs, record, &mut line, stacks),
                    Some(Output::Exit)
                );
                text.extend_from_slice(&line);
            })
            .expect("the ring buffer");
        (String::from_utf8(text).expect("UTF-8"), exited)
    }

    /// The long at `offset` in the globals.
    fn global_at(&self, offset: u32) -> i64 {
        let value = self
            .maps
            .globals(self.generated.globals.size)
            .expect("the globals");
        let at = offset as usize;
        i64::from_ne_bytes(value[at..at + 8].try_into().expect("8 bytes"))
    }

    /// The global long `name`.
    fn global(&self, name: &str) -> i64 {
        let var = self.generated.globals.vars.iter().find(|v| v.name == name);
        self.global_at(var.expect("a global").offset)
    }
}

/// A record as the u64 words a raw_tracepoint's context holds.
fn words(record: &[u8]) -> Vec<u64> {
    record
        .chunks(8)
        .map(|chunk| {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            u64::from_ne_bytes(word)
        })
        .collect()
}

/// A record of `size` bytes with `fields` (offset, bytes) written in.
fn record(size: usize, fields: &[(usize, &[u8])]) -> Vec<u8> {
    let mut out = vec![0u8; size];
    for (at, bytes) in fields {
        out[*at..at + bytes.len()].copy_from_slice(bytes);
    }
    out
}

/// sys_enter_read's record: fd at 16, buf at 24, count at 32
/// (tests/data/sys_enter_read.format).
fn sys_enter_read(fd: u64, count: u64) -> Vec<u8> {
    record(
        40,
        &[
            (16, &fd.to_ne_bytes()),
            (24, &0x7fff_0000u64.to_ne_bytes()),
            (32, &count.to_ne_bytes()),
        ],
    )
}

#[test]
fn a_syscall_handler_prints_its_record_fields() {
    let Some(mut bed) =
        TestBed::load("probe syscall.read { printf(\"%d %d %s\\n\", $fd, $count, pp()) }")
    else {
        return;
    };
    assert_eq!(bed.run("syscall.read", &sys_enter_read(3, 42)), 0);
    assert_eq!(bed.run("syscall.read", &sys_enter_read(0, 7)), 0);
    assert_eq!(
        bed.output(),
        ("3 42 syscall.read\n0 7 syscall.read\n".into(), false)
    );
}

#[test]
fn int_arguments_in_8_byte_slots_are_read_as_ints() {
    // sys_enter_openat: dfd at 16 and flags at 32 are `int`s stored in
    // unsigned 8-byte slots; AT_FDCWD reads -100, as SystemTap shows it.
    let Some(mut bed) =
        TestBed::load("probe syscall.openat { printf(\"%d %d\\n\", $dfd, $flags) }")
    else {
        return;
    };
    let openat = record(
        48,
        &[
            (16, &0xffff_ff9cu64.to_ne_bytes()),
            (32, &0x8000u64.to_ne_bytes()),
        ],
    );
    bed.run("syscall.openat", &openat);
    assert_eq!(bed.output().0, "-100 32768\n");
}

#[test]
fn a_tracepoint_handler_reads_char_arrays_and_signed_fields_and_counts_in_globals() {
    let Some(mut bed) = TestBed::load(
        "global switches, seen\n\
         probe kernel.trace(\"sched:sched_switch\") {\n\
           switches++\n\
           if ($next_pid != 99) next\n\
           seen = $prev_state\n\
           printf(\"%s %d -> %s %d\\n\", $prev_comm, $prev_pid, $next_comm, $next_prio)\n\
         }",
    ) else {
        return;
    };
    // tests/data/sched_switch.format: prev_comm[16] at 8, prev_pid at 24,
    // prev_state (long) at 32, next_comm[16] at 40, next_pid at 56,
    // next_prio at 60.
    let switch = |next_pid: i32| {
        record(
            64,
            &[
                (8, b"kworker/0:1\0"),
                (24, &17i32.to_ne_bytes()),
                (32, &(-2i64).to_ne_bytes()),
                (40, b"a-sixteen-chars!"),
                (56, &next_pid.to_ne_bytes()),
                (60, &(-20i32).to_ne_bytes()),
            ],
        )
    };
    let point = "kernel.trace(\"sched:sched_switch\")";
    bed.run(point, &switch(99));
    bed.run(point, &switch(5));
    // A char array that fills its field is cut at its size.
    assert_eq!(bed.output().0, "kworker/0:1 17 -> a-sixteen-chars! -20\n");
    assert_eq!(bed.global("switches"), 2);
    assert_eq!(bed.global("seen"), -2);
}

#[test]
fn exit_sends_its_record_and_stops_every_later_run() {
    let Some(mut bed) =
        TestBed::load("global n\nprobe syscall.read { n++; printf(\"read %d\\n\", $fd); exit() }")
    else {
        return;
    };
    bed.run("syscall.read", &sys_enter_read(5, 1));
    assert_eq!(bed.output(), ("read 5\n".into(), true));
    assert_eq!(bed.global_at(EXIT_FLAG), 1);
    bed.run("syscall.read", &sys_enter_read(6, 1));
    assert_eq!(bed.output(), (String::new(), false));
    assert_eq!(bed.global("n"), 1);
}
