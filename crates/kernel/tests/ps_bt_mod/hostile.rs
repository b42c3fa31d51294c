//! Kernel structures built in memory ([`MemoryImage`]) with made-up
//! layouts, sound and damaged: lists that loop or point nowhere, stacks
//! that go the wrong way, return to a stack they left, or never end.
//! Every reader must stop with a partial result and a reason, never hang
//! or panic.

use kscope_kernel::modules::{ModuleLayout, ModuleList, ModuleMemoryLayout, ModuleState};
use kscope_kernel::orc::{OrcTable, OrcVersion};
use kscope_kernel::stack::{
    Ending, FrameSource, MAX_FRAMES, StackKind, StackLayout, Start, Unwinder,
};
use kscope_kernel::tasks::{MemoryLayout, RssCounters, TaskLayout, ThreadLinks};
use kscope_kernel::{
    Error, KernelSymbol, MemoryImage, PerCpu, SymbolTable, Task, TaskList, TaskState,
};
use kscope_vmcore::{CpuState, X86_64Registers};

const DIRECT: u64 = 0xffff_8880_0000_0000;
const TEXT: u64 = 0xffff_ffff_8100_0000;
const DATA: u64 = 0xffff_ffff_8200_0000;
const PCPU: u64 = DIRECT + 0x10_0000;

fn symbols(extra: &[(&str, u64)]) -> SymbolTable {
    let mut all = vec![
        ("_stext", TEXT),
        ("_etext", TEXT + 0x1000),
        ("fa", TEXT + 0x100),
        ("fb", TEXT + 0x200),
        ("fc", TEXT + 0x300),
        ("fentry", TEXT + 0x400),
        ("fbad", TEXT + 0x500),
        ("fund", TEXT + 0x600),
        ("firq", TEXT + 0x700),
        ("init_task", DATA),
        ("runqueues", 0x100),
        ("current_task", 0x200),
        ("hardirq_stack_ptr", 0x300),
        ("panic_cpu", DATA + 0x2000),
        ("modules", DATA + 0x3000),
        ("taint_flags", DATA + 0x4000),
        ("nr_cpu_ids", DATA + 0x5000),
        ("__per_cpu_offset", DATA + 0x5100),
    ];
    all.extend_from_slice(extra);
    SymbolTable::new(
        all.into_iter()
            .map(|(name, address)| KernelSymbol {
                name: name.into(),
                address,
                kind: 'T',
            })
            .collect(),
    )
}

fn put(buf: &mut [u8], offset: u64, value: u64, size: usize) {
    let at = offset as usize;
    buf[at..at + size].copy_from_slice(&value.to_le_bytes()[..size]);
}

// ---------------------------------------------------------------- tasks

const TASK_SIZE: u64 = 0x100;
const SIGNAL: u64 = DIRECT + 0x20_0000;

fn task_layout(threads: ThreadLinks) -> TaskLayout {
    TaskLayout {
        task_size: TASK_SIZE,
        tasks: 0x10,
        pid: 0x20,
        tgid: 0x24,
        real_parent: 0x28,
        comm: 0x30,
        state: 0x40,
        exit_state: 0x44,
        flags: 0x48,
        cpu: Some(0x4c),
        mm: 0x50,
        stack: 0x58,
        thread_sp: 0x60,
        threads,
        rq_curr: 0x8,
        rq_idle: 0x10,
        pcpu_hot_current: None,
        memory: None,
    }
}

fn signal_links() -> ThreadLinks {
    ThreadLinks::SignalList {
        signal: 0x68,
        thread_head: 0x10,
        thread_node: 0x70,
    }
}

/// A task at `addr` whose `tasks.next` is `next` (a task address, or
/// the raw pointer `raw_next` when given), its threads' ring through
/// `thread_next` (a task address) and its `signal_struct` at `signal`.
struct Spec {
    addr: u64,
    pid: i32,
    tgid: i32,
    comm: &'static str,
    next: u64,
    thread_next: u64,
    signal: u64,
    state: u32,
    mm: u64,
}

fn put_task(image: &mut MemoryImage, layout: &TaskLayout, s: &Spec) {
    let mut b = vec![0u8; TASK_SIZE as usize];
    put(&mut b, layout.tasks, s.next, 8);
    put(&mut b, layout.pid, s.pid as u64, 4);
    put(&mut b, layout.tgid, s.tgid as u64, 4);
    put(&mut b, layout.real_parent, DATA, 8);
    b[0x30..0x30 + s.comm.len()].copy_from_slice(s.comm.as_bytes());
    put(&mut b, layout.state, u64::from(s.state), 4);
    put(
        &mut b,
        layout.flags,
        if s.mm == 0 { 0x0020_0000 } else { 0 },
        4,
    );
    put(&mut b, 0x4c, 0, 4);
    put(&mut b, layout.mm, s.mm, 8);
    match layout.threads {
        ThreadLinks::SignalList {
            signal,
            thread_node,
            ..
        } => {
            put(&mut b, signal, s.signal, 8);
            put(&mut b, thread_node, s.thread_next, 8);
        }
        ThreadLinks::GroupRing { thread_group } => put(&mut b, thread_group, s.thread_next, 8),
    }
    image.insert(s.addr, b);
}

/// One CPU whose per-CPU area says `current` runs and `init_task` idles.
fn one_cpu(image: &mut MemoryImage, current: u64) -> PerCpu {
    let mut area = vec![0u8; 0x400];
    put(&mut area, 0x100 + 0x8, current, 8); // runqueues.curr
    put(&mut area, 0x100 + 0x10, DATA, 8); // runqueues.idle
    put(&mut area, 0x200, current, 8); // current_task
    image.insert(PCPU, area);
    image.insert(DATA + 0x2000, 0u32.to_le_bytes().to_vec()); // panic_cpu
    PerCpu::new(vec![PCPU])
}

