//! Real dumps: the QEMU dumps of Debian's kernel that `scripts/make-vmcore`
//! leaves under `target/vmcores/<variant>/` (4- and 5-level paging, with
//! and without KASLR), each as QEMU's ELF, QEMU's flattened kdump
//! (`dump-guest-memory -z`) and the kdump file `makedumpfile -R` makes of
//! that. Every form of a variant must give the same VMCOREINFO, CPUs and
//! page bytes; kernel addresses must translate the same way through the
//! image mapping, the direct map and the page tables, checked against the
//! variant's `variant.env` and the guest's own `/proc/kallsyms`.
//! `KSCOPE_VMCORES` names another directory of variants.

use std::path::PathBuf;

use kscope_testkit::{VmcoreVariant, vmcore_variants};
use kscope_vmcore::{
    DumpFormat, KernelMemory, Mapping, PAGE_OFFSET_BASE_L4, PAGE_OFFSET_BASE_L5, Vmcore,
};

/// The variants with dumps, or none after the live gate said why.
fn real_variants(what: &str) -> Vec<VmcoreVariant> {
    vmcore_variants(what, false)
}

#[test]
fn every_form_of_every_variant_opens_and_agrees() {
    for variant in real_variants("reading real vmcores") {
        let forms = variant.forms();
        let dumps: Vec<(PathBuf, Vmcore)> = forms
            .iter()
            .map(|p| {
                let dump = Vmcore::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                (p.clone(), dump)
            })
            .collect();
        let (elf_path, elf) = dumps
            .iter()
            .find(|(_, d)| d.format() == DumpFormat::Elf)
            .unwrap_or_else(|| panic!("{}: no vmcore.elf", variant.dir.display()));
        let ranges = elf.memory_ranges().unwrap();
        assert!(!ranges.is_empty());
        let ram: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        let guest_mb: u64 = variant.var("GUEST_MEMORY_MB").parse().unwrap();
        assert!(
            ram >= guest_mb << 20 && ram < (guest_mb + 512) << 20,
            "{}: {ram} bytes of RAM",
            elf_path.display()
        );
        let text = elf.vmcoreinfo_text().expect("VMCOREINFO in the ELF dump");
        for (path, dump) in &dumps {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let expected = if name.ends_with(".elf") {
                DumpFormat::Elf
            } else if name.ends_with(".flat") {
                DumpFormat::FlattenedKdump
            } else {
                DumpFormat::Kdump
            };
            assert_eq!(dump.format(), expected, "{name}");
            assert_eq!(dump.page_size(), 4096, "{name}");
            assert_eq!(dump.machine(), 62, "{name}");
            assert_eq!(dump.vmcoreinfo_text(), Some(text), "{name}");
            let info = dump.vmcoreinfo().unwrap();
            assert_eq!(
                info.osrelease(),
                Some(variant.var("KERNEL_RELEASE")),
                "{name}"
            );
            assert_eq!(
                info.kernel_offset(),
                Some(u64::from_str_radix(variant.var("KERNELOFFSET"), 16).unwrap()),
                "{name}"
            );
            assert_eq!(
                info.pgtable_l5_enabled(),
                Some(variant.var("PAGING_LEVELS") == "5"),
                "{name}"
            );
            assert_eq!(info.page_size(), Some(4096));
            assert!(info.build_id().is_some_and(|id| id.len() == 20), "{name}");
            let cpus: usize = variant.var("GUEST_CPUS").parse().unwrap();
            assert_eq!(dump.cpus().len(), cpus, "{name}");
            // QEMU wrote the ELF and the flattened dump one after the
            // other while the panicking CPU spun: their registers differ,
            // their CPUs do not.
            let pids = |d: &Vmcore| d.cpus().iter().map(|c| c.pid).collect::<Vec<_>>();
            assert_eq!(pids(dump), pids(elf), "{name}");
            for cpu in dump.cpus() {
                let regs = cpu.registers.expect("x86-64 registers");
                assert!(regs.rip >= 0xffff_ffff_8000_0000, "{name}: cpu {cpu:?}");
                assert!(regs.rsp >= 0xff00_0000_0000_0000, "{name}: cpu {cpu:?}");
            }
            if let Some(header) = dump.kdump_header() {
                assert!(header.header_version >= 6, "{name}: {header:?}");
                assert_eq!(header.block_size, 4096);
                assert_eq!(header.machine, "x86_64");
                assert_eq!(header.nr_cpus as usize, cpus);
                assert_eq!(
                    header.flattened_records.is_some(),
                    expected == DumpFormat::FlattenedKdump
                );
                assert!(header.max_mapnr * 4096 >= ranges.last().unwrap().end - 4096);
            }
        }
        // Every page of every range: the kdump forms (one QEMU dump, flattened and rearranged) must agree
        // byte for byte; the ELF dump, taken a moment apart from a guest
        // that still ran its panic loop, in all but a few pages.
        let kdumps: Vec<&(PathBuf, Vmcore)> = dumps
            .iter()
            .filter(|(_, d)| d.format() != DumpFormat::Elf)
            .collect();
        if let [(first_path, first), ..] = &kdumps[..] {
            assert_eq!(first.cpus(), kdumps.last().unwrap().1.cpus());
            let (mut compared, mut missing, mut differ) = (0u64, 0u64, 0u64);
            let mut elf_page = vec![0u8; 4096];
            let mut first_page = vec![0u8; 4096];
            let mut page = vec![0u8; 4096];
            for range in &ranges {
                for pfn in range.start / 4096..range.end / 4096 {
                    elf.read_phys(pfn * 4096, &mut elf_page).unwrap();
                    match first.read_phys(pfn * 4096, &mut first_page) {
                        Ok(()) => compared += 1,
                        Err(e) if e.is_missing() => {
                            missing += 1;
                            continue;
                        }
                        Err(e) => panic!("{}: pfn {pfn:#x}: {e}", first_path.display()),
                    }
                    differ += u64::from(first_page != elf_page);
                    for (path, dump) in &kdumps[1..] {
                        dump.read_phys(pfn * 4096, &mut page).unwrap();
                        assert!(
                            page == first_page,
                            "{}: pfn {pfn:#x} differs from {}",
                            path.display(),
                            first_path.display()
                        );
                    }
                }
            }
            eprintln!(
                "{}: {compared} pages compared, {missing} missing, {differ} differ from the ELF dump",
                variant.dir.display()
            );
            assert!(
                compared > 1000 && missing * 20 < compared && differ * 50 < compared,
                "{}: {compared} pages compared, {missing} missing, {differ} differ from the ELF dump",
                variant.dir.display()
            );
        }
        // A read across three pages equals the pages read one by one.
        let start = ranges[0].start + 4096 * 3 - 100;
        for (path, dump) in &dumps {
            let mut across = vec![0u8; 8192 + 200];
            dump.read_phys(start, &mut across).unwrap();
            let mut pieces = vec![0u8; 8192 + 200];
            dump.read_phys(start, &mut pieces[..100]).unwrap();
            dump.read_phys(start + 100, &mut pieces[100..4196]).unwrap();
            dump.read_phys(start + 4196, &mut pieces[4196..]).unwrap();
            assert!(across == pieces, "{}", path.display());
        }
    }
}

