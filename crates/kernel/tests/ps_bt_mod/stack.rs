//! `bt` on the real dumps. drgn 0.3.0 (`oracle/drgn-bt.txt`: the
//! panicking task and the task CPU 0 was running, with the -dbg
//! vmlinux's DWARF, so with inlined functions as frames of their own)
//! and crash 8.0.2 (`oracle/crash-bt.txt`: stack slots and return
//! addresses) are the oracles. Run by hand over every task of the four
//! dumps, drgn's non-inlined frames and ours had the same pc and sp
//! everywhere; the sequences below are those drgn shows.

use kscope_btf::Btf;
use kscope_kernel::orc::OrcVersion;
use kscope_kernel::stack::{Backtrace, Ending, FrameSource, StackKind, Start, Unwinder};
use kscope_kernel::{PerCpu, read_kallsyms, read_kernel_orc, read_tasks};

use crate::dumps::{Kernel, Loaded, Variant, loaded, variants};

/// A symbol without its compiler suffix (`.cold`, `.isra.0`...).
fn plain(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

fn names(bt: &Backtrace) -> Vec<&str> {
    bt.frames
        .iter()
        .map(|f| plain(f.symbol.as_deref().unwrap_or("?")))
        .collect()
}

/// drgn's names for the section of drgn-bt.txt whose header contains
/// `marker`, and the user pc it ends with.
fn drgn_section(variant: &Variant, marker: &str) -> (Vec<String>, Option<u64>) {
    let text = variant.oracle("drgn-bt.txt");
    let section = text
        .split("\n\n")
        .find(|s| s.lines().next().is_some_and(|l| l.contains(marker)))
        .unwrap_or_else(|| panic!("{}: no {marker} in drgn-bt.txt", variant.name));
    let mut names = Vec::new();
    let mut user = None;
    for line in section.lines().skip(1) {
        let what = line.split_whitespace().nth(1).unwrap();
        if let Some(hex) = what.strip_prefix("0x") {
            // The first address past the kernel frames is the user RIP;
            // drgn may go on through user frames it cannot unwind (0x0).
            if user.is_none() {
                user = Some(u64::from_str_radix(hex, 16).unwrap());
            }
        } else {
            names.push(what.split('+').next().unwrap().to_string());
        }
    }
    (names, user)
}

/// Whether our names appear in drgn's in order: drgn has inlined
/// functions as frames too, and names assembly by the symbol that has
/// a size (`entry_SYSCALL_64` for our `entry_SYSCALL_64_after_hwframe`).
fn in_drgn_order(ours: &[&str], drgn: &[String]) -> bool {
    let mut theirs = drgn.iter();
    ours.iter()
        .all(|o| theirs.any(|t| o == t || o.starts_with(&format!("{t}_"))))
}

fn unwinder(l: &Loaded) -> Unwinder<'static> {
    Unwinder::new(
        &l.kernel.memory,
        &l.kernel.symbols,
        &l.btf,
        &l.per_cpu,
        l.dump.cpus(),
    )
    .unwrap()
}

#[test]
fn the_panicking_task_unwinds_through_the_sysrq_crash_path() {
    for l in loaded("bt on real vmcores") {
        let (variant, s) = (&l.variant, l);
        let unwinder = unwinder(l);
        let name = &variant.name;
        let sh = s.tasks.panic_task().unwrap();
        let bt = unwinder.backtrace(sh);
        let cpu: u32 = variant.var("PANIC_CPU").parse().unwrap();
        assert_eq!(bt.start, Start::Registers { cpu }, "{name}");
        assert_eq!(bt.ending, Ending::UserMode, "{name}");
        assert!(bt.is_reliable(), "{name}");
        assert_eq!(
            names(&bt),
            [
                "delay_tsc",
                "panic",
                "sysrq_handle_crash",
                "__handle_sysrq",
                "write_sysrq_trigger",
                "proc_reg_write",
                "vfs_write",
                "ksys_write",
                "do_syscall_64",
                "entry_SYSCALL_64_after_hwframe"
            ],
            "{name}"
        );
        assert_eq!(bt.frames[0].source, FrameSource::Registers);
        assert!(bt.frames[0].exact && bt.frames[0].regs.is_some(), "{name}");
        assert!(
            bt.frames[1..]
                .iter()
                .all(|f| !f.exact && f.source == FrameSource::Orc)
        );
        assert!(
            bt.frames.iter().all(|f| f.stack == StackKind::Task),
            "{name}"
        );

        let (drgn, drgn_user) = drgn_section(variant, "(the panicking task)");
        assert!(
            in_drgn_order(&names(&bt), &drgn),
            "{name}: {:?} vs {drgn:?}",
            names(&bt)
        );
        let user = bt.user_regs.as_ref().unwrap();
        assert_eq!(Some(user.rip), drgn_user, "{name}");

        // crash names each caller's frame by the stack slot holding its
        // return address, and shows the user registers of the entry.
        let crash = variant.oracle("crash-bt.txt");
        let mut matched = 0;
        for line in crash.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let [n, slot, symbol, "at", pc] = f[..]
                && n.starts_with('#')
            {
                let slot = u64::from_str_radix(slot.trim_matches(['[', ']']), 16).unwrap();
                let pc = u64::from_str_radix(pc, 16).unwrap();
                if let Some(frame) = bt.frames.iter().find(|f| f.pc == pc) {
                    assert_eq!(frame.sp - 8, slot, "{name}: {line}");
                    assert_eq!(frame.symbol.as_deref(), Some(symbol), "{name}: {line}");
                    matched += 1;
                }
            }
            if let Some(rest) = line.trim().strip_prefix("RIP: ") {
                let f: Vec<&str> = rest.split_whitespace().collect();
                assert_eq!(format!("{:016x}", user.rip), f[0], "{name}");
                assert_eq!(format!("{:016x}", user.rsp), f[2], "{name}");
            }
        }
        // All of ours but delay_tsc, where crash starts at panic; crash
        // adds three stale return addresses it finds on the stack.
        assert_eq!(matched, bt.frames.len() - 1, "{name}");
    }
}

