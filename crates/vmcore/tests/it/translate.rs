//! x86-64 translation over page tables built in synthetic memory: 4 and 5
//! levels, 1 GiB, 2 MiB and 4 KiB pages, entries without the present bit,
//! a KASLR-like direct map with a decoy mapping below it, the SME bit,
//! and dumps whose VMCOREINFO lacks what translation needs. Every fixture
//! is read as an ELF, a kdump-compressed and a flattened dump.

use kscope_vmcore::{
    Compression, Error, KernelMemory, Mapping, PAGE_OFFSET_BASE_L4, PAGE_OFFSET_BASE_L5,
    START_KERNEL_MAP, Vmcore,
};

use crate::build::{
    Elf, Load, Memory, PageTables, SIZE_1G, SIZE_2M, SIZE_4K, flatten, standard_notes,
};

const KERNEL_OFFSET: u64 = 0x2a0_0000;
/// The image's link-time start plus KASLR, and where it was loaded.
const TEXT: u64 = START_KERNEL_MAP + 0x100_0000 + KERNEL_OFFSET;
const TEXT_PHYS: u64 = 0x500_0000;
const PHYS_BASE: u64 = TEXT_PHYS - (TEXT - START_KERNEL_MAP);
const TOP_VADDR: u64 = TEXT + 0x140_a000;
const TOP_PHYS: u64 = TEXT_PHYS + 0x140_a000;
pub const BANNER: u64 = TEXT + 0x100;
pub const BANNER_TEXT: &[u8] = b"Linux version 6.1.0-test (builder@example) #1 SMP\n";
/// Data behind a 1 GiB page of the direct map.
const HIGH_DATA: u64 = 2 * SIZE_1G + 0x3000;
const VMALLOC_PHYS: u64 = 0x680_0000;
const MODULE: u64 = 0xffff_ffff_c0a0_1000;
const MODULE_PHYS: u64 = 0x680_1000;
const VMEMMAP_PHYS: u64 = 0x6a0_0000;

struct Addresses {
    direct: u64,
    vmalloc: u64,
    vmemmap: u64,
    hole: u64,
}

fn addresses(levels: u8) -> Addresses {
    if levels == 5 {
        Addresses {
            direct: 0xff3a_4000_0000_0000,
            vmalloc: 0xffa0_0000_0000_5000,
            vmemmap: 0xffd4_0000_0020_0000,
            hole: 0xff80_0000_0000_0000,
        }
    } else {
        Addresses {
            direct: 0xffff_9b80_0000_0000,
            vmalloc: 0xffff_c900_0000_5000,
            vmemmap: 0xffff_ea00_0020_0000,
            hole: 0xffff_d000_0000_0000,
        }
    }
}

pub fn vmcoreinfo(levels: u8, extra: &str) -> String {
    format!(
        "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(init_top_pgt)={TOP_VADDR:x}\n\
         SYMBOL(linux_banner)={BANNER:x}\nNUMBER(phys_base)={PHYS_BASE}\n\
         NUMBER(pgtable_l5_enabled)={}\nKERNELOFFSET={KERNEL_OFFSET:x}\n\
         NUMBER(KERNEL_IMAGE_SIZE)=1073741824\n{extra}",
        u8::from(levels == 5)
    )
}