const A: u64 = DIRECT + 0x1000;
const B: u64 = DIRECT + 0x2000;
const B2: u64 = DIRECT + 0x3000;
const B3: u64 = DIRECT + 0x4000;

fn spec(addr: u64, pid: i32, comm: &'static str, next: u64) -> Spec {
    Spec {
        addr,
        pid,
        tgid: pid,
        comm,
        next,
        thread_next: 0,
        signal: 0,
        state: 1,
        mm: 0,
    }
}

/// init_task → A → B → init_task; B's process has threads B, B2, B3.
fn sound_world(links: ThreadLinks) -> (MemoryImage, TaskLayout, PerCpu) {
    let layout = task_layout(links);
    let mut image = MemoryImage::default();
    let node = |t: u64| t + 0x10;
    let tnode = |t: u64| match links {
        ThreadLinks::SignalList { thread_node, .. } => t + thread_node,
        ThreadLinks::GroupRing { thread_group } => t + thread_group,
    };
    let head = SIGNAL + 0x10;
    let after_b3 = match links {
        ThreadLinks::SignalList { .. } => head,
        ThreadLinks::GroupRing { .. } => tnode(B),
    };
    put_task(
        &mut image,
        &layout,
        &Spec {
            state: 0,
            ..spec(DATA, 0, "swapper/0", node(A))
        },
    );
    put_task(
        &mut image,
        &layout,
        &Spec {
            mm: DIRECT + 0x9000,
            ..spec(A, 1, "init", node(B))
        },
    );
    put_task(
        &mut image,
        &layout,
        &Spec {
            thread_next: tnode(B2),
            signal: SIGNAL,
            mm: DIRECT + 0xa000,
            ..spec(B, 50, "server", node(DATA))
        },
    );
    put_task(
        &mut image,
        &layout,
        &Spec {
            tgid: 50,
            thread_next: tnode(B3),
            signal: SIGNAL,
            mm: DIRECT + 0xa000,
            state: 0,
            ..spec(B2, 51, "worker", 0)
        },
    );
    put_task(
        &mut image,
        &layout,
        &Spec {
            tgid: 50,
            thread_next: after_b3,
            signal: SIGNAL,
            mm: DIRECT + 0xa000,
            state: 0x402,
            ..spec(B3, 52, "worker", 0)
        },
    );
    // A's threads: A alone.
    let a_signal = SIGNAL + 0x100;
    let mut a = image.ranges().find(|(s, _)| *s == A).unwrap().1.to_vec();
    if let ThreadLinks::SignalList {
        signal,
        thread_node,
        ..
    } = links
    {
        put(&mut a, signal, a_signal, 8);
        put(&mut a, thread_node, a_signal + 0x10, 8);
    } else if let ThreadLinks::GroupRing { thread_group } = links {
        put(&mut a, thread_group, A + thread_group, 8);
    }
    image.insert(A, a);
    let mut sig = vec![0u8; 0x200];
    put(&mut sig, 0x10, tnode(B), 8);
    put(&mut sig, 0x110, tnode(A), 8);
    image.insert(SIGNAL, sig);
    let per_cpu = one_cpu(&mut image, B2);
    (image, layout, per_cpu)
}

fn read(image: &MemoryImage, layout: &TaskLayout, per_cpu: &PerCpu) -> TaskList {
    TaskList::read(image, &symbols(&[]), per_cpu, layout).unwrap()
}

fn pids(list: &TaskList) -> Vec<i32> {
    list.tasks.iter().map(|t| t.pid).collect()
}

#[test]
fn a_sound_task_list_with_threads_reads_whole() {
    for links in [
        signal_links(),
        ThreadLinks::GroupRing { thread_group: 0x78 },
    ] {
        let (image, layout, per_cpu) = sound_world(links);
        let list = read(&image, &layout, &per_cpu);
        assert!(list.problems.is_empty(), "{:?}", list.problems);
        assert_eq!(pids(&list), [0, 1, 50, 51, 52], "{links:?}");
        let worker = list.with_pid(51).next().unwrap();
        assert_eq!(
            (worker.tgid, worker.current, worker.state),
            (50, true, TaskState::Running)
        );
        assert_eq!(list.with_pid(52).next().unwrap().state, TaskState::Idle);
        assert_eq!(list.current_on(0).map(|t| t.pid), Some(51));
        assert_eq!(list.panic_task().map(|t| t.pid), Some(51));
        assert!(list.tasks[0].idle && list.tasks[0].is_kernel_thread());
        assert_eq!(list.tasks[0].display_comm(), "[swapper/0]");
        // The parent of everything here is init_task, pid 0.
        assert!(list.tasks.iter().all(|t| t.ppid == Some(0)));
    }
}

#[test]
fn without_current_task_the_runqueue_says_what_runs() {
    let (image, layout, per_cpu) = sound_world(signal_links());
    let table = symbols(&[]);
    let without: Vec<KernelSymbol> = table
        .symbols()
        .iter()
        .filter(|s| s.name != "current_task")
        .cloned()
        .collect();
    let list = TaskList::read(
        &image,
        &SymbolTable::new(without.clone()),
        &per_cpu,
        &layout,
    )
    .unwrap();
    assert_eq!(list.current_on(0).map(|t| t.pid), Some(51));

    // Linux 6.2+: the current task in pcpu_hot (here its member at 0x8,
    // the variable at 0x1f8, so at the same per-CPU address); the
    // runqueue says B3 now, so that only pcpu_hot gives B2.
    let mut image = image;
    let mut area = image.ranges().find(|(s, _)| *s == PCPU).unwrap().1.to_vec();
    put(&mut area, 0x108, B3, 8);
    image.insert(PCPU, area);
    let mut hot = without;
    hot.push(KernelSymbol {
        name: "pcpu_hot".into(),
        address: 0x1f8,
        kind: 'D',
    });
    let layout = TaskLayout {
        pcpu_hot_current: Some(0x8),
        ..layout
    };
    let list = TaskList::read(&image, &SymbolTable::new(hot), &per_cpu, &layout).unwrap();
    assert_eq!(list.current_on(0).map(|t| t.pid), Some(51));
    assert!(list.problems.is_empty(), "{:?}", list.problems);
}