#[test]
fn the_task_cpu_0_ran_unwinds_from_its_irq_stack_to_its_own() {
    for l in loaded("bt on real vmcores") {
        let (variant, s) = (&l.variant, l);
        let unwinder = unwinder(l);
        let name = &variant.name;
        let task = s.tasks.current_on(0).unwrap();
        let bt = unwinder.backtrace(task);
        assert_eq!(
            (bt.start, &bt.ending),
            (Start::Registers { cpu: 0 }, &Ending::EndOfStack),
            "{name}"
        );
        assert!(bt.is_reliable(), "{name}");
        let ours = names(&bt);
        assert_eq!(
            ours[..4],
            [
                "stop_this_cpu",
                "__sysvec_reboot",
                "sysvec_reboot",
                "asm_sysvec_reboot"
            ],
            "{name}"
        );
        let (drgn, _) = drgn_section(variant, "(current on CPU 0)");
        assert!(in_drgn_order(&ours, &drgn), "{name}: {ours:?} vs {drgn:?}");
        // The reboot IPI ran on CPU 0's IRQ stack; its pt_regs hold where
        // the task was interrupted, the next frame, exact.
        let stacks: Vec<StackKind> = bt.frames.iter().map(|f| f.stack).collect();
        assert_eq!(stacks[..3], [StackKind::Irq { cpu: 0 }; 3], "{name}");
        assert!(stacks[3..].iter().all(|&k| k == StackKind::Task), "{name}");
        let interrupted = &bt.frames[4];
        assert!(
            interrupted.exact
                && interrupted
                    .regs
                    .as_ref()
                    .is_some_and(|r| r.rip == interrupted.pc),
            "{name}"
        );
    }
}

#[test]
fn sleeping_tasks_unwind_from_their_saved_context() {
    for l in loaded("bt on real vmcores") {
        let (variant, s) = (&l.variant, l);
        let unwinder = unwinder(l);
        let name = &variant.name;
        let by_comm = |comm: &str| {
            let task = s.tasks.tasks.iter().find(|t| t.comm == comm).unwrap();
            unwinder.backtrace(task)
        };
        let kthreadd = by_comm("kthreadd");
        assert_eq!(
            names(&kthreadd),
            ["__schedule", "schedule", "kthreadd", "ret_from_fork"],
            "{name}"
        );
        assert_eq!(
            (kthreadd.start, &kthreadd.ending),
            (Start::SavedContext, &Ending::EndOfStack)
        );
        assert_eq!(kthreadd.frames[0].source, FrameSource::SavedContext);
        assert!(kthreadd.user_regs.is_none() && kthreadd.is_reliable());
        let ksoftirqd = by_comm("ksoftirqd/1");
        assert_eq!(
            names(&ksoftirqd),
            [
                "__schedule",
                "schedule",
                "smpboot_thread_fn",
                "kthread",
                "ret_from_fork"
            ],
            "{name}"
        );
        let swapper1 = s
            .tasks
            .tasks
            .iter()
            .find(|t| t.comm == "swapper/1")
            .unwrap();
        assert_eq!(
            names(&unwinder.backtrace(swapper1)),
            [
                "__schedule",
                "schedule_idle",
                "do_idle",
                "cpu_startup_entry",
                "start_secondary",
                "secondary_startup_64_no_verify"
            ],
            "{name}"
        );
        let sleep = by_comm("sleep");
        assert_eq!(
            names(&sleep),
            [
                "__schedule",
                "schedule",
                "do_nanosleep",
                "hrtimer_nanosleep",
                "common_nsleep",
                "__x64_sys_clock_nanosleep",
                "do_syscall_64",
                "entry_SYSCALL_64_after_hwframe"
            ],
            "{name}"
        );
        assert_eq!(sleep.ending, Ending::UserMode, "{name}");
        let user = sleep.user_regs.unwrap();
        assert!(
            user.cs & 3 == 3 && user.rip < 0x8000_0000_0000,
            "{name}: {user:?}"
        );
    }
}

