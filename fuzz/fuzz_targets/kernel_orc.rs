//! Any bytes as an ORC table and a kernel stack: the first byte picks
//! the entry layout (detected, V1, V2 or V3); the first half of the rest
//! is split into an `.orc_unwind_ip` array and its `.orc_unwind`
//! entries for made-up kernel text, the second half is a task stack,
//! also mapped as the text's code. `OrcTable::parse` and `find` must not
//! panic, and every entry's own address must find an entry. Then the
//! unwinder runs over that stack from registers the input chooses and
//! from a saved context: it must end (at most `MAX_FRAMES` frames) and
//! never go down a stack or panic, whatever the entries and the stack
//! say.

#![no_main]

use kscope_kernel::orc::{OrcTable, OrcVersion};
use kscope_kernel::stack::{MAX_FRAMES, StackLayout, Start, Unwinder};
use kscope_kernel::{KernelSymbol, MemoryImage, PerCpu, SymbolTable, Task, TaskState};
use kscope_vmcore::X86_64Registers;
use libfuzzer_sys::fuzz_target;

const TEXT: u64 = 0xffff_ffff_8100_0000;
const TEXT_SIZE: u64 = 0x4000;
const ORC_IP: u64 = TEXT + 0x2000;
const STACK: u64 = 0xffff_c900_0000_4000;
const STACK_SIZE: u64 = 0x4000;

fn word(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, slot) in b.iter_mut().enumerate() {
        *slot = bytes.get(at + i).copied().unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

fn layout() -> StackLayout {
    let mut pt_regs = [0; 21];
    for (i, slot) in pt_regs.iter_mut().enumerate() {
        *slot = 8 * i as u64;
    }
    StackLayout {
        thread_size: STACK_SIZE,
        irq_stack_size: STACK_SIZE,
        exception_stacks_size: 0,
        switch_frame_size: 56,
        switch_frame_bp: 40,
        switch_frame_ret_addr: 48,
        pt_regs_size: 168,
        pt_regs,
        pcpu_hot_hardirq_stack: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let version = match selector % 4 {
        0 => None,
        1 => Some(OrcVersion::V1),
        2 => Some(OrcVersion::V2),
        _ => Some(OrcVersion::V3),
    };
    let n = rest.len() / 2 / 10;
    let (ips, tail) = rest.split_at(4 * n);
    let (entries, stack) = tail.split_at(6 * n);
    let _ = OrcVersion::detect(entries);
    // Uneven arrays must be refused, not misread.
    assert!(OrcTable::parse(&ips[..ips.len().saturating_sub(1)], ORC_IP, entries, version).is_err() || n == 0);
    let table = match OrcTable::parse(ips, ORC_IP, entries, version) {
        Ok(table) => table,
        Err(e) => panic!("whole arrays of equal counts must parse: {e}"),
    };
    assert_eq!(table.len(), n);
    for (i, rel) in ips.chunks_exact(4).enumerate() {
        let rel = i32::from_le_bytes([rel[0], rel[1], rel[2], rel[3]]);
        let ip = (ORC_IP + 4 * i as u64).wrapping_add_signed(i64::from(rel));
        assert!(table.find(ip).is_some());
    }
    if let Some((low, high)) = table.bounds() {
        assert!(low <= high);
        assert!(low == 0 || table.find(low - 1).is_none());
    }

    let mut image = MemoryImage::default();
    let mut stack_bytes = stack.to_vec();
    stack_bytes.resize(STACK_SIZE as usize, 0);
    image.insert(STACK, stack_bytes.clone());
    stack_bytes.truncate(TEXT_SIZE as usize);
    image.insert(TEXT, stack_bytes);
    let symbols = SymbolTable::new(
        [("_stext", TEXT), ("_etext", TEXT + TEXT_SIZE), ("f", TEXT + 0x100)]
            .into_iter()
            .map(|(name, address)| KernelSymbol {
                name: name.into(),
                address,
                kind: 'T',
            })
            .collect(),
    );
    let per_cpu = PerCpu::new(Vec::new());
    let Ok(unwinder) = Unwinder::with_layout(&image, &symbols, layout(), table, &per_cpu, &[]) else {
        panic!("the symbols are there");
    };
    // Stack pointers into the part of the stack the input gives.
    let span = (stack.len() as u64).max(8);
    let task = Task {
        address: 0,
        pid: 1,
        tgid: 1,
        ppid: None,
        comm: String::new(),
        state: TaskState::Sleeping,
        raw_state: (1, 0),
        flags: 0,
        cpu: None,
        current: false,
        idle: false,
        mm: 0,
        stack: STACK,
        saved_sp: STACK + word(stack, 0) % span,
        vsz_pages: None,
        rss_pages: None,
    };
    let regs = X86_64Registers {
        rip: TEXT + word(stack, 8) % TEXT_SIZE,
        rsp: STACK + word(stack, 16) % span,
        rbp: word(stack, 24),
        cs: 0x10,
        ..X86_64Registers::default()
    };
    for bt in [
        unwinder.backtrace_from(&task, &regs, Start::Registers { cpu: 0 }),
        unwinder.backtrace_saved(&task),
    ] {
        assert!(bt.frames.len() <= MAX_FRAMES);
        for pair in bt.frames.windows(2) {
            assert!(pair[0].stack != pair[1].stack || pair[0].sp < pair[1].sp);
        }
    }
});
