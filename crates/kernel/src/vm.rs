//! A task's memory map (crash's `vm`): its VMAs from the maple tree of
//! Linux 6.1 and later (`mm->mm_mt`), or the `mmap` list before, with
//! offsets from BTF.

use kscope_btf::Btf;

use crate::files::file_path;
use crate::tasks::Task;
use crate::types::member_offset;
use crate::{Error, KernelRead};

/// The most VMAs read (a hostile tree or list).
pub const MAX_VMAS: usize = 1 << 16;

/// How deep a maple tree is followed; a real one is a few levels.
const MAX_DEPTH: usize = 16;

/// Slots of a 64-bit maple range node and of an allocation-range node
/// (`MAPLE_RANGE64_SLOTS`, `MAPLE_ARANGE64_SLOTS` on 64-bit kernels).
const RANGE64_SLOTS: u64 = 16;
const ARANGE64_SLOTS: u64 = 10;

/// One VMA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vma {
    /// The `vm_area_struct` address.
    pub address: u64,
    /// `vm_start`.
    pub start: u64,
    /// `vm_end`.
    pub end: u64,
    /// `vm_flags`.
    pub flags: u64,
    /// The mapped file's path; empty for anonymous memory.
    pub file: String,
}

/// A task's memory map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryMap {
    /// The `mm_struct`; 0 for a kernel thread, which has none.
    pub mm: u64,
    /// Its page-table root (`pgd`).
    pub pgd: u64,
    /// The VMAs, by start address.
    pub vmas: Vec<Vma>,
}

/// Reads `task`'s memory map.
///
/// # Errors
///
/// [`Error::Type`] when BTF lacks what the walk follows, [`Error::Memory`]
/// when the `mm_struct` cannot be read, and [`Error::Corrupt`] for a tree
/// deeper than any kernel builds or more than [`MAX_VMAS`] VMAs.
pub fn read_memory_map(
    memory: &dyn KernelRead,
    btf: &Btf<'_>,
    task: &Task,
) -> Result<MemoryMap, Error> {
    let at = |ty: &str, member: &str| member_offset(btf, ty, member);
    let mm = task.mm;
    if mm == 0 {
        return Ok(MemoryMap {
            mm: 0,
            pgd: 0,
            vmas: Vec::new(),
        });
    }
    let read = |what: &str, address: u64| {
        memory.read_u64(address).map_err(|source| Error::Memory {
            what: what.to_string(),
            source,
        })
    };
    let pgd = read("mm->pgd", mm + at("struct mm_struct", "pgd")?)?;
    let mut addresses = Vec::new();
    if let Ok(list) = at("struct mm_struct", "mmap") {
        // Before 6.1: a list through vm_next.
        let next = at("struct vm_area_struct", "vm_next")?;
        let mut vma = read("mm->mmap", mm + list)?;
        while vma != 0 {
            if addresses.len() >= MAX_VMAS {
                return Err(Error::Corrupt(format!("more than {MAX_VMAS} VMAs")));
            }
            addresses.push(vma);
            vma = read("vma->vm_next", vma + next)?;
        }
    } else {
        let tree = mm + at("struct mm_struct", "mm_mt")?;
        let root = read(
            "mm->mm_mt.ma_root",
            tree + at("struct maple_tree", "ma_root")?,
        )?;
        let slots = Slots {
            range: at("struct maple_node", "mr64.slot")?,
            arange: at("struct maple_node", "ma64.slot")?,
        };
        walk(memory, &slots, root, 0, &mut addresses)?;
    }
    addresses.sort_unstable();
    addresses.dedup();
    let start = at("struct vm_area_struct", "vm_start")?;
    let end = at("struct vm_area_struct", "vm_end")?;
    let flags = at("struct vm_area_struct", "vm_flags")?;
    let file = at("struct vm_area_struct", "vm_file")?;
    let mut vmas = Vec::with_capacity(addresses.len());
    for vma in addresses {
        let mapped = read("vma->vm_file", vma + file)?;
        vmas.push(Vma {
            address: vma,
            start: read("vma->vm_start", vma + start)?,
            end: read("vma->vm_end", vma + end)?,
            flags: read("vma->vm_flags", vma + flags)?,
            file: if mapped == 0 {
                String::new()
            } else {
                file_path(memory, btf, mapped)?
            },
        });
    }
    vmas.sort_by_key(|v| v.start);
    Ok(MemoryMap { mm, pgd, vmas })
}

