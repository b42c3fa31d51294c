//! The memory summary crash's `kmem -i` prints: total, free and used
//! pages, shared, buffers, page cache, slab, huge pages, swap and the
//! commit limit, from the kernel's global counters (`vm_zone_stat`,
//! `vm_node_stat`, indexed by the BTF's enum constants) and variables.

use kscope_btf::Btf;

use crate::symbols::SymbolTable;
use crate::types::member_offset;
use crate::{Error, KernelRead};

/// The most inodes of the block-device superblock walked for `BUFFERS`.
const MAX_INODES: usize = 1 << 20;

/// The summary, in pages.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MemoryInfo {
    /// Bytes in a page.
    pub page_size: u64,
    /// `_totalram_pages`.
    pub total: u64,
    /// `NR_FREE_PAGES`.
    pub free: u64,
    /// `NR_SHMEM` (crash counts pages with more than one reference in
    /// `mem_map` instead).
    pub shared: u64,
    /// Pages of block devices' page caches (`nr_blockdev_pages`).
    pub buffers: u64,
    /// `NR_FILE_PAGES` less swap cache and buffers.
    pub cached: u64,
    /// `NR_SLAB_RECLAIMABLE_B` and `NR_SLAB_UNRECLAIMABLE_B`, as
    /// /proc/meminfo's `Slab` (crash sums its own walk of the caches).
    pub slab: u64,
    /// Huge pages of every size, in base pages.
    pub huge_total: u64,
    /// Free huge pages, in base pages.
    pub huge_free: u64,
    /// `total_swap_pages`.
    pub swap_total: u64,
    /// `nr_swap_pages`.
    pub swap_free: u64,
    /// The overcommit limit (`vm_commit_limit`).
    pub commit_limit: u64,
    /// Pages committed (`vm_committed_as`'s folded count).
    pub committed: u64,
}

/// Reads the summary.
///
/// # Errors
///
/// [`Error::MissingSymbol`] without `_totalram_pages`, `vm_zone_stat` or
/// `vm_node_stat`, [`Error::Type`] when BTF lacks the enum constants, and
/// [`Error::Memory`] when the counters cannot be read. Huge pages, swap
/// and buffers count 0 where their variables are missing.
pub fn read_memory_info(
    memory: &dyn KernelRead,
    symbols: &SymbolTable,
    btf: &Btf<'_>,
    page_size: u64,
) -> Result<MemoryInfo, Error> {
    let read = |what: &str, address: u64| {
        memory.read_u64(address).map_err(|source| Error::Memory {
            what: what.to_string(),
            source,
        })
    };
    let constant = |name: &str| {
        btf.enum_value(name)
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| Error::Type(format!("the kernel's BTF has no enum constant {name}")))
    };
    let zone_stat = symbols.required("vm_zone_stat")?;
    let node_stat = symbols.required("vm_node_stat")?;
    let zone = |name: &str| -> Result<u64, Error> {
        let value = read(name, zone_stat + 8 * constant(name)?)?;
        Ok(value.min(i64::MAX as u64))
    };
    let node = |name: &str| -> Result<u64, Error> {
        let value = read(name, node_stat + 8 * constant(name)?)?;
        Ok(value.min(i64::MAX as u64))
    };
    let optional = |name: &str| symbols.address(name).and_then(|a| memory.read_u64(a).ok());

    let total = read("_totalram_pages", symbols.required("_totalram_pages")?)?;
    let free = zone("NR_FREE_PAGES")?;
    let shared = node("NR_SHMEM")?;
    let buffers = blockdev_pages(memory, symbols, btf).unwrap_or(0);
    let swapcache = node("NR_SWAPCACHE").unwrap_or(0);
    let cached = node("NR_FILE_PAGES")?
        .saturating_sub(swapcache)
        .saturating_sub(buffers);
    let slab = node("NR_SLAB_RECLAIMABLE_B")? + node("NR_SLAB_UNRECLAIMABLE_B")?;
    let (huge_total, huge_free) = huge_pages(memory, symbols, btf).unwrap_or((0, 0));
    let swap_total = optional("total_swap_pages").unwrap_or(0);
    let swap_free = optional("nr_swap_pages").unwrap_or(0);
    let kbytes = optional("sysctl_overcommit_kbytes").unwrap_or(0);
    let ratio = symbols
        .address("sysctl_overcommit_ratio")
        .and_then(|a| memory.read_u32(a).ok())
        .unwrap_or(50);
    let commit_limit = if kbytes != 0 {
        kbytes / (page_size / 1024).max(1)
    } else {
        total.saturating_sub(huge_total) * u64::from(ratio) / 100
    } + swap_total;
    let committed = committed(memory, symbols, btf).unwrap_or(0);
    Ok(MemoryInfo {
        page_size,
        total,
        free,
        shared,
        buffers,
        cached,
        slab,
        huge_total,
        huge_free,
        swap_total,
        swap_free,
        commit_limit,
        committed,
    })
}

