//! x86-64 kernel address translation: the layout of the kernel's virtual
//! address space as found in a dump, and the page-table walk.
//!
//! Three kinds of kernel address are translated (Documentation/arch/x86/
//! x86_64/mm.rst):
//!
//! - the kernel image, mapped at `__START_KERNEL_map` (0xffffffff80000000)
//!   plus the KASLR offset: physical = virtual - `__START_KERNEL_map` +
//!   `phys_base`;
//! - the direct map of all physical memory at `page_offset_base`:
//!   physical = virtual - `page_offset_base`;
//! - everything else (vmalloc, modules, vmemmap, fixmap, per-CPU entry
//!   areas) by walking the page tables from `init_top_pgt`: 4 levels (PGD,
//!   PUD, PMD, PTE; 9 bits each from bit 39) or 5 (a P4D level, from bit
//!   48), 1 GiB pages at the PUD level and 2 MiB pages at the PMD level
//!   (the PS bit), and an entry without the present bit ends the walk.
//!
//! `page_offset_base` is randomized by KASLR (CONFIG_RANDOMIZE_MEMORY) and
//! is not in VMCOREINFO, so it is found in the page tables: KASLR keeps the
//! direct map, vmalloc and vmemmap regions in that order above
//! `__PAGE_OFFSET_BASE` (0xffff888000000000, or 0xff11000000000000 with
//! 5-level paging), each aligned to 1 GiB. The direct map is therefore the
//! first mapped 1 GiB region at or above that base; the candidate is
//! accepted only when it maps the physical address of `init_top_pgt` (RAM
//! the kernel image holds) at candidate + that address, which no vmalloc
//! or vmemmap region does. Reading the variable `page_offset_base` needs
//! its address, which VMCOREINFO does not give without the kallsyms
//! tables; [`X86_64Layout::page_offset_base`] can be set by a caller that
//! has it.

use crate::{Error, Vmcore};

/// `__START_KERNEL_map`: where the kernel image mapping starts, before
/// the KASLR offset.
pub const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
/// `__PAGE_OFFSET_BASE_L4`: the lowest direct map base with 4-level paging
/// (the base itself without KASLR).
pub const PAGE_OFFSET_BASE_L4: u64 = 0xffff_8880_0000_0000;
/// `__PAGE_OFFSET_BASE_L5`: the same with 5-level paging.
pub const PAGE_OFFSET_BASE_L5: u64 = 0xff11_0000_0000_0000;

/// Bits 12..51 of an entry: the physical address of a table or page.
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;
const PRESENT: u64 = 1;
/// `_PAGE_PSE`: the entry maps a 1 GiB (PUD) or 2 MiB (PMD) page.
const PAGE_SIZE_BIT: u64 = 1 << 7;
const GIB: u64 = 1 << 30;
/// The most addresses the search for the direct map walks (a real search
/// walks a few hundred: one per present entry on its way).
const MAX_SCAN_STEPS: u64 = 1 << 12;

/// Where the kernel's address space is, for one dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X86_64Layout {
    /// `phys_base`: physical address = image virtual address -
    /// `__START_KERNEL_map` + `phys_base`.
    pub phys_base: u64,
    /// The size of the kernel image mapping at `__START_KERNEL_map`
    /// (`NUMBER(KERNEL_IMAGE_SIZE)`, 1 GiB when absent).
    pub kernel_image_size: u64,
    /// The physical address of the top-level page table (`init_top_pgt`).
    pub top_table: u64,
    /// 4 or 5.
    pub levels: u8,
    /// `sme_mask`: the memory-encryption bit to clear from entries.
    pub sme_mask: u64,
    /// The start of the direct map, when known.
    pub page_offset_base: Option<u64>,
    /// How far the direct map reaches: the dump's highest physical address.
    pub direct_map_size: u64,
}

/// How an address was translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// The kernel image mapping, by `phys_base`.
    KernelImage,
    /// The direct map, by `page_offset_base`.
    DirectMap,
    /// A page-table walk ending at a page of this size (4 KiB, 2 MiB or
    /// 1 GiB).
    PageTable {
        /// The size of the mapped page.
        page_size: u64,
    },
}

/// A translated address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    /// The physical address.
    pub paddr: u64,
    /// How it was found.
    pub mapping: Mapping,
}

