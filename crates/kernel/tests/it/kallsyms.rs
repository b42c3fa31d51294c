//! kallsyms decoded from each dump against the kernel's System.map and
//! drgn's decoding of the same tables.

use std::collections::HashSet;

use kscope_kernel::read_kallsyms;
use kscope_kernel::symbols::KERNEL_IMAGE_BASE;
use kscope_vmcore::KernelMemory;

use crate::dumps::{Dumps, variants};

/// What `scripts/kallsyms` leaves out of the tables on purpose: its own
/// tables (their sizes differ between its link passes) and absolute
/// symbols (kind `A`).
const KALLSYMS_TABLES: [&str; 8] = [
    "kallsyms_offsets",
    "kallsyms_relative_base",
    "kallsyms_num_syms",
    "kallsyms_names",
    "kallsyms_markers",
    "kallsyms_seqs_of_names",
    "kallsyms_token_table",
    "kallsyms_token_index",
];

#[test]
fn kallsyms_agrees_with_system_map_and_drgn() {
    for variant in variants("kallsyms of real dumps") {
        let dump = variant.open("vmcore.elf");
        let memory = KernelMemory::new(&dump).unwrap();
        let table = read_kallsyms(&memory, dump.vmcoreinfo().unwrap()).unwrap();
        let decoded: HashSet<(&str, u64)> = table
            .symbols()
            .iter()
            .map(|s| (s.name.as_str(), s.address))
            .collect();

        // Every symbol of the image's text, data, bss and rodata is there,
        // at its System.map address moved by KERNELOFFSET, but the
        // kallsyms tables themselves; what else System.map has is `A`.
        let map = variant.system_map();
        let mut checked = 0;
        let mut missing_image = Vec::new();
        let mut missing_other = Vec::new();
        for s in map.symbols() {
            if decoded.contains(&(s.name.as_str(), s.address)) {
                if "TtDdBbRr".contains(s.kind) && s.address >= KERNEL_IMAGE_BASE {
                    checked += 1;
                }
            } else if "TtDdBbRr".contains(s.kind) && s.address >= KERNEL_IMAGE_BASE {
                missing_image.push(s.name.as_str());
            } else {
                missing_other.push((s.kind, s.name.as_str()));
            }
        }
        missing_image.sort_unstable();
        let mut expected = KALLSYMS_TABLES.to_vec();
        expected.sort_unstable();
        assert_eq!(missing_image, expected, "{}", variant.name);
        assert!(
            missing_other.iter().all(|(kind, _)| *kind == 'A'),
            "{}: {missing_other:?}",
            variant.name
        );
        assert_eq!(missing_other.len(), 6, "{}", variant.name);
        assert_eq!(table.len() + 14, map.len(), "{}", variant.name);
        assert!(checked > 90_000, "{}: {checked}", variant.name);
        assert_eq!(table.len(), 94_266, "{}", variant.name);

        // drgn decoded the same tables of the same dump to the same set.
        let drgn = variant.file("oracle/drgn-kallsyms.txt").unwrap();
        let drgn: HashSet<(&str, u64)> = drgn
            .lines()
            .map(|l| {
                let (address, name) = l.split_once(' ').unwrap();
                (name, u64::from_str_radix(address, 16).unwrap())
            })
            .collect();
        assert_eq!(drgn, decoded, "{}", variant.name);

        // Lookups inside functions and data name what System.map names.
        let offset = variant.kaslr_offset();
        for (link, expected, within) in [
            (0xffff_ffff_8169_0926, "sysrq_handle_crash", 0x16),
            (0xffff_ffff_8100_0000, "_stext", 0),
            (0xffff_ffff_82a1_aae8, "init_task", 168),
            (0xffff_ffff_810f_d480, "dl_task_timer", 0),
        ] {
            let address = link + offset;
            let (symbol, off) = table.lookup(address).unwrap();
            assert_eq!(
                (symbol.name.as_str(), off),
                (expected, within),
                "{}",
                variant.name
            );
            let (by_map, map_off) = map.lookup(address).unwrap();
            assert_eq!((by_map.name.as_str(), map_off), (expected, within));
        }
        // Every 97th text symbol, 5 bytes in.
        for s in map.symbols().iter().filter(|s| s.kind == 'T').step_by(97) {
            let (a, a_off) = table.lookup(s.address + 5).unwrap();
            let (b, b_off) = map.lookup(s.address + 5).unwrap();
            assert_eq!((&a.name, a_off), (&b.name, b_off), "{}", variant.name);
        }
        eprintln!(
            "{}: {} symbols decoded, {} in System.map, {checked} image symbols found at their addresses",
            variant.name,
            table.len(),
            map.len()
        );
    }
}