#[test]
fn a_task_list_that_loops_without_its_head_stops() {
    let (mut image, layout, per_cpu) = sound_world(signal_links());
    // B → A instead of B → init_task.
    let mut b = image.ranges().find(|(s, _)| *s == B).unwrap().1.to_vec();
    put(&mut b, 0x10, A + 0x10, 8);
    image.insert(B, b);
    let list = read(&image, &layout, &per_cpu);
    assert_eq!(pids(&list), [0, 1, 50, 51, 52]);
    assert_eq!(list.problems.len(), 1);
    assert!(
        list.problems[0].contains("loops back"),
        "{:?}",
        list.problems
    );
}

#[test]
fn null_and_wild_pointers_end_a_list_with_the_reason() {
    for (next, want) in [
        (0, "points to NULL"),
        (0xffff_8880_dead_0000, "cannot read"),
    ] {
        let (mut image, layout, per_cpu) = sound_world(signal_links());
        let mut a = image.ranges().find(|(s, _)| *s == A).unwrap().1.to_vec();
        put(&mut a, 0x10, next, 8);
        image.insert(A, a);
        let list = read(&image, &layout, &per_cpu);
        assert_eq!(pids(&list), [0, 1], "{next:#x}");
        assert!(
            list.problems.iter().any(|p| p.contains(want)),
            "{:?}",
            list.problems
        );
    }
}

#[test]
fn a_thread_ring_that_loops_keeps_the_threads_before_the_loop() {
    let (mut image, layout, per_cpu) = sound_world(signal_links());
    // B3 → B2 again.
    let mut b3 = image.ranges().find(|(s, _)| *s == B3).unwrap().1.to_vec();
    put(&mut b3, 0x70, B2 + 0x70, 8);
    image.insert(B3, b3);
    let list = read(&image, &layout, &per_cpu);
    assert_eq!(pids(&list), [0, 1, 50, 51, 52]);
    assert!(
        list.problems
            .iter()
            .any(|p| p.contains("threads of task") && p.contains("loops")),
        "{:?}",
        list.problems
    );
}

#[test]
fn a_task_that_cannot_be_read_is_a_problem_not_an_error() {
    let (mut image, layout, per_cpu) = sound_world(signal_links());
    // Only B's first 0x20 bytes exist: its list node reads, the rest not.
    let b = image.ranges().find(|(s, _)| *s == B).unwrap().1[..0x20].to_vec();
    image.insert(B, b);
    let list = read(&image, &layout, &per_cpu);
    assert!(!pids(&list).contains(&50));
    assert!(
        list.problems.iter().any(|p| p.contains("cannot read it")),
        "{:?}",
        list.problems
    );
}

#[test]
fn missing_symbols_and_absurd_sizes_are_errors() {
    let (image, layout, per_cpu) = sound_world(signal_links());
    let err = TaskList::read(&image, &SymbolTable::default(), &per_cpu, &layout).unwrap_err();
    assert!(
        matches!(err, Error::MissingSymbol(ref s) if s == "init_task"),
        "{err}"
    );
    let huge = TaskLayout {
        task_size: 1 << 30,
        ..layout
    };
    let err = TaskList::read(&image, &symbols(&[]), &per_cpu, &huge).unwrap_err();
    assert!(err.to_string().contains("task_struct is"), "{err}");

    for nr in [0u32, 1 << 20] {
        let mut image = MemoryImage::default();
        image.insert(DATA + 0x5000, nr.to_le_bytes().to_vec());
        let err = PerCpu::read(&image, &symbols(&[])).unwrap_err();
        assert!(err.to_string().contains("nr_cpu_ids is"), "{err}");
    }
    let mut image = MemoryImage::default();
    image.insert(DATA + 0x5000, 2u32.to_le_bytes().to_vec());
    image.insert(
        DATA + 0x5100,
        [PCPU.to_le_bytes(), (PCPU + 0x1000).to_le_bytes()].concat(),
    );
    assert_eq!(
        PerCpu::read(&image, &symbols(&[])).unwrap().offset(1),
        Some(PCPU + 0x1000)
    );
}

