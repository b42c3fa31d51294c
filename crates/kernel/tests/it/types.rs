//! Kernel types from the BTF in each dump's memory: layouts, offsets by
//! path, and structs printed as crash prints them (crash 8.0.2's
//! `struct TYPE ADDRESS` output on the same dump, made by
//! `scripts/make-vmcore --oracles` in `oracle/crash-struct-*.txt`).

use kscope_btf::Btf;
use kscope_kernel::types::{ValuePrinter, find_member, member_offset, struct_layout};
use kscope_kernel::{read_btf, read_kallsyms};
use kscope_vmcore::KernelMemory;

use crate::dumps::{Dumps, variants};

#[test]
fn structs_print_as_crash_prints_them() {
    for variant in variants("types of real dumps") {
        // The form crash read.
        let dump = variant.open("vmcore-zlib.kdump");
        let memory = KernelMemory::new(&dump).unwrap();
        let symbols = read_kallsyms(&memory, dump.vmcoreinfo().unwrap()).unwrap();
        let blob = read_btf(&memory, &symbols).unwrap();
        let btf = Btf::parse(&blob).unwrap();
        let printer = ValuePrinter::new(&btf)
            .with_symbols(&symbols)
            .with_memory(&memory);

        // init_uts_ns.name, at the offset VMCOREINFO and BTF agree on.
        let name = member_offset(&btf, "struct uts_namespace", "name").unwrap();
        let info = dump.vmcoreinfo().unwrap();
        assert_eq!(Some(name), info.offset("uts_namespace", "name"));
        let uts = symbols.required("init_uts_ns").unwrap() + name;
        let text = printer.print_struct("new_utsname", uts).unwrap();
        let crash = variant
            .file("oracle/crash-struct-new_utsname.txt")
            .expect("oracle/crash-struct-new_utsname.txt (scripts/make-vmcore --oracles)");
        assert_eq!(text, crash, "{}", variant.name);

        let init_task = symbols.required("init_task").unwrap();
        let task = printer.print_struct("task_struct", init_task).unwrap();
        assert!(
            task.contains("\n  comm = \"swapper/0\\000"),
            "{}",
            variant.name
        );
        assert!(
            task.contains("\n  pid = 0,\n  tgid = 0,\n"),
            "{}",
            variant.name
        );
        // All 1019 lines, pointers and their symbols included.
        let crash = variant
            .file("oracle/crash-struct-task_struct-init_task.txt")
            .expect(
                "oracle/crash-struct-task_struct-init_task.txt (scripts/make-vmcore --oracles)",
            );
        assert_eq!(task, crash, "{}", variant.name);

        // Layouts and offsets, as a command asks for them.
        let layout = struct_layout(&btf, "task_struct").unwrap();
        assert_eq!(layout.name, "struct task_struct");
        assert_eq!(Some(layout.size), btf.type_size("struct task_struct"));
        let field = |name: &str| layout.fields.iter().find(|f| f.name == name).unwrap();
        assert_eq!(field("comm").type_name, "char [16]");
        assert_eq!(field("comm").size, Some(16));
        assert_eq!(field("tasks").type_name, "struct list_head");
        assert_eq!(field("real_parent").type_name, "struct task_struct *");
        assert_eq!(field("tgid").offset, field("pid").offset + 4);
        // A member of an anonymous union or struct is a field of its own.
        assert!(layout.fields.iter().all(|f| !f.name.is_empty()));
        // Bitfields: sched_reset_on_fork and its neighbours share a word.
        let bits = field("sched_reset_on_fork");
        assert_eq!(
            (bits.bitfield_size, bits.type_name.as_str()),
            (1, "unsigned int")
        );
        let tasks = member_offset(&btf, "task_struct", "tasks").unwrap();
        assert_eq!(
            member_offset(&btf, "task_struct", "tasks.next").unwrap(),
            tasks
        );
        assert_eq!(
            member_offset(&btf, "task_struct", "tasks.prev").unwrap(),
            tasks + 8
        );
        let thread = member_offset(&btf, "task_struct", "thread").unwrap();
        let sp = member_offset(&btf, "thread_struct", "sp").unwrap();
        assert_eq!(
            member_offset(&btf, "task_struct", "thread.sp").unwrap(),
            thread + sp
        );
        // The stack pointer the scheduler saved for the idle task: inside
        // its stack, which `stack` points at.
        let saved = u64::from_le_bytes(
            memory_bytes(&memory, init_task + thread + sp, 8)
                .try_into()
                .unwrap(),
        );
        let stack_field = member_offset(&btf, "task_struct", "stack").unwrap();
        let stack = u64::from_le_bytes(
            memory_bytes(&memory, init_task + stack_field, 8)
                .try_into()
                .unwrap(),
        );
        assert!(
            (stack..stack + 16384).contains(&saved),
            "{}: sp {saved:#x}",
            variant.name
        );
        let func = find_member(&btf, "callback_head", "func").unwrap();
        assert_eq!(
            btf.type_name(func.type_id),
            "void (*)(struct callback_head *)"
        );
        assert_eq!(
            btf.declaration(func.type_id, "func"),
            "void (*func)(struct callback_head *)"
        );
        // Scalars as gdb prints them.
        let ty = |name: &str| kscope_kernel::types::find_type(&btf, name).unwrap();
        assert_eq!(printer.format(ty("bool"), &[1], 0), "true");
        assert_eq!(printer.format(ty("char"), b"A", 0), "65 'A'");
        assert_eq!(printer.format(ty("s8"), &[0xff], 0), "-1 '\\377'");
        assert_eq!(printer.format(ty("int"), &(-5i32).to_le_bytes(), 0), "-5");
        assert_eq!(
            printer.format(ty("enum pid_type"), &[0, 0, 0, 0], 0),
            "PIDTYPE_PID"
        );
        assert_eq!(printer.format(ty("enum pid_type"), &[77, 0, 0, 0], 0), "77");
        assert_eq!(printer.format(ty("int"), &[1, 2], 0), "<unavailable>");
        let list = printer.format(
            ty("struct list_head"),
            &init_task.to_le_bytes().repeat(2),
            0,
        );
        assert_eq!(
            list,
            "{\n  next = 0x%x <init_task>,\n  prev = 0x%x <init_task>\n}"
                .replace("%x", &format!("{init_task:x}"))
        );
        // What cannot be printed says why.
        let bare = ValuePrinter::new(&btf);
        let err = bare.print_struct("task_struct", init_task).unwrap_err();
        assert!(err.to_string().contains("memory"), "{err}");
        let err = printer.print_struct("task_struct", 0x10).unwrap_err();
        assert!(err.to_string().contains("task_struct at 0x10"), "{err}");
        assert!(printer.print_struct("no_such_struct", init_task).is_err());
        assert!(member_offset(&btf, "task_struct", "no_such_member").is_err());
        assert!(member_offset(&btf, "task_struct", "comm.x").is_err());
        assert!(struct_layout(&btf, "no_such_struct").is_err());
    }
}

fn memory_bytes(memory: &KernelMemory<'_>, address: u64, len: usize) -> Vec<u8> {
    memory.read_vec(address, len).unwrap()
}