impl X86_64Layout {
    /// Finds the layout of the dumped kernel from its VMCOREINFO and page
    /// tables:
    ///
    /// - `phys_base` from `NUMBER(phys_base)`, else the kdump header's
    ///   `phys_base`, else an ELF segment of the kernel image (kexec gives
    ///   each `PT_LOAD` its virtual address);
    /// - the top page table from `SYMBOL(init_top_pgt)` (or
    ///   `swapper_pg_dir`, `init_level4_pgt` on older kernels), an image
    ///   address translated by `phys_base`;
    /// - 5-level paging from `NUMBER(pgtable_l5_enabled)`; without it (a
    ///   kernel before 4.14), whichever of 4 or 5 levels maps the top
    ///   table's own address to where `phys_base` puts it;
    /// - `page_offset_base` from the page tables (see the module doc).
    pub fn from_dump(dump: &Vmcore) -> Result<X86_64Layout, Error> {
        if dump.machine() != 62 {
            return Err(Error::Unsupported {
                what: format!(
                    "address translation of machine {} (only x86-64, ELF machine 62, is translated)",
                    dump.machine()
                ),
            });
        }
        let info = dump.vmcoreinfo().ok_or_else(|| Error::MissingInfo {
            what: "the dump has no VMCOREINFO (a QEMU guest needs the qemu_fw_cfg module loaded for QEMU to get it)".into(),
        })?;
        let phys_base = info
            .phys_base()
            .or_else(|| dump.kdump_header().map(|h| h.phys_base))
            .or_else(|| {
                dump.elf_segments()
                    .iter()
                    .find(|s| s.vaddr >= START_KERNEL_MAP && s.vaddr - START_KERNEL_MAP < GIB)
                    .map(|s| s.paddr.wrapping_sub(s.vaddr - START_KERNEL_MAP))
            })
            .ok_or_else(|| Error::MissingInfo {
                what: "phys_base: VMCOREINFO has no NUMBER(phys_base) and no segment maps the kernel image".into(),
            })?;
        let (name, top_vaddr) = ["init_top_pgt", "swapper_pg_dir", "init_level4_pgt"]
            .into_iter()
            .find_map(|name| Some((name, info.symbol(name)?)))
            .ok_or_else(|| Error::MissingInfo {
                what: "the top page table: VMCOREINFO has no SYMBOL(init_top_pgt) or SYMBOL(swapper_pg_dir)".into(),
            })?;
        if top_vaddr < START_KERNEL_MAP {
            return Err(Error::MissingInfo {
                what: format!("SYMBOL({name}) = {top_vaddr:#x} is not in the kernel image mapping"),
            });
        }
        let kernel_image_size = info
            .kernel_image_size()
            .filter(|&s| s > 0 && s <= 2 * GIB)
            .unwrap_or(GIB);
        let mut layout = X86_64Layout {
            phys_base,
            kernel_image_size,
            top_table: (top_vaddr - START_KERNEL_MAP).wrapping_add(phys_base),
            levels: 4,
            sme_mask: info.sme_mask().unwrap_or(0),
            page_offset_base: None,
            direct_map_size: dump.max_phys_addr(),
        };
        let read = |paddr| dump.read_phys_u64(paddr);
        layout.levels = match info.pgtable_l5_enabled() {
            Some(true) => 5,
            Some(false) => 4,
            None => [4, 5]
                .into_iter()
                .find(|&levels| {
                    let probe = X86_64Layout {
                        levels,
                        ..layout.clone()
                    };
                    probe
                        .walk(&read, top_vaddr)
                        .is_ok_and(|t| t.paddr == layout.top_table)
                })
                .ok_or_else(|| Error::MissingInfo {
                    what: format!(
                        "the paging levels: neither a 4- nor a 5-level walk maps {name} ({top_vaddr:#x}) to {:#x}",
                        layout.top_table
                    ),
                })?,
        };
        layout.page_offset_base = layout.find_page_offset_base(&read);
        Ok(layout)
    }