/// `nr_blockdev_pages()`: the pages cached for every inode of the block
/// devices' pseudo filesystem.
fn blockdev_pages(memory: &dyn KernelRead, symbols: &SymbolTable, btf: &Btf<'_>) -> Option<u64> {
    let sb = memory
        .read_u64(symbols.address("blockdev_superblock")?)
        .ok()?;
    if sb == 0 {
        return Some(0);
    }
    let head = sb + member_offset(btf, "struct super_block", "s_inodes").ok()?;
    let link = member_offset(btf, "struct inode", "i_sb_list").ok()?;
    let mapping = member_offset(btf, "struct inode", "i_mapping").ok()?;
    let nrpages = member_offset(btf, "struct address_space", "nrpages").ok()?;
    let mut pages = 0u64;
    let mut next = memory.read_u64(head).ok()?;
    for _ in 0..MAX_INODES {
        if next == head || next == 0 {
            return Some(pages);
        }
        let inode = next.wrapping_sub(link);
        if let Ok(space) = memory.read_u64(inode + mapping) {
            pages += memory.read_u64(space + nrpages).unwrap_or(0);
        }
        next = memory.read_u64(next).ok()?;
    }
    None
}

/// Huge pages of every `hstate`, total and free, in base pages.
fn huge_pages(memory: &dyn KernelRead, symbols: &SymbolTable, btf: &Btf<'_>) -> Option<(u64, u64)> {
    let count = memory
        .read_u32(symbols.address("hugetlb_max_hstate")?)
        .ok()?
        .min(16);
    let hstates = symbols.address("hstates")?;
    let size = btf.type_size("struct hstate")?;
    let nr = member_offset(btf, "struct hstate", "nr_huge_pages").ok()?;
    let free = member_offset(btf, "struct hstate", "free_huge_pages").ok()?;
    let order = member_offset(btf, "struct hstate", "order").ok()?;
    let (mut total, mut available) = (0u64, 0u64);
    for i in 0..u64::from(count) {
        let h = hstates + i * size;
        let order = memory.read_u32(h + order).ok()?.min(30);
        total += memory.read_u64(h + nr).ok()? << order;
        available += memory.read_u64(h + free).ok()? << order;
    }
    Some((total, available))
}

/// `vm_committed_as`: its folded count, as crash reads it (the per-CPU
/// deltas not yet folded in are left out).
fn committed(memory: &dyn KernelRead, symbols: &SymbolTable, btf: &Btf<'_>) -> Option<u64> {
    let counter = symbols.address("vm_committed_as")?;
    let count = memory
        .read_u64(counter + member_offset(btf, "struct percpu_counter", "count").ok()?)
        .ok()? as i64;
    Some(u64::try_from(count).unwrap_or(0))
}