/// Page tables and memory: the image by 2 MiB pages, the direct map (its
/// first GiB by a PMD table whose first 2 MiB is a PTE table without page
/// 0, the next three by 1 GiB pages), a decoy page at the lowest direct
/// map base, a vmalloc and a module page, a 2 MiB vmemmap page.
pub fn fixture(levels: u8, sme: u64, with_direct_map: bool) -> Memory {
    let a = addresses(levels);
    let mut pt = PageTables::new(levels, TOP_PHYS, 0x700_0000);
    pt.address_bits = sme;
    for i in 0..16 {
        pt.map(TEXT + i * SIZE_2M, TEXT_PHYS + i * SIZE_2M, SIZE_2M);
    }
    if with_direct_map {
        for i in 1..512 {
            pt.map(a.direct + i * SIZE_4K, i * SIZE_4K, SIZE_4K);
        }
        for i in 1..512 {
            pt.map(a.direct + i * SIZE_2M, i * SIZE_2M, SIZE_2M);
        }
        for g in 1..4 {
            pt.map(a.direct + g * SIZE_1G, g * SIZE_1G, SIZE_1G);
        }
    }
    let decoy = if levels == 5 {
        PAGE_OFFSET_BASE_L5
    } else {
        PAGE_OFFSET_BASE_L4
    };
    pt.map(decoy, 0x7ff_0000, SIZE_4K);
    pt.map(a.vmalloc, VMALLOC_PHYS, SIZE_4K);
    pt.map(MODULE, MODULE_PHYS, SIZE_4K);
    pt.map(a.vmemmap, VMEMMAP_PHYS, SIZE_2M);
    // A 2 MiB region whose PMD entry has its bits but not the present bit.
    pt.map(a.vmalloc + SIZE_2M, VMALLOC_PHYS, SIZE_4K);
    pt.unmap(a.vmalloc + SIZE_2M, 21);
    let mut memory = pt.memory;
    memory.write(TEXT_PHYS + 0x100, BANNER_TEXT);
    memory.write(TEXT_PHYS + 0x100 + BANNER_TEXT.len() as u64, &[0]);
    memory.write(HIGH_DATA, b"behind a 1 GiB page");
    memory.write(VMALLOC_PHYS + 4096 - 8, b"vmalloc!");
    memory.write(MODULE_PHYS + 16, b"modname\0");
    memory.write(VMEMMAP_PHYS + 0x1_2340, &0x1234_5678u64.to_le_bytes());
    memory
}

/// The fixture as an ELF, a kdump-compressed and a flattened dump.
fn dumps(memory: &Memory, info: &str) -> Vec<(&'static str, Vmcore)> {
    let notes = standard_notes(info);
    let kdump = memory.kdump(&notes, info, Compression::Zlib);
    vec![
        ("elf", Vmcore::from_bytes(memory.elf(&notes)).unwrap()),
        (
            "flattened",
            Vmcore::from_bytes(flatten(&kdump, 4096, None, true)).unwrap(),
        ),
        ("kdump", Vmcore::from_bytes(kdump).unwrap()),
    ]
}

fn not_mapped_level(err: Error) -> &'static str {
    match err {
        Error::NotMapped { level, .. } => level,
        e => panic!("expected an unmapped address, got {e}"),
    }
}