    /// Translates `vaddr`: the kernel image and direct map by arithmetic,
    /// everything else by the page tables.
    pub fn translate(
        &self,
        read: &impl Fn(u64) -> Result<u64, Error>,
        vaddr: u64,
    ) -> Result<Translation, Error> {
        if vaddr >= START_KERNEL_MAP && vaddr - START_KERNEL_MAP < self.kernel_image_size {
            return Ok(Translation {
                paddr: (vaddr - START_KERNEL_MAP).wrapping_add(self.phys_base),
                mapping: Mapping::KernelImage,
            });
        }
        if let Some(base) = self.page_offset_base
            && vaddr >= base
            && vaddr - base < self.direct_map_size
        {
            return Ok(Translation {
                paddr: vaddr - base,
                mapping: Mapping::DirectMap,
            });
        }
        self.walk(read, vaddr)
    }

    /// Translates `vaddr` by the page tables alone. `read` reads the u64
    /// at a physical address.
    pub fn walk(
        &self,
        read: &impl Fn(u64) -> Result<u64, Error>,
        vaddr: u64,
    ) -> Result<Translation, Error> {
        let top_shift = if self.levels == 5 { 48 } else { 39 };
        // Bits from the top level's highest one up must all be equal.
        let high = (vaddr as i64) >> (top_shift + 8);
        if high != 0 && high != -1 {
            return Err(Error::NonCanonical {
                vaddr,
                levels: self.levels,
            });
        }
        let levels: &[(&'static str, u32)] = if self.levels == 5 {
            &[
                ("PGD", 48),
                ("P4D", 39),
                ("PUD", 30),
                ("PMD", 21),
                ("PTE", 12),
            ]
        } else {
            &[("PGD", 39), ("PUD", 30), ("PMD", 21), ("PTE", 12)]
        };
        let mut table = self.top_table & ADDRESS_MASK;
        let mut page_size = 1u64 << 12;
        for &(level, shift) in levels {
            let entry_paddr = table + ((vaddr >> shift) & 511) * 8;
            let entry = read(entry_paddr)?;
            if entry & PRESENT == 0 {
                return Err(Error::NotMapped {
                    vaddr,
                    level,
                    entry,
                    entry_paddr,
                });
            }
            table = entry & !self.sme_mask & ADDRESS_MASK;
            // A 1 GiB (PUD) or 2 MiB (PMD) page ends the walk early.
            if (shift == 30 || shift == 21) && entry & PAGE_SIZE_BIT != 0 {
                page_size = 1u64 << shift;
                break;
            }
        }
        Ok(Translation {
            paddr: (table & !(page_size - 1)) | (vaddr & (page_size - 1)),
            mapping: Mapping::PageTable { page_size },
        })
    }

    /// The start of the direct map: the first mapped 1 GiB region at or
    /// above `__PAGE_OFFSET_BASE` that maps the top page table's physical
    /// address at that offset. `None` when no region does within
    /// [`MAX_SCAN_STEPS`] walks.
    fn find_page_offset_base(&self, read: &impl Fn(u64) -> Result<u64, Error>) -> Option<u64> {
        let anchor = self.top_table & ADDRESS_MASK;
        let (mut vaddr, top_shift) = if self.levels == 5 {
            (PAGE_OFFSET_BASE_L5, 48)
        } else {
            (PAGE_OFFSET_BASE_L4, 39)
        };
        // The image mapping and modules above this are not the direct map.
        let end = START_KERNEL_MAP;
        let mut steps = 0;
        while vaddr < end && steps < MAX_SCAN_STEPS {
            steps += 1;
            // A hole at the PGD, P4D or PUD level skips what its entry
            // would map; a region whose PUD entry is present (even if its
            // first page is not mapped) is a candidate.
            let skip = match self.walk(read, vaddr) {
                Err(Error::NotMapped { level: "PGD", .. }) => top_shift,
                Err(Error::NotMapped { level: "P4D", .. }) => 39,
                Err(Error::NotMapped { level: "PUD", .. }) => 30,
                Ok(_) | Err(Error::NotMapped { .. }) => {
                    let mapped = self.walk(read, vaddr.wrapping_add(anchor)).map(|t| t.paddr);
                    if mapped.is_ok_and(|p| p == anchor) {
                        return Some(vaddr);
                    }
                    30
                }
                Err(_) => 30,
            };
            vaddr = next_boundary(vaddr, skip);
            if vaddr == 0 {
                break;
            }
        }
        None
    }
}

/// The next multiple of `1 << shift` above `vaddr` (0 on overflow).
fn next_boundary(vaddr: u64, shift: u32) -> u64 {
    (vaddr | ((1u64 << shift) - 1)).wrapping_add(1)
}
