//! `ps` on the real dumps, against drgn's list (`oracle/drgn-ps.txt`:
//! each CPU's idle task, then `for_each_task`), which is right on this
//! kernel where crash 8.0.2's `ps` is not.

use kscope_btf::Btf;
use kscope_kernel::{TaskList, TaskState, read_tasks};

use crate::dumps::{Kernel, Variant, drgn_ps, loaded, variants};

fn tasks_of(variant: &Variant, form: &str) -> TaskList {
    let dump = crate::dumps::open(variant, form);
    let kernel = Kernel::new(variant, &dump);
    let btf = Btf::parse(&kernel.btf).unwrap();
    read_tasks(&kernel.memory, &kernel.symbols, &btf).unwrap()
}

#[test]
fn ps_lists_the_tasks_drgn_lists() {
    for l in loaded("ps on real vmcores") {
        let (variant, list) = (&l.variant, &l.tasks);
        let name = &variant.name;
        assert!(list.problems.is_empty(), "{name}: {:?}", list.problems);
        let oracle = drgn_ps(variant);
        assert_eq!(list.tasks.len(), oracle.len(), "{name}: task count");
        for (ours, theirs) in list.tasks.iter().zip(&oracle) {
            let what = format!("{name}: pid {} {}", theirs.pid, theirs.comm);
            assert_eq!(ours.address, theirs.address, "{what}: address");
            assert_eq!(ours.pid, theirs.pid, "{what}: pid");
            assert_eq!(ours.ppid, Some(theirs.ppid), "{what}: ppid");
            assert_eq!(ours.cpu, Some(theirs.cpu), "{what}: cpu");
            assert_eq!(ours.state.letter(), theirs.state, "{what}: state");
            assert_eq!(ours.comm, theirs.comm, "{what}: comm");
            assert_eq!(ours.current, theirs.current, "{what}: current");
        }
    }
}

#[test]
fn the_panicking_sh_is_the_current_task_of_cpu_1() {
    for l in loaded("ps on real vmcores") {
        let (variant, list) = (&l.variant, &l.tasks);
        let name = &variant.name;
        let pid: i32 = variant.var("PANIC_PID").parse().unwrap();
        let cpu: u32 = variant.var("PANIC_CPU").parse().unwrap();
        assert_eq!(list.panic_cpu, Some(cpu), "{name}");
        let sh = list.panic_task().unwrap();
        assert_eq!(
            (sh.pid, sh.tgid, sh.comm.as_str()),
            (pid, pid, variant.var("PANIC_COMM")),
            "{name}"
        );
        assert_eq!(sh.cpu, Some(cpu), "{name}");
        assert!(sh.current && !sh.is_kernel_thread() && sh.mm != 0, "{name}");
        assert_eq!((sh.state, sh.ppid), (TaskState::Running, Some(1)), "{name}");
        // crash's ps shows VSZ 2260 KB for it. Its RSS is 1 page in the
        // mm's counters and 393 more that the task has not yet added to
        // them (drgn: mm->rss_stat and task->rss_stat); crash counts 15.
        assert_eq!(sh.vsz_pages, Some(565), "{name}");
        assert!(
            sh.rss_pages.is_some_and(|p| p > 300),
            "{name}: {:?}",
            sh.rss_pages
        );
        assert_eq!(list.current_on(cpu).map(|t| t.pid), Some(pid), "{name}");

        for (comm, pid) in [
            ("swapper/0", 0),
            ("swapper/1", 0),
            ("kthreadd", 2),
            ("ksoftirqd/0", 14),
            ("ksoftirqd/1", 21),
        ] {
            let task = list
                .tasks
                .iter()
                .find(|t| t.comm == comm)
                .unwrap_or_else(|| panic!("{name}: no {comm}"));
            assert_eq!(task.pid, pid, "{name}: {comm}");
            assert!(task.is_kernel_thread(), "{name}: {comm}");
            assert_eq!(task.display_comm(), format!("[{comm}]"));
            assert_eq!((task.mm, task.vsz_pages, task.rss_pages), (0, None, None));
        }
        let idle: Vec<_> = list
            .tasks
            .iter()
            .filter(|t| t.idle)
            .map(|t| t.comm.as_str())
            .collect();
        assert_eq!(idle, ["swapper/0", "swapper/1"], "{name}");
        assert_eq!(list.with_pid(0).count(), 2, "{name}");
        let init = list.with_pid(1).next().unwrap();
        assert_eq!(
            (init.comm.as_str(), init.state.letter()),
            ("init", 'S'),
            "{name}"
        );
        let sleep = list.tasks.iter().find(|t| t.comm == "sleep").unwrap();
        assert_eq!(
            (sleep.ppid, sleep.state),
            (Some(1), TaskState::Sleeping),
            "{name}"
        );
    }
}

/// crash 8.0.2's `ps` on this kernel lists only the idle tasks and the
/// panicking one (it reads pids through a `struct pid` layout that Debian's
/// 6.1.192 changed); those it lists agree with ours but the parent of the
/// panicking task, which it shows as -1.
#[test]
fn crash_ps_lists_a_subset_of_ours() {
    for variant in variants("ps on real vmcores") {
        let list = tasks_of(&variant, "vmcore-zlib.kdump");
        let name = &variant.name;
        let crash = variant.oracle("crash-ps.txt");
        let rows: Vec<Vec<&str>> = crash
            .lines()
            .skip(1)
            .map(|l| l.trim_start_matches('>').split_whitespace().collect())
            .filter(|f: &Vec<&str>| f.len() >= 9)
            .collect();
        assert!(
            rows.len() < list.tasks.len(),
            "{name}: crash lists {} tasks",
            rows.len()
        );
        for row in rows {
            let address = u64::from_str_radix(row[3], 16).unwrap();
            let ours = list
                .at(address)
                .unwrap_or_else(|| panic!("{name}: no task at {}", row[3]));
            assert_eq!(ours.pid.to_string(), row[0], "{name}");
            assert_eq!(
                ours.cpu.map(|c| c.to_string()).as_deref(),
                Some(row[2]),
                "{name}"
            );
            assert_eq!(ours.state.crash_name(), row[4], "{name}");
            assert_eq!(ours.display_comm(), row[8], "{name}");
            let vsz_kb = ours.vsz_pages.unwrap_or(0) * 4;
            assert_eq!(vsz_kb.to_string(), row[6], "{name}: VSZ of {}", row[8]);
        }
    }
}
