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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Vma {
    /// The `vm_area_struct` address.
    #[serde(rename = "vma")]
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
        let layout = NodeLayout {
            range: KindLayout {
                pivots: at("struct maple_node", "mr64.pivot")?,
                slots: at("struct maple_node", "mr64.slot")?,
                meta_end: at("struct maple_node", "mr64.meta")?
                    + at("struct maple_metadata", "end")?,
            },
            arange: KindLayout {
                pivots: at("struct maple_node", "ma64.pivot")?,
                slots: at("struct maple_node", "ma64.slot")?,
                meta_end: at("struct maple_node", "ma64.meta")?
                    + at("struct maple_metadata", "end")?,
            },
        };
        walk(memory, &layout, root, u64::MAX, 0, &mut addresses)?;
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

/// Where a maple node's pivots, slots and metadata are, for the two
/// kinds of node VMA trees use.
struct NodeLayout {
    /// `maple_range_64`: leaves and internal nodes without gaps.
    range: KindLayout,
    /// `maple_arange_64`: internal nodes that track gaps.
    arange: KindLayout,
}

/// One node kind's offsets in `struct maple_node`.
struct KindLayout {
    pivots: u64,
    slots: u64,
    /// `meta.end`: the last slot in use, where the node is not full.
    meta_end: u64,
}

/// Whether a maple entry is an internal value (a node pointer or a
/// reserved value) rather than a stored pointer.
fn is_internal(entry: u64) -> bool {
    entry & 3 == 2
}

/// The last slot in use of a node whose last pivot is `last_pivot` and
/// whose range ends at `max`, as the kernel's `ma_data_end` finds it: an
/// allocation-range node keeps it in its metadata; a range node is full
/// when its last pivot is past `max` , ends at the last pivot when it
/// equals `max`, and keeps it in its metadata when the last pivot is 0
/// (the slots after it are unused, and the last one holds the metadata).
fn data_end(arange: bool, pivots: u64, last_pivot: u64, max: u64, meta_end: u8) -> u64 {
    if arange || last_pivot == 0 {
        u64::from(meta_end).min(pivots)
    } else if last_pivot == max {
        pivots - 1
    } else {
        pivots
    }
}

/// Collects the VMAs under the maple entry `entry`, whose range ends at
/// `max`.
fn walk(
    memory: &dyn KernelRead,
    layout: &NodeLayout,
    entry: u64,
    max: u64,
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
    let (kind, count, leaf, arange) = match (entry >> 3) & 0xf {
        1 => (&layout.range, RANGE64_SLOTS, true, false),
        2 => (&layout.range, RANGE64_SLOTS, false, false),
        3 => (&layout.arange, ARANGE64_SLOTS, false, true),
        kind => {
            return Err(Error::Corrupt(format!(
                "maple node {node:#x} of kind {kind}, which VMA trees do not use"
            )));
        }
    };
    let read = |what: &str, address: u64| {
        memory.read_u64(address).map_err(|source| Error::Memory {
            what: format!("maple node {node:#x}: {what}"),
            source,
        })
    };
    let pivot = |i: u64| read("a pivot", node + kind.pivots + 8 * i);
    // A node has one pivot fewer than slots: the last slot's range ends
    // at the node's own end.
    let pivots = count - 1;
    let mut meta_end = [0u8];
    memory
        .read_virt(node + kind.meta_end, &mut meta_end)
        .map_err(|source| Error::Memory {
            what: format!("maple node {node:#x}: its metadata"),
            source,
        })?;
    let meta_end = meta_end[0];
    let end = data_end(arange, pivots, pivot(pivots - 1)?, max, meta_end);
    for i in 0..=end {
        let child = read("a slot", node + kind.slots + 8 * i)?;
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
            let child_max = if i < pivots { pivot(i)? } else { max };
            walk(memory, layout, child, child_max, depth + 1, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{KindLayout, NodeLayout, data_end, walk};
    use crate::MemoryImage;

    /// Where 6.1 puts them (its BTF): pivots from 0x8, the slots of a
    /// range node from 0x80 with the metadata in the last one (0xf8), an
    /// allocation-range node's slots from 0x50 and its metadata at 0xf0.
    fn layout() -> NodeLayout {
        NodeLayout {
            range: KindLayout {
                pivots: 0x8,
                slots: 0x80,
                meta_end: 0xf8,
            },
            arange: KindLayout {
                pivots: 0x8,
                slots: 0x50,
                meta_end: 0xf0,
            },
        }
    }

    /// A 256-byte range node: `pivots` from 0x8, `slots` from 0x80, and
    /// `meta_end` at 0xf8 (over the last slot).
    fn range_node(pivots: &[u64], slots: &[u64], meta_end: Option<u8>) -> Vec<u8> {
        let mut bytes = vec![0u8; 256];
        for (i, pivot) in pivots.iter().enumerate() {
            bytes[0x8 + 8 * i..0x10 + 8 * i].copy_from_slice(&pivot.to_le_bytes());
        }
        for (i, slot) in slots.iter().enumerate() {
            bytes[0x80 + 8 * i..0x88 + 8 * i].copy_from_slice(&slot.to_le_bytes());
        }
        if let Some(end) = meta_end {
            bytes[0xf8..0x100].copy_from_slice(&u64::from(end).to_le_bytes());
        }
        bytes
    }

    fn vmas(memory: &MemoryImage, root: u64) -> Result<Vec<u64>, crate::Error> {
        let mut out = Vec::new();
        walk(memory, &layout(), root, u64::MAX, 0, &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    #[test]
    fn a_nodes_data_ends_as_the_kernels_ma_data_end_says() {
        // A range node: full, ending at its last pivot, or by metadata.
        assert_eq!(data_end(false, 15, 0x7000, u64::MAX, 3), 15);
        assert_eq!(data_end(false, 15, u64::MAX, u64::MAX, 3), 14);
        assert_eq!(data_end(false, 15, 0, u64::MAX, 3), 3);
        // An allocation-range node always by metadata, within its slots.
        assert_eq!(data_end(true, 9, 0x7000, u64::MAX, 4), 4);
        assert_eq!(data_end(true, 9, 0x7000, u64::MAX, 200), 9);
    }

    #[test]
    fn a_maple_tree_of_two_levels_gives_its_leaves_entries() {
        let (leaf, root) = (0x10000u64, 0x20000u64);
        let leaf_entry = leaf | (1 << 3) | 2;
        let root_entry = root | (2 << 3) | 2;
        let mut memory = MemoryImage::default();
        // A leaf (kind 1) with a gap, two VMAs and an internal value to
        // skip, a stale pointer past its end (slot 4) and its metadata
        // (end 3) in the last slot; a range node (kind 2) pointing at it
        // twice.
        let pivots = [0x3fff, 0x4fff, 0x5fff, u64::MAX];
        let slots = [0, 0xaaa0, 0xbbb0, 0x1002, 0xccc0];
        memory.insert(leaf, range_node(&pivots, &slots, Some(3)));
        memory.insert(
            root,
            range_node(&[0x4fff], &[leaf_entry, leaf_entry], Some(1)),
        );
        assert_eq!(vmas(&memory, root_entry).unwrap(), [0xaaa0, 0xbbb0]);
        // A node that names itself as a child ends at the depth limit.
        memory.insert(
            root,
            range_node(&[0x4fff], &[leaf_entry, root_entry], Some(1)),
        );
        assert!(vmas(&memory, root_entry).is_err());
        // A kind VMA trees do not use is refused.
        assert!(vmas(&memory, root | (5 << 3) | 2).is_err());
    }

    #[test]
    fn the_metadata_in_a_leafs_last_slot_is_not_a_vma() {
        // The regression dump's leaf (vmcore-6.1.0-57-4level-kaslr): 13
        // pivots, the 14th at the tree's end, and its metadata (end 13)
        // in slot 15, where a walk of every slot found a "VMA" at 0xd.
        let leaf = 0x30000u64;
        let mut pivots: Vec<u64> = (1..=13).map(|i| i * 0x1000 - 1).collect();
        pivots.push(u64::MAX);
        let mut slots = vec![0u64];
        slots.extend((1..=13).map(|i| 0x9000_0000 + i * 0x100));
        let mut memory = MemoryImage::default();
        memory.insert(leaf, range_node(&pivots, &slots, Some(13)));
        let found = vmas(&memory, leaf | (1 << 3) | 2).unwrap();
        assert_eq!(found, slots[1..14]);
    }
}