#[test]
fn four_and_five_level_walks_with_large_pages() {
    for levels in [4u8, 5] {
        let a = addresses(levels);
        let memory = fixture(levels, 0, true);
        for (form, dump) in dumps(&memory, &vmcoreinfo(levels, "")) {
            let what = format!("{levels}-level {form}");
            let kernel = KernelMemory::new(&dump).unwrap_or_else(|e| panic!("{what}: {e}"));
            let layout = kernel.layout();
            assert_eq!(layout.levels, levels, "{what}");
            assert_eq!(layout.phys_base, PHYS_BASE);
            assert_eq!(layout.top_table, TOP_PHYS);
            assert_eq!(
                layout.page_offset_base,
                Some(a.direct),
                "{what}: not the decoy"
            );

            // The image: by phys_base, and the same by a 2 MiB page.
            assert_eq!(
                kernel.read_cstr(BANNER, 256).unwrap(),
                BANNER_TEXT,
                "{what}"
            );
            let t = kernel.translate(BANNER).unwrap();
            assert_eq!(
                (t.paddr, t.mapping),
                (TEXT_PHYS + 0x100, Mapping::KernelImage)
            );
            let w = kernel.walk(BANNER).unwrap();
            assert_eq!(w.paddr, TEXT_PHYS + 0x100);
            assert_eq!(w.mapping, Mapping::PageTable { page_size: SIZE_2M });
            assert_eq!(kernel.walk(TOP_VADDR).unwrap().paddr, TOP_PHYS);

            // The direct map: arithmetic, and the walk through each size.
            let high = a.direct + HIGH_DATA;
            assert_eq!(kernel.read_vec(high, 19).unwrap(), b"behind a 1 GiB page");
            assert_eq!(kernel.translate(high).unwrap().mapping, Mapping::DirectMap);
            let w = kernel.walk(high).unwrap();
            assert_eq!(
                (w.paddr, w.mapping),
                (HIGH_DATA, Mapping::PageTable { page_size: SIZE_1G })
            );
            let w = kernel.walk(a.direct + 5 * SIZE_2M + 0x1234).unwrap();
            assert_eq!(
                (w.paddr, w.mapping),
                (
                    5 * SIZE_2M + 0x1234,
                    Mapping::PageTable { page_size: SIZE_2M }
                )
            );
            let w = kernel.walk(a.direct + 0x5678).unwrap();
            assert_eq!(
                (w.paddr, w.mapping),
                (0x5678, Mapping::PageTable { page_size: SIZE_4K })
            );
            assert_eq!(
                not_mapped_level(kernel.walk(a.direct + 8).unwrap_err()),
                "PTE"
            );
            assert_eq!(kernel.phys_to_virt(0x1000), Some(a.direct + 0x1000));
            assert_eq!(kernel.phys_to_virt(1 << 50), None);

            // vmalloc: a 4 KiB page whose neighbour is not mapped.
            assert_eq!(
                kernel.read_vec(a.vmalloc + 4096 - 8, 8).unwrap(),
                b"vmalloc!"
            );
            let err = kernel.read_vec(a.vmalloc + 4096 - 8, 16).unwrap_err();
            assert!(err.is_missing());
            assert_eq!(not_mapped_level(err), "PTE");
            assert_eq!(
                not_mapped_level(kernel.walk(a.vmalloc + SIZE_2M).unwrap_err()),
                "PMD"
            );
            // A module, vmemmap by a 2 MiB page.
            assert_eq!(kernel.read_cstr(MODULE + 16, 56).unwrap(), b"modname");
            let t = kernel.translate(MODULE).unwrap();
            assert_eq!(
                (t.paddr, t.mapping),
                (MODULE_PHYS, Mapping::PageTable { page_size: SIZE_4K })
            );
            assert_eq!(kernel.read_u64(a.vmemmap + 0x1_2340).unwrap(), 0x1234_5678);
            assert_eq!(kernel.read_u32(a.vmemmap + 0x1_2340).unwrap(), 0x1234_5678);
            assert_eq!(kernel.read_u16(a.vmemmap + 0x1_2342).unwrap(), 0x1234);
            assert_eq!(kernel.read_u8(a.vmemmap + 0x1_2343).unwrap(), 0x12);
            assert_eq!(
                kernel.translate(a.vmemmap + 0x1_2340).unwrap().mapping,
                Mapping::PageTable { page_size: SIZE_2M }
            );

            // Holes at the top level, and addresses no table can map.
            assert_eq!(not_mapped_level(kernel.walk(a.hole).unwrap_err()), "PGD");
            let non_canonical = if levels == 5 {
                0x0100_0000_0000_0000
            } else {
                0x0000_8000_0000_0000
            };
            assert!(matches!(
                kernel.walk(non_canonical).unwrap_err(),
                Error::NonCanonical { levels: l, .. } if l == levels
            ));
            assert!(kernel.read_vec(0, 1 << 30).is_err(), "over MAX_READ");
            // A string with no NUL stops at max_len.
            assert_eq!(kernel.read_cstr(BANNER, 5).unwrap(), b"Linux");
        }
    }
}

#[test]
fn paging_levels_are_found_without_pgtable_l5_enabled() {
    for levels in [4u8, 5] {
        let memory = fixture(levels, 0, true);
        let info = vmcoreinfo(levels, "").replace("NUMBER(pgtable_l5_enabled)", "NUMBER(other)");
        for (form, dump) in dumps(&memory, &info) {
            let kernel = KernelMemory::new(&dump).unwrap();
            assert_eq!(kernel.layout().levels, levels, "{form}");
            assert_eq!(kernel.read_cstr(MODULE + 16, 56).unwrap(), b"modname");
        }
    }
}

#[test]
fn the_sme_bit_is_cleared_from_entries() {
    let sme = 1u64 << 47;
    let memory = fixture(4, sme, true);
    let a = addresses(4);
    let with_mask = vmcoreinfo(4, &format!("NUMBER(sme_mask)={sme}\n"));
    for (form, dump) in dumps(&memory, &with_mask) {
        let kernel = KernelMemory::new(&dump).unwrap();
        assert_eq!(kernel.layout().sme_mask, sme);
        assert_eq!(
            kernel.read_vec(a.vmalloc + 4096 - 8, 8).unwrap(),
            b"vmalloc!",
            "{form}"
        );
        assert_eq!(kernel.layout().page_offset_base, Some(a.direct));
    }
    // Without the mask the same tables point at memory that is not there.
    let (_, dump) = dumps(&memory, &vmcoreinfo(4, "")).remove(0);
    let kernel = KernelMemory::new(&dump).unwrap();
    assert!(kernel.read_vec(a.vmalloc + 4096 - 8, 8).is_err());
}