#[test]
fn kernel_addresses_translate_in_every_form() {
    for variant in real_variants("translating real vmcores") {
        let levels: u8 = variant.var("PAGING_LEVELS").parse().unwrap();
        let kaslr = variant.var("KASLR") == "yes";
        let kallsyms = variant.guest_kallsyms();
        for path in variant.forms() {
            let name = path.display();
            let dump = Vmcore::open(&path).unwrap();
            let info = dump.vmcoreinfo().unwrap();
            let kernel = KernelMemory::new(&dump).unwrap_or_else(|e| panic!("{name}: {e}"));
            let layout = kernel.layout().clone();
            assert_eq!(layout.levels, levels, "{name}");
            assert_eq!(layout.phys_base, info.phys_base().unwrap(), "{name}");

            // init_uts_ns from VMCOREINFO alone: its release string, by
            // the image mapping and by the page tables.
            let uts =
                info.symbol("init_uts_ns").unwrap() + info.offset("uts_namespace", "name").unwrap();
            let release = info.osrelease().unwrap();
            assert_eq!(
                kernel.read_cstr(uts + 2 * 65, 65).unwrap(),
                release.as_bytes()
            );
            let by_image = kernel.translate(uts).unwrap();
            assert_eq!(by_image.mapping, Mapping::KernelImage);
            assert_eq!(kernel.walk(uts).unwrap().paddr, by_image.paddr, "{name}");

            // init_top_pgt is where the layout says, by both routes.
            let top = info.symbol("init_top_pgt").unwrap();
            assert_eq!(kernel.walk(top).unwrap().paddr, layout.top_table, "{name}");
            assert_eq!(kernel.translate(top).unwrap().paddr, layout.top_table);
            // A 4-level address is not canonical for 5 levels and back.
            assert!(kernel.walk(1 << 47).is_err());

            // The direct map, found in the page tables.
            let base = layout
                .page_offset_base
                .unwrap_or_else(|| panic!("{name}: no direct map found"));
            if !kaslr {
                let default = if levels == 5 {
                    PAGE_OFFSET_BASE_L5
                } else {
                    PAGE_OFFSET_BASE_L4
                };
                assert_eq!(base, default, "{name}");
            }
            let direct = kernel.phys_to_virt(layout.top_table).unwrap();
            assert_eq!(
                kernel.translate(direct).unwrap().mapping,
                Mapping::DirectMap
            );
            assert_eq!(kernel.walk(direct).unwrap().paddr, layout.top_table);
            let mut via_virt = [0u8; 200];
            let mut via_phys = [0u8; 200];
            kernel.read_virt(direct + 4000, &mut via_virt).unwrap();
            dump.read_phys(layout.top_table + 4000, &mut via_phys)
                .unwrap();
            assert_eq!(via_virt, via_phys, "{name}");

            // The banner, by its System.map address and the KASLR offset.
            let banner = kernel
                .read_cstr(variant.guest_symbol(&kallsyms, "linux_banner"), 512)
                .unwrap();
            let banner = String::from_utf8(banner).unwrap();
            assert!(
                banner.starts_with(&format!("Linux version {release} ")),
                "{name}: {banner:?}"
            );
            // The kernel's own page_offset_base variable agrees.
            let variable = kernel
                .read_u64(variant.guest_symbol(&kallsyms, "page_offset_base"))
                .unwrap();
            assert_eq!(base, variable, "{name}: page_offset_base");

            // vmemmap: the struct page of the top table's frame, by walk.
            let vmemmap = kernel
                .read_u64(variant.guest_symbol(&kallsyms, "vmemmap_base"))
                .unwrap();
            let page_struct = vmemmap + (layout.top_table / 4096) * info.size("page").unwrap();
            let t = kernel.translate(page_struct).unwrap();
            assert!(
                matches!(t.mapping, Mapping::PageTable { .. }),
                "{name}: {t:?}"
            );
            kernel.read_u64(page_struct).unwrap();

            // Modules: the first module on the `modules` list lives in the
            // module area, reached through the page tables only.
            let head = variant.guest_symbol(&kallsyms, "modules");
            let first = kernel.read_u64(head).unwrap();
            assert_ne!(first, head, "{name}: qemu_fw_cfg at least is loaded");
            let t = kernel.translate(first).unwrap();
            assert!(
                matches!(t.mapping, Mapping::PageTable { page_size: 4096 }),
                "{name}: {t:?}"
            );
            // struct module: state (4 bytes, padded to 8), list, name[56].
            let module_name = kernel.read_cstr(first + 16, 56).unwrap();
            assert!(
                !module_name.is_empty()
                    && module_name
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'_'),
                "{name}: module name {module_name:?}"
            );
        }
    }
}