#[test]
fn rss_counts_per_cpu_counters_and_unsynced_thread_deltas() {
    let (mut image, mut layout, per_cpu) = sound_world(signal_links());
    // mm at DIRECT+0xa000: total_vm at 0x0, rss_stat at 0x100: three
    // percpu_counter of 0x20 bytes, count at 0x8, counters at 0x18.
    let counters_var = 0x380;
    let mut mm = vec![0u8; 0x200];
    put(&mut mm, 0, 1000, 8);
    for (i, count) in [10u64, 20, 30].into_iter().enumerate() {
        put(&mut mm, 0x100 + 0x20 * i as u64 + 0x8, count, 8);
        put(
            &mut mm,
            0x100 + 0x20 * i as u64 + 0x18,
            counters_var + 4 * i as u64,
            8,
        );
    }
    image.insert(DIRECT + 0xa000, mm);
    let mut area = image.ranges().find(|(s, _)| *s == PCPU).unwrap().1.to_vec();
    for i in 0..3u64 {
        put(&mut area, counters_var + 4 * i, (-1i32) as u32 as u64, 4);
    }
    image.insert(PCPU, area);
    layout.memory = Some(MemoryLayout {
        total_vm: 0,
        rss: RssCounters::PerCpu {
            rss_stat: 0x100,
            size: 0x20,
            count: 0x8,
            counters: 0x18,
        },
        rss_indexes: vec![0, 1, 2],
        task_deltas: None,
    });
    let list = read(&image, &layout, &per_cpu);
    let server = list.with_pid(50).next().unwrap();
    assert_eq!(
        (server.vsz_pages, server.rss_pages),
        (Some(1000), Some(60 - 3))
    );
    // init's mm is not in memory.
    let init = list.with_pid(1).next().unwrap();
    assert_eq!((init.vsz_pages, init.rss_pages), (None, None));

    layout.memory = Some(MemoryLayout {
        total_vm: 0,
        rss: RssCounters::Atomic { rss_stat: 0x100 },
        rss_indexes: vec![0],
        task_deltas: Some(0x80),
    });
    // Each of B's three threads has 2 pages not yet added to the mm.
    for t in [B, B2, B3] {
        let mut b = image.ranges().find(|(s, _)| *s == t).unwrap().1.to_vec();
        put(&mut b, 0x80, 2, 4);
        image.insert(t, b);
    }
    let list = read(&image, &layout, &per_cpu);
    // count[0] of an atomic mm_rss_stat is the first word at 0x100 (0),
    // plus 3 x 2.
    assert_eq!(list.with_pid(52).next().unwrap().rss_pages, Some(6));
}

// ---------------------------------------------------------------- stacks

const STACK: u64 = 0xffff_c900_0000_4000;
const IRQ: u64 = 0xffff_c900_0001_0000;
const SIZE: u64 = 0x4000;

fn stack_layout() -> StackLayout {
    let mut pt_regs = [0; 21];
    for (i, slot) in pt_regs.iter_mut().enumerate() {
        *slot = 8 * i as u64;
    }
    StackLayout {
        thread_size: SIZE,
        irq_stack_size: SIZE,
        exception_stacks_size: 0,
        switch_frame_size: 56,
        switch_frame_bp: 40,
        switch_frame_ret_addr: 48,
        pt_regs_size: 168,
        pt_regs,
        pcpu_hot_hardirq_stack: None,
    }
}

/// A V1 `struct orc_entry`.
fn orc(sp_offset: i16, bp_offset: i16, sp_reg: u16, bp_reg: u16, kind: u16, end: bool) -> Vec<u8> {
    let flags = sp_reg | bp_reg << 4 | kind << 8 | u16::from(end) << 10;
    [
        sp_offset.to_le_bytes(),
        bp_offset.to_le_bytes(),
        flags.to_le_bytes(),
    ]
    .concat()
}

/// The ORC table of the made-up text: fa frameless, fb with a saved
/// rbp, fc the end of the stack, fentry an entry with pt_regs at sp,
/// fbad a frame that does not move the stack pointer, fund undefined,
/// firq the switch back from the IRQ stack (the task's stack pointer
/// saved at the IRQ stack's top).
fn orc_table() -> OrcTable {
    let entries = [
        (0x100, orc(8, 0, 5, 0, 0, false)),
        (0x200, orc(16, -16, 5, 1, 0, false)),
        (0x300, orc(0, 0, 0, 0, 0, true)),
        (0x400, orc(0, 0, 5, 0, 1, false)),
        (0x500, orc(0, 0, 5, 0, 0, false)),
        (0x600, orc(0, 0, 0, 0, 0, false)),
        (0x700, orc(0, 0, 9, 0, 0, false)),
    ];
    let base = DATA + 0x8000;
    let ips: Vec<u8> = entries
        .iter()
        .enumerate()
        .map(|(i, (off, _))| ((TEXT + off) as i64 - (base + 4 * i as u64) as i64) as i32)
        .flat_map(i32::to_le_bytes)
        .collect();
    let raw: Vec<u8> = entries.iter().flat_map(|(_, e)| e.clone()).collect();
    OrcTable::parse(&ips, base, &raw, Some(OrcVersion::V1)).unwrap()
}

/// Text full of NOPs, with a `call rel32` before each address in
/// `returns`.
fn text(returns: &[u64]) -> Vec<u8> {
    let mut code = vec![0x90u8; 0x1000];
    for r in returns {
        code[(r - TEXT - 5) as usize] = 0xe8;
    }
    code
}

struct StackWorld {
    image: MemoryImage,
    symbols: SymbolTable,
    per_cpu: PerCpu,
}

/// A task stack holding `words` at the given offsets, an IRQ stack for
/// CPU 0 holding `irq_words`, and text with calls before `returns`.
fn stack_world(words: &[(u64, u64)], irq_words: &[(u64, u64)], returns: &[u64]) -> StackWorld {
    let mut image = MemoryImage::default();
    let mut stack = vec![0u8; SIZE as usize];
    for &(off, v) in words {
        put(&mut stack, off, v, 8);
    }
    image.insert(STACK, stack);
    let mut irq = vec![0u8; SIZE as usize];
    for &(off, v) in irq_words {
        put(&mut irq, off, v, 8);
    }
    image.insert(IRQ, irq);
    image.insert(TEXT, text(returns));
    let mut area = vec![0u8; 0x400];
    put(&mut area, 0x300, IRQ + SIZE - 8, 8); // hardirq_stack_ptr
    image.insert(PCPU, area);
    StackWorld {
        image,
        symbols: symbols(&[]),
        per_cpu: PerCpu::new(vec![PCPU]),
    }
}