#[test]
fn a_direct_map_that_cannot_be_found_is_left_to_the_caller() {
    let memory = fixture(5, 0, false);
    for (form, dump) in dumps(&memory, &vmcoreinfo(5, "")) {
        let mut kernel = KernelMemory::new(&dump).unwrap();
        assert_eq!(
            kernel.layout().page_offset_base,
            None,
            "{form}: the decoy is refused"
        );
        assert_eq!(kernel.phys_to_virt(0x1000), None);
        let base = addresses(5).direct;
        assert!(kernel.read_u64(base + HIGH_DATA).is_err());
        kernel.set_page_offset_base(base);
        assert_eq!(kernel.read_vec(base + HIGH_DATA, 6).unwrap(), b"behind");
    }
}

#[test]
fn missing_vmcoreinfo_says_what_translation_needs() {
    let memory = fixture(4, 0, true);
    let notes = standard_notes(&vmcoreinfo(4, ""));
    let no_info = Memory::elf(
        &memory,
        &notes[..notes.len()
            - crate::build::note("VMCOREINFO", 0, vmcoreinfo(4, "").as_bytes()).len()],
    );
    let dump = Vmcore::from_bytes(no_info).unwrap();
    assert!(dump.vmcoreinfo().is_none());
    let err = KernelMemory::new(&dump).unwrap_err();
    assert!(
        matches!(&err, Error::MissingInfo { what } if what.contains("qemu_fw_cfg")),
        "{err}"
    );

    let without = |key: &str| {
        let info: String = vmcoreinfo(4, "")
            .lines()
            .filter(|l| !l.starts_with(key))
            .map(|l| format!("{l}\n"))
            .collect();
        info
    };
    let dump =
        Vmcore::from_bytes(memory.elf(&standard_notes(&without("SYMBOL(init_top_pgt)")))).unwrap();
    let err = KernelMemory::new(&dump).unwrap_err();
    assert!(err.to_string().contains("init_top_pgt"), "{err}");

    // No NUMBER(phys_base): a kexec segment with the image's vaddr gives it.
    let info = without("NUMBER(phys_base)");
    let dump = Vmcore::from_bytes(memory.elf(&standard_notes(&info))).unwrap();
    let err = KernelMemory::new(&dump).unwrap_err();
    assert!(err.to_string().contains("phys_base"), "{err}");
    let mut loads: Vec<Load> = memory
        .runs()
        .into_iter()
        .map(|(paddr, data)| Load {
            paddr,
            vaddr: 0,
            memsz: data.len() as u64,
            data,
        })
        .collect();
    loads.push(Load {
        paddr: TEXT_PHYS,
        vaddr: TEXT,
        memsz: 4096,
        data: memory.pages[&(TEXT_PHYS / 4096)].clone(),
    });
    let dump = Vmcore::from_bytes(
        Elf {
            notes: standard_notes(&info),
            loads,
        }
        .build(),
    )
    .unwrap();
    let kernel = KernelMemory::new(&dump).unwrap();
    assert_eq!(kernel.layout().phys_base, PHYS_BASE);
    assert_eq!(kernel.read_cstr(BANNER, 256).unwrap(), BANNER_TEXT);

    // Neither level maps the top table where phys_base puts it.
    let info = without("NUMBER(pgtable_l5_enabled)").replace(
        &format!("{TOP_VADDR:x}"),
        &format!("{:x}", TOP_VADDR + 0x10_0000),
    );
    let dump = Vmcore::from_bytes(memory.elf(&standard_notes(&info))).unwrap();
    let err = KernelMemory::new(&dump).unwrap_err();
    assert!(err.to_string().contains("paging levels"), "{err}");
}

#[test]
fn page_tables_that_map_everything_nowhere_are_searched_in_bounded_time() {
    // The top table's kernel half points at one table whose every entry
    // points at itself: every address maps, none to the top table.
    let mut memory = Memory::default();
    let looping = 0x900_0000u64;
    for i in 256..512 {
        memory.write_u64(TOP_PHYS + i * 8, looping | 0x63);
    }
    for i in 0..512 {
        memory.write_u64(looping + i * 8, looping | 0x63);
    }
    memory.write(TEXT_PHYS, &[1]);
    let started = std::time::Instant::now();
    let dump = Vmcore::from_bytes(memory.elf(&standard_notes(&vmcoreinfo(5, "")))).unwrap();
    let kernel = KernelMemory::new(&dump).unwrap();
    assert_eq!(kernel.layout().page_offset_base, None);
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    assert_eq!(kernel.walk(0xffa0_0000_0000_0000).unwrap().paddr, looping);
}
