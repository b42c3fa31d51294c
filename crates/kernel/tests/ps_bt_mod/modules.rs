//! `mod` on the real dumps, against crash's (`oracle/crash-mod.txt`):
//! the one module these guests load, qemu_fw_cfg.

use kscope_kernel::modules::ModuleState;
use kscope_kernel::read_modules;
use kscope_kernel::stack::Unwinder;

use crate::dumps::loaded;

#[test]
fn mod_lists_what_crash_lists() {
    for l in loaded("mod on real vmcores") {
        let (variant, kernel) = (&l.variant, l.kernel);
        let list = read_modules(&kernel.memory, &kernel.symbols, &l.btf).unwrap();
        let name = &variant.name;
        assert!(list.problems.is_empty(), "{name}: {:?}", list.problems);
        // MODULE NAME BASE SIZE OBJECT FILE
        let crash: Vec<Vec<String>> = variant
            .oracle("crash-mod.txt")
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .filter(|f: &Vec<String>| f.len() >= 4)
            .collect();
        assert_eq!(list.modules.len(), crash.len(), "{name}");
        for (ours, theirs) in list.modules.iter().zip(&crash) {
            assert_eq!(format!("{:x}", ours.address), theirs[0], "{name}");
            assert_eq!(ours.name, theirs[1], "{name}");
            assert_eq!(format!("{:x}", ours.base), theirs[2], "{name}");
            assert_eq!(ours.size.to_string(), theirs[3], "{name}");
            assert_eq!(ours.state, ModuleState::Live, "{name}");
            assert!(ours.text_size > 0 && ours.text_size < ours.size, "{name}");
            // Debian signs its modules: no taint.
            assert_eq!(
                (ours.taints, ours.taint_letters.as_deref()),
                (0, Some("")),
                "{name}"
            );
            let orc = ours.orc.unwrap();
            assert!(orc.count > 10, "{name}: {orc:?}");
        }

        // The module's ORC table reads, and its code is known as code.
        let mut unwinder = Unwinder::new(
            &kernel.memory,
            &kernel.symbols,
            &l.btf,
            &l.per_cpu,
            l.dump.cpus(),
        )
        .unwrap();
        let module = &list.modules[0];
        assert!(!unwinder.is_text(module.base));
        unwinder.add_module(module).unwrap();
        assert!(unwinder.is_text(module.base) && !unwinder.is_text(module.base + module.text_size));
    }
}