/// Where a maple node's slots are, by node kind.
struct Slots {
    range: u64,
    arange: u64,
}

/// Whether a maple entry is an internal value (a node pointer or a
/// reserved value) rather than a stored pointer.
fn is_internal(entry: u64) -> bool {
    entry & 3 == 2
}

/// Collects the VMAs under the maple entry `entry`.
fn walk(
    memory: &dyn KernelRead,
    slots: &Slots,
    entry: u64,
    depth: usize,
    out: &mut Vec<u64>,
) -> Result<(), Error> {
    if entry == 0 {
        return Ok(());
    }
    if !is_internal(entry) {
        // A tree holding one entry keeps it in the root.
        out.push(entry);
        return Ok(());
    }
    if entry <= 4096 {
        return Ok(());
    }
    if depth >= MAX_DEPTH {
        return Err(Error::Corrupt(format!(
            "a maple tree deeper than {MAX_DEPTH} levels"
        )));
    }
    let node = entry & !0xff;
    let (offset, count, leaf) = match (entry >> 3) & 0xf {
        1 => (slots.range, RANGE64_SLOTS, true),
        2 => (slots.range, RANGE64_SLOTS, false),
        3 => (slots.arange, ARANGE64_SLOTS, false),
        kind => {
            return Err(Error::Corrupt(format!(
                "maple node {node:#x} of kind {kind}, which VMA trees do not use"
            )));
        }
    };
    for i in 0..count {
        let Ok(child) = memory.read_u64(node + offset + 8 * i) else {
            continue;
        };
        if child == 0 {
            continue;
        }
        if leaf {
            if !is_internal(child) {
                if out.len() >= MAX_VMAS {
                    return Err(Error::Corrupt(format!("more than {MAX_VMAS} VMAs")));
                }
                out.push(child);
            }
        } else {
            walk(memory, slots, child, depth + 1, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Slots, walk};
    use crate::MemoryImage;

    /// A 256-byte maple node with `slots` at 0x80 on.
    fn node(slots: &[u64]) -> Vec<u8> {
        let mut bytes = vec![0u8; 256];
        for (i, slot) in slots.iter().enumerate() {
            bytes[0x80 + 8 * i..0x88 + 8 * i].copy_from_slice(&slot.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn a_maple_tree_of_two_levels_gives_its_leaves_entries() {
        let (leaf, root) = (0x10000u64, 0x20000u64);
        let leaf_entry = leaf | (1 << 3) | 2;
        let root_entry = root | (2 << 3) | 2;
        let slots = Slots {
            range: 0x80,
            arange: 0x50,
        };
        let mut memory = MemoryImage::default();
        // A leaf (kind 1) with two VMAs and an internal value to skip, and a
        // range node (kind 2) pointing at it twice.
        memory.insert(leaf, node(&[0xaaa0, 0xbbb0, 0x1002]));
        memory.insert(root, node(&[leaf_entry, leaf_entry]));
        let mut out = Vec::new();
        walk(&memory, &slots, root_entry, 0, &mut out).unwrap();
        out.sort_unstable();
        out.dedup();
        assert_eq!(out, [0xaaa0, 0xbbb0]);
        // A node that names itself as a child ends at the depth limit.
        memory.insert(root, node(&[leaf_entry, root_entry]));
        assert!(walk(&memory, &slots, root_entry, 0, &mut Vec::new()).is_err());
        // A kind VMA trees do not use is refused.
        assert!(walk(&memory, &slots, root | (5 << 3) | 2, 0, &mut Vec::new()).is_err());
    }
}