fn task(saved_sp: u64, current: bool) -> Task {
    Task {
        address: DIRECT + 0x1000,
        pid: 7,
        tgid: 7,
        ppid: Some(1),
        comm: "t".into(),
        state: TaskState::Sleeping,
        raw_state: (1, 0),
        flags: 0,
        cpu: Some(0),
        current,
        idle: false,
        mm: 0,
        stack: STACK,
        saved_sp,
        vsz_pages: None,
        rss_pages: None,
    }
}

fn regs(rip: u64, rsp: u64, rbp: u64) -> X86_64Registers {
    X86_64Registers {
        rip,
        rsp,
        rbp,
        cs: 0x10,
        ..X86_64Registers::default()
    }
}

fn unwinder<'a>(w: &'a StackWorld, cpus: &[CpuState]) -> Unwinder<'a> {
    Unwinder::with_layout(
        &w.image,
        &w.symbols,
        stack_layout(),
        orc_table(),
        &w.per_cpu,
        cpus,
    )
    .unwrap()
}

fn frame_names(bt: &kscope_kernel::Backtrace) -> Vec<String> {
    bt.frames
        .iter()
        .map(|f| format!("{}+{:#x}", f.symbol.as_deref().unwrap_or("?"), f.offset))
        .collect()
}

#[test]
fn a_sound_stack_unwinds_through_orc_to_its_end() {
    let sp = STACK + 0x3f00;
    let w = stack_world(
        &[
            (0x3f00, TEXT + 0x210),
            (0x3f08, 0x1234),
            (0x3f10, TEXT + 0x308),
        ],
        &[],
        &[],
    );
    let u = unwinder(&w, &[]);
    let bt = u.backtrace_from(
        &task(0, false),
        &regs(TEXT + 0x105, sp, 0),
        Start::Registers { cpu: 0 },
    );
    assert_eq!(frame_names(&bt), ["fa+0x5", "fb+0x10", "fc+0x8"]);
    assert_eq!(bt.ending, Ending::EndOfStack);
    assert!(bt.is_reliable());
    assert_eq!(
        bt.frames.iter().map(|f| f.sp).collect::<Vec<_>>(),
        [sp, sp + 8, sp + 0x18]
    );
    assert!(bt.frames.iter().all(|f| f.stack == StackKind::Task));
    assert!(u.is_text(TEXT) && !u.is_text(TEXT + 0x1000));
    assert_eq!(u.kernel_orc().len(), 7);
}

#[test]
fn a_switched_out_task_starts_at_its_saved_frame() {
    // inactive_task_frame at 0x3e00: bp at +40, ret_addr at +48.
    let w = stack_world(
        &[
            (0x3e28, 0x4321),
            (0x3e30, TEXT + 0x110),
            (0x3e38, TEXT + 0x308),
        ],
        &[],
        &[],
    );
    let u = unwinder(&w, &[]);
    let bt = u.backtrace(&task(STACK + 0x3e00, false));
    assert_eq!(bt.start, Start::SavedContext);
    assert_eq!(frame_names(&bt), ["fa+0x10", "fc+0x8"]);
    assert_eq!(bt.frames[0].source, FrameSource::SavedContext);
    assert!(!bt.frames[0].exact);

    // A saved stack pointer off the task's stack gives no frame, and why.
    let bt = u.backtrace(&task(DIRECT, false));
    assert!(bt.frames.is_empty());
    assert!(
        matches!(bt.ending, Ending::Error(ref e) if e.contains("not on the task's stack")),
        "{:?}",
        bt.ending
    );
}

#[test]
fn a_frame_that_does_not_move_falls_back_and_ends_in_a_marked_scan() {
    // fa returns into fbad, whose entry keeps sp where it is; the frame
    // pointer leads nowhere; a scan finds fc+0x8 after a call.
    let w = stack_world(
        &[
            (0x3f00, TEXT + 0x510),
            (0x3f40, TEXT + 0x308),
            (0x3f48, TEXT + 0x908),
        ],
        &[],
        &[TEXT + 0x308],
    );
    let u = unwinder(&w, &[]);
    let bt = u.backtrace_from(
        &task(0, false),
        &regs(TEXT + 0x105, STACK + 0x3f00, 0),
        Start::Registers { cpu: 0 },
    );
    assert!(
        matches!(bt.ending, Ending::Error(ref e) if e.contains("wrong way")),
        "{:?}",
        bt.ending
    );
    assert_eq!(frame_names(&bt), ["fa+0x5", "fbad+0x10", "fc+0x8"]);
    let last = bt.frames.last().unwrap();
    assert_eq!((last.source, last.sp), (FrameSource::Scan, STACK + 0x3f48));
    assert!(!last.is_reliable() && !bt.is_reliable());
}

#[test]
fn code_without_orc_unwinds_by_its_frame_pointer() {
    // TEXT+0x10 is below the first ORC entry: rbp = 0x3f00 holds the
    // caller's rbp, 0x3f08 the return address into fb.
    let w = stack_world(
        &[
            (0x3f00, STACK + 0x3f40),
            (0x3f08, TEXT + 0x210),
            (0x3f18, TEXT + 0x308),
        ],
        &[],
        &[],
    );
    let u = unwinder(&w, &[]);
    let bt = u.backtrace_from(
        &task(0, false),
        &regs(TEXT + 0x10, STACK + 0x3ef0, STACK + 0x3f00),
        Start::Registers { cpu: 0 },
    );
    assert_eq!(frame_names(&bt), ["_stext+0x10", "fb+0x10", "fc+0x8"]);
    assert_eq!(bt.frames[1].source, FrameSource::FramePointer);
    assert_eq!(bt.frames[2].source, FrameSource::Orc);
    assert_eq!(bt.ending, Ending::EndOfStack);
    assert!(!bt.is_reliable());
}