impl MemoryInfo {
    /// The summary laid out as crash's `kmem -i`.
    pub fn kmem_text(&self) -> String {
        let size = |pages: u64| size_text(pages * self.page_size);
        let row = |label: &str, pages: u64| format!("{label:>13}{pages:>9}{:>13}", size(pages));
        let of = |label: &str, pages: u64, whole: u64, what: &str| {
            let pct = pages.saturating_mul(100).checked_div(whole).unwrap_or(0);
            format!("{}{pct:>5}% of {what}\n", row(label, pages))
        };
        let mut text = String::from("                 PAGES        TOTAL      PERCENTAGE\n");
        text.push_str(&format!("{}         ----\n", row("TOTAL MEM", self.total)));
        let used = self.total.saturating_sub(self.free);
        for (label, pages) in [
            ("FREE", self.free),
            ("USED", used),
            ("SHARED", self.shared),
            ("BUFFERS", self.buffers),
            ("CACHED", self.cached),
            ("SLAB", self.slab),
        ] {
            text.push_str(&of(label, pages, self.total, "TOTAL MEM"));
        }
        text.push('\n');
        text.push_str(&format!(
            "{}         ----\n",
            row("TOTAL HUGE", self.huge_total)
        ));
        text.push_str(&of(
            "HUGE FREE",
            self.huge_free,
            self.huge_total,
            "TOTAL HUGE",
        ));
        text.push('\n');
        text.push_str(&format!(
            "{}         ----\n",
            row("TOTAL SWAP", self.swap_total)
        ));
        let swap_used = self.swap_total.saturating_sub(self.swap_free);
        text.push_str(&of("SWAP USED", swap_used, self.swap_total, "TOTAL SWAP"));
        text.push_str(&of(
            "SWAP FREE",
            self.swap_free,
            self.swap_total,
            "TOTAL SWAP",
        ));
        text.push('\n');
        text.push_str(&format!(
            "{}         ----\n",
            row("COMMIT LIMIT", self.commit_limit)
        ));
        text.push_str(&of(
            "COMMITTED",
            self.committed,
            self.commit_limit,
            "TOTAL LIMIT",
        ));
        text
    }
}

/// Bytes as crash shows a size: `0`, or one decimal (dropped when `.0`)
/// and KB, MB or GB.
fn size_text(bytes: u64) -> String {
    if bytes == 0 {
        return "0".into();
    }
    let (value, unit) = if bytes >= 1 << 30 {
        (bytes as f64 / f64::from(1u32 << 30), "GB")
    } else if bytes >= 1 << 20 {
        (bytes as f64 / f64::from(1u32 << 20), "MB")
    } else {
        (bytes as f64 / 1024.0, "KB")
    };
    let text = format!("{value:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {unit}")
}

#[cfg(test)]
mod tests {
    use super::{MemoryInfo, size_text};

    #[test]
    fn sizes_as_crash_prints_them() {
        assert_eq!(size_text(0), "0");
        assert_eq!(size_text(20418 * 4096), "79.8 MB");
        assert_eq!(size_text(13836 * 4096), "54 MB");
        assert_eq!(size_text(428 * 4096), "1.7 MB");
        assert_eq!(size_text(3 << 30), "3 GB");
        assert_eq!(size_text(12 << 10), "12 KB");
    }

    #[test]
    fn the_summary_is_laid_out_as_kmem_i() {
        let info = MemoryInfo {
            page_size: 4096,
            total: 20418,
            free: 13836,
            shared: 428,
            cached: 494,
            slab: 2185,
            commit_limit: 10209,
            committed: 480,
            ..MemoryInfo::default()
        };
        let text = info.kmem_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "    TOTAL MEM    20418      79.8 MB         ----");
        assert_eq!(
            lines[2],
            "         FREE    13836        54 MB   67% of TOTAL MEM"
        );
        assert_eq!(
            lines[5],
            "      BUFFERS        0            0    0% of TOTAL MEM"
        );
        assert_eq!(
            lines[10],
            "    HUGE FREE        0            0    0% of TOTAL HUGE"
        );
        assert_eq!(
            lines[17],
            "    COMMITTED      480       1.9 MB    4% of TOTAL LIMIT"
        );
    }
}