#[test]
fn every_task_of_every_dump_unwinds_reliably() {
    for l in loaded("bt on real vmcores") {
        let (variant, s) = (&l.variant, l);
        let unwinder = unwinder(l);
        for task in &s.tasks.tasks {
            let bt = unwinder.backtrace(task);
            let what = format!("{}: pid {} {}", variant.name, task.pid, task.comm);
            assert!(bt.is_reliable() && bt.frames.len() >= 4, "{what}: {bt:?}");
            assert!(bt.frames.iter().all(|f| f.symbol.is_some()), "{what}");
            for pair in bt.frames.windows(2) {
                assert!(
                    pair[0].stack != pair[1].stack || pair[0].sp < pair[1].sp,
                    "{what}"
                );
            }
            // Kernel threads end at their first frame, user tasks at the
            // entry from user space.
            let want = if task.is_kernel_thread() {
                Ending::EndOfStack
            } else {
                Ending::UserMode
            };
            assert_eq!(bt.ending, want, "{what}");
        }
    }
}

#[test]
fn every_form_of_a_dump_gives_the_same_traces() {
    let what = "bt on every form of the 5level-kaslr dump";
    let Some(variant) = variants(what)
        .into_iter()
        .find(|v| v.name == "5level-kaslr")
    else {
        kscope_testkit::live(
            what,
            Some(format!(
                "no 5level-kaslr variant under {}: scripts/make-vmcore --oracles makes it",
                kscope_testkit::vmcores_dir().display()
            )),
        );
        return;
    };
    let traces = |form: &str| {
        let dump = crate::dumps::open(&variant, form);
        let kernel = Kernel::new(&variant, &dump);
        let btf = Btf::parse(&kernel.btf).unwrap();
        let tasks = read_tasks(&kernel.memory, &kernel.symbols, &btf).unwrap();
        let per_cpu = PerCpu::read(&kernel.memory, &kernel.symbols).unwrap();
        let unwinder =
            Unwinder::new(&kernel.memory, &kernel.symbols, &btf, &per_cpu, dump.cpus()).unwrap();
        tasks
            .tasks
            .iter()
            .map(|t| unwinder.backtrace(t))
            .collect::<Vec<_>>()
    };
    let elf = traces("vmcore.elf");
    assert_eq!(elf, traces("vmcore-zlib.kdump"));
    assert_eq!(elf, traces("vmcore-zlib.flat"));
}

#[test]
fn the_orc_layout_from_btf_and_from_the_entries_agree() {
    for l in loaded("bt on real vmcores") {
        let (kernel, name) = (l.kernel, &l.variant.name);
        assert_eq!(OrcVersion::from_btf(&l.btf), Some(OrcVersion::V1), "{name}");
        let by_btf = read_kernel_orc(&kernel.memory, &kernel.symbols, Some(&l.btf)).unwrap();
        let by_data = read_kernel_orc(&kernel.memory, &kernel.symbols, None).unwrap();
        assert_eq!(
            (by_data.version(), by_data.len()),
            (OrcVersion::V1, by_btf.len()),
            "{name}"
        );
        // Debian's 6.1 kernels have about 385,000, covering their text.
        assert!(by_btf.len() > 300_000, "{name}: {}", by_btf.len());
        let (low, high) = by_btf.bounds().unwrap();
        let stext = kernel.symbols.required("_stext").unwrap();
        assert!(
            low <= stext && high > kernel.symbols.required("_etext").unwrap(),
            "{name}"
        );
    }
}

/// With no System.map: the symbols the dump's own kallsyms tables give
/// name the same frames.
#[test]
fn bt_names_the_same_frames_with_the_dumps_own_kallsyms() {
    for l in loaded("bt on real vmcores") {
        let name = &l.variant.name;
        let info = l.dump.vmcoreinfo().unwrap();
        let kallsyms = read_kallsyms(&l.kernel.memory, info).unwrap();
        let with_map = unwinder(l);
        let with_kallsyms = Unwinder::new(
            &l.kernel.memory,
            &kallsyms,
            &l.btf,
            &l.per_cpu,
            l.dump.cpus(),
        )
        .unwrap();
        for task in &l.tasks.tasks {
            let (a, b) = (with_map.backtrace(task), with_kallsyms.backtrace(task));
            assert_eq!(a, b, "{name}: pid {} {}", task.pid, task.comm);
        }
    }
}