#[test]
fn an_entry_from_user_space_ends_with_its_registers() {
    // fentry's pt_regs at sp: ip at +128, cs at +136, sp at +152.
    let base = 0x3e00;
    let w = stack_world(
        &[
            (base + 128, 0x40_1000),
            (base + 136, 0x33),
            (base + 152, 0x7ffe_0000),
            (base + 32, 0x77),
        ],
        &[],
        &[],
    );
    let u = unwinder(&w, &[]);
    let bt = u.backtrace_from(
        &task(0, false),
        &regs(TEXT + 0x404, STACK + base, 0),
        Start::Registers { cpu: 0 },
    );
    assert_eq!(bt.ending, Ending::UserMode);
    assert_eq!(frame_names(&bt), ["fentry+0x4"]);
    let user = bt.user_regs.unwrap();
    assert_eq!(
        (user.rip, user.rsp, user.cs, user.rbp),
        (0x40_1000, 0x7ffe_0000, 0x33, 0x77)
    );

    // A CPU stopped in user mode has no kernel frames at all.
    let cpu = CpuState {
        cpu: 0,
        pid: 1,
        registers: Some(X86_64Registers {
            cs: 0x33,
            rip: 0x40_2000,
            ..X86_64Registers::default()
        }),
    };
    let u = unwinder(&w, std::slice::from_ref(&cpu));
    let bt = u.backtrace(&task(0, true));
    assert_eq!(
        (bt.start, &bt.ending, bt.frames.len()),
        (Start::Registers { cpu: 0 }, &Ending::UserMode, 0)
    );
}

#[test]
fn an_interrupt_on_the_irq_stack_unwinds_back_to_the_task_stack() {
    // The CPU is in firq on its IRQ stack, whose top word holds the task
    // stack pointer 0x3f00; there, a return address into fc.
    let top = SIZE - 8;
    let w = stack_world(&[(0x3ef8, TEXT + 0x308)], &[(top, STACK + 0x3f00)], &[]);
    let cpu = CpuState {
        cpu: 0,
        pid: 1,
        registers: Some(regs(TEXT + 0x705, IRQ + top, 0)),
    };
    let u = unwinder(&w, std::slice::from_ref(&cpu));
    let bt = u.backtrace(&task(STACK + 0x3000, true));
    assert_eq!(bt.start, Start::Registers { cpu: 0 });
    assert_eq!(frame_names(&bt), ["firq+0x5", "fc+0x8"]);
    assert_eq!(bt.frames[0].stack, StackKind::Irq { cpu: 0 });
    assert_eq!(bt.frames[1].stack, StackKind::Task);
    assert_eq!(bt.ending, Ending::EndOfStack);

    // Registers whose stack pointer is on no stack of the task or CPU:
    // the saved context is used instead.
    let cpu = CpuState {
        cpu: 0,
        pid: 1,
        registers: Some(regs(TEXT + 0x705, DIRECT, 0)),
    };
    let u = unwinder(&w, std::slice::from_ref(&cpu));
    assert_eq!(
        u.backtrace(&task(STACK + 0x3000, true)).start,
        Start::SavedContext
    );
}

#[test]
fn a_stack_that_returns_to_a_stack_it_left_stops() {
    // From the IRQ stack to the task stack (firq), where fentry's pt_regs
    // lead back onto the IRQ stack.
    let top = SIZE - 8;
    let base = 0x3e00;
    let w = stack_world(
        &[
            (base - 8, TEXT + 0x410),
            (base + 128, TEXT + 0x105),
            (base + 136, 0x10),
            (base + 152, IRQ + 0x100),
        ],
        &[(top, STACK + base)],
        &[TEXT + 0x308],
    );
    let u = unwinder(&w, &[]);
    let bt = u.backtrace_from(
        &task(0, false),
        &regs(TEXT + 0x705, IRQ + top, 0),
        Start::Registers { cpu: 0 },
    );
    assert!(
        matches!(bt.ending, Ending::Error(ref e) if e.contains("came back")),
        "{:?} {:?}",
        bt.ending,
        frame_names(&bt)
    );
    assert_eq!(frame_names(&bt)[..2], ["firq+0x5", "fentry+0x10"]);
}

#[test]
fn an_endless_chain_of_frames_stops_at_the_limit() {
    // Every word of the stack returns into frameless fa.
    let words: Vec<(u64, u64)> = (0..SIZE / 8).map(|i| (8 * i, TEXT + 0x110)).collect();
    let w = stack_world(&words, &[], &[]);
    let u = unwinder(&w, &[]);
    let bt = u.backtrace_from(
        &task(0, false),
        &regs(TEXT + 0x105, STACK, 0),
        Start::Registers { cpu: 0 },
    );
    assert_eq!(
        (bt.frames.len(), &bt.ending),
        (MAX_FRAMES, &Ending::FrameLimit)
    );
}

#[test]
fn garbage_on_the_stack_ends_in_an_error_not_a_hang() {
    // An undefined entry, a return address that is not code, and a stack
    // pointer outside every stack.
    for (ip, words) in [
        (TEXT + 0x605, vec![]),
        (TEXT + 0x105, vec![(0x3f00, 0xdead_beef)]),
        (
            TEXT + 0x105,
            vec![(0x3f00, TEXT + 0x210), (0x3f10, TEXT + 0x110)],
        ),
    ] {
        let w = stack_world(&words, &[], &[]);
        let u = unwinder(&w, &[]);
        let bt = u.backtrace_from(
            &task(0, false),
            &regs(ip, STACK + 0x3f00, DIRECT),
            Start::Registers { cpu: 0 },
        );
        assert!(
            matches!(bt.ending, Ending::Error(_)),
            "{ip:#x}: {:?}",
            bt.ending
        );
        assert!(
            !bt.frames.is_empty() && bt.frames.len() < 4,
            "{:?}",
            frame_names(&bt)
        );
    }
    let w = stack_world(&[], &[], &[]);
    let u = unwinder(&w, &[]);
    let bt = u.backtrace_from(
        &task(0, false),
        &regs(TEXT + 0x105, 0x1000, 0),
        Start::Registers { cpu: 0 },
    );
    assert_eq!(bt.frames.len(), 1);
    assert!(
        matches!(bt.ending, Ending::Error(ref e) if e.contains("not on a known stack")),
        "{:?}",
        bt.ending
    );
}

#[test]
fn an_absurd_pt_regs_size_is_refused_not_read() {
    let w = stack_world(&[], &[], &[]);
    let layout = StackLayout {
        pt_regs_size: 1 << 30,
        ..stack_layout()
    };
    let u =
        Unwinder::with_layout(&w.image, &w.symbols, layout, orc_table(), &w.per_cpu, &[]).unwrap();
    let bt = u.backtrace_from(
        &task(0, false),
        &regs(TEXT + 0x404, STACK + 0x3e00, 0),
        Start::Registers { cpu: 0 },
    );
    assert!(
        matches!(bt.ending, Ending::Error(ref e) if e.contains("pt_regs of 1073741824 bytes")),
        "{:?}",
        bt.ending
    );
}

// --------------------------------------------------------------- modules

const MODULE_SIZE: u64 = 0x200;

fn module_layout(memory: ModuleMemoryLayout) -> ModuleLayout {
    ModuleLayout {
        size: MODULE_SIZE,
        list: 0x8,
        name: 0x18,
        name_len: 56,
        state: 0,
        taints: 0x100,
        memory,
        orc: Some((0x110, 0x118, 0x120)),
        states: [Some(0), Some(1), Some(2), Some(3)],
        taint_flag: Some((3, 0)),
    }
}

fn put_module(image: &mut MemoryImage, addr: u64, name: &str, next: u64, state: u64, taints: u64) {
    let mut m = vec![0u8; MODULE_SIZE as usize];
    put(&mut m, 0, state, 4);
    put(&mut m, 0x8, next, 8);
    m[0x18..0x18 + name.len()].copy_from_slice(name.as_bytes());
    put(&mut m, 0x100, taints, 8);
    // core_layout at 0x60: base, size (u32), text_size (u32); or mem[]
    // at 0x60 of 0x10-byte {base, size} records.
    put(&mut m, 0x60, 0xffff_ffff_c000_0000, 8);
    put(&mut m, 0x68, 0x5000, 4);
    put(&mut m, 0x6c, 0x2000, 4);
    put(&mut m, 0x70, 0xffff_ffff_c000_8000, 8);
    put(&mut m, 0x78, 0x1000, 4);
    put(&mut m, 0x110, 12, 4);
    put(&mut m, 0x118, 0xffff_ffff_c000_3000, 8);
    put(&mut m, 0x120, 0xffff_ffff_c000_4000, 8);
    image.insert(addr, m);
}

#[test]
fn modules_read_with_either_memory_layout_and_taint_letters() {
    let head = DATA + 0x3000;
    let (m1, m2) = (DIRECT + 0x5000, DIRECT + 0x6000);
    let mut image = MemoryImage::default();
    image.insert(
        head,
        [(m1 + 8).to_le_bytes(), (m2 + 8).to_le_bytes()].concat(),
    );
    put_module(&mut image, m1, "first", m2 + 8, 0, 1 << 12 | 1);
    put_module(&mut image, m2, "second", head, 1, 0);
    // taint_flag {c_true, c_false, module}: P/G for bit 0, O/ for 12.
    let mut flags = vec![b' '; 3 * 20];
    flags[0] = b'P';
    flags[36] = b'O';
    image.insert(DATA + 0x4000, flags);

    let core = module_layout(ModuleMemoryLayout::CoreLayout {
        core_layout: 0x60,
        base: 0,
        size: 8,
        text_size: 0xc,
    });
    let list = ModuleList::read(&image, &symbols(&[]), &core).unwrap();
    assert!(list.problems.is_empty(), "{:?}", list.problems);
    let first = &list.modules[0];
    assert_eq!(
        (
            first.name.as_str(),
            first.state,
            first.base,
            first.size,
            first.text_size
        ),
        (
            "first",
            ModuleState::Live,
            0xffff_ffff_c000_0000,
            0x5000,
            0x2000
        )
    );
    assert_eq!(first.taint_letters.as_deref(), Some("PO"));
    assert_eq!(first.orc.map(|o| o.count), Some(12));
    assert_eq!(
        (list.modules[1].name.as_str(), list.modules[1].state),
        ("second", ModuleState::Coming)
    );

    // Linux 6.4's mem[]: text (0) and data (1) are core, 2 is init.
    let mem = module_layout(ModuleMemoryLayout::Mem {
        mem: 0x60,
        stride: 0x10,
        base: 0,
        size: 8,
        text: 0,
        core: vec![0, 1],
    });
    let list = ModuleList::read(&image, &symbols(&[]), &mem).unwrap();
    let first = &list.modules[0];
    assert_eq!(
        (first.base, first.size, first.text_size),
        (0xffff_ffff_c000_0000, 0x5000 + 0x1000, 0x5000)
    );
}

#[test]
fn a_module_list_that_loops_or_breaks_keeps_what_it_read() {
    let head = DATA + 0x3000;
    let (m1, m2) = (DIRECT + 0x5000, DIRECT + 0x6000);
    let layout = module_layout(ModuleMemoryLayout::CoreLayout {
        core_layout: 0x60,
        base: 0,
        size: 8,
        text_size: 0xc,
    });
    let mut image = MemoryImage::default();
    image.insert(head, (m1 + 8).to_le_bytes().to_vec());
    put_module(&mut image, m1, "first", m2 + 8, 0, 1);
    put_module(&mut image, m2, "second", m1 + 8, 7, 0);
    let list = ModuleList::read(&image, &symbols(&[]), &layout).unwrap();
    assert_eq!(list.modules.len(), 2);
    assert_eq!(list.modules[1].state, ModuleState::Unknown(7));
    assert!(
        list.problems[0].contains("loops back"),
        "{:?}",
        list.problems
    );
    // No taint_flags in memory: no letters, but the bits.
    assert_eq!(
        (
            list.modules[0].taints,
            list.modules[0].taint_letters.as_deref()
        ),
        (1, None)
    );

    // A module whose struct is cut short.
    image.insert(m2, vec![0u8; 0x10]);
    let mut node = vec![0u8; 0x10];
    put(&mut node, 0, head, 8);
    image.insert(m2, node);
    let list = ModuleList::read(&image, &symbols(&[]), &layout).unwrap();
    assert_eq!(list.modules.len(), 1);
    assert!(
        list.problems.iter().any(|p| p.contains("cannot read")),
        "{:?}",
        list.problems
    );

    let err = ModuleList::read(&image, &SymbolTable::default(), &layout).unwrap_err();
    assert!(matches!(err, Error::MissingSymbol(ref s) if s == "modules"));
}

/// The seeds of the `kernel_orc` fuzz target, in its input's layout (a
/// layout byte, `n` ip-table entries and `n` ORC entries in the first
/// half of the rest, the stack after them): the table above padded with
/// end-of-stack entries to 64, and a stack that unwinds from registers
/// (fa → fb → fc) and from a saved context (fa → fc). Written to the
/// directory `KSCOPE_FUZZ_SEEDS` names, when it is set.
#[test]
fn the_orc_fuzz_seeds_unwind_to_the_end() {
    const ORC_IP: u64 = TEXT + 0x2000;
    let n = 64usize;
    let mut entries: Vec<(u64, Vec<u8>)> = vec![
        (0x100, orc(8, 0, 5, 0, 0, false)),
        (0x200, orc(16, -16, 5, 1, 0, false)),
        (0x300, orc(0, 0, 0, 0, 0, true)),
        (0x400, orc(0, 0, 5, 0, 1, false)),
        (0x500, orc(0, 0, 5, 0, 0, false)),
        (0x600, orc(0, 0, 0, 0, 0, false)),
        (0x700, orc(0, 0, 9, 0, 0, false)),
    ];
    let real = entries.len();
    entries.extend((0..n - real).map(|i| (0x1000 + 16 * i as u64, orc(0, 0, 0, 0, 0, true))));
    let ips: Vec<u8> = entries
        .iter()
        .enumerate()
        .map(|(i, (off, _))| ((TEXT + off) as i64 - (ORC_IP + 4 * i as u64) as i64) as i32)
        .flat_map(i32::to_le_bytes)
        .collect();
    let raw: Vec<u8> = entries.iter().flat_map(|(_, e)| e.clone()).collect();
    let mut stack = vec![0u8; 10 * n];
    // Where the target points the saved stack pointer, rip, rsp, rbp.
    for (at, value) in [(0, 0x100), (8, 0x105), (16, 0x180), (24, 0)] {
        put(&mut stack, at, value, 8);
    }
    for (at, value) in [
        (0x180, TEXT + 0x210),
        (0x190, TEXT + 0x308),
        (0x130, TEXT + 0x110),
        (0x138, TEXT + 0x308),
    ] {
        put(&mut stack, at, value, 8);
    }

    // Read back as the target reads it.
    let table = OrcTable::parse(&ips, ORC_IP, &raw, Some(OrcVersion::V1)).unwrap();
    assert_eq!(table.len(), n);
    let words: Vec<(u64, u64)> = stack
        .chunks_exact(8)
        .enumerate()
        .map(|(i, w)| (8 * i as u64, u64::from_le_bytes(w.try_into().unwrap())))
        .collect();
    let w = stack_world(&words, &[], &[]);
    let u = Unwinder::with_layout(&w.image, &w.symbols, stack_layout(), table, &w.per_cpu, &[])
        .unwrap();
    let from_regs = u.backtrace_from(
        &task(0, false),
        &regs(TEXT + 0x105, STACK + 0x180, 0),
        Start::Registers { cpu: 0 },
    );
    assert_eq!(frame_names(&from_regs), ["fa+0x5", "fb+0x10", "fc+0x8"]);
    let saved = u.backtrace(&task(STACK + 0x100, false));
    assert_eq!(frame_names(&saved), ["fa+0x10", "fc+0x8"]);
    assert_eq!(
        (&from_regs.ending, &saved.ending),
        (&Ending::EndOfStack, &Ending::EndOfStack)
    );

    if let Some(dir) = std::env::var_os("KSCOPE_FUZZ_SEEDS") {
        let dir = std::path::PathBuf::from(dir);
        for (layout, name) in [(0u8, "detected"), (1, "v1")] {
            let seed = [vec![layout], ips.clone(), raw.clone(), stack.clone()].concat();
            std::fs::write(dir.join(format!("orc-{name}")), seed).unwrap();
        }
    }
}
