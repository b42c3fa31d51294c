//! VMCOREINFO: the `KEY=VALUE` lines the kernel writes for dump readers
//! (`kernel/vmcore_info.c` and each architecture's
//! `arch_crash_save_vmcoreinfo`), with typed accessors that know each
//! key's number base: `SYMBOL()` and `KERNELOFFSET` are hex without `0x`;
//! `SIZE()`, `OFFSET()`, `LENGTH()`, `PAGESIZE` and `CRASHTIME` decimal;
//! `NUMBER()` decimal (`%ld`, possibly negative), though some
//! architectures print theirs as `0x` hex.

use std::collections::HashMap;

/// Parsed VMCOREINFO text.
///
/// ```
/// let info = kscope_vmcore::VmcoreInfo::parse(
///     "OSRELEASE=a-release\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=ffffffffa6e0a000\n\
///      NUMBER(phys_base)=-1610612736\nOFFSET(list_head.next)=0\n",
/// );
/// assert_eq!(info.osrelease(), Some("a-release"));
/// assert_eq!(info.symbol("init_top_pgt"), Some(0xffffffffa6e0a000));
/// assert_eq!(info.number("phys_base"), Some(-0x6000_0000));
/// assert_eq!(info.offset("list_head", "next"), Some(0));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmcoreInfo {
    entries: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl VmcoreInfo {
    /// Parses VMCOREINFO text. Lines without `=` and lines after a NUL are
    /// ignored; when a key repeats, the first value counts (as in crash
    /// and makedumpfile, which search the text from its start).
    pub fn parse(text: &str) -> VmcoreInfo {
        let text = text.split('\0').next().unwrap_or_default();
        let mut info = VmcoreInfo::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if key.is_empty() || info.index.contains_key(key) {
                continue;
            }
            info.index.insert(key.to_string(), info.entries.len());
            info.entries
                .push((key.to_string(), value.trim_end().to_string()));
        }
        info
    }

    /// The value of `key` as written (`"SYMBOL(_stext)"`, `"OSRELEASE"`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.index.get(key).map(|&i| self.entries[i].1.as_str())
    }

    /// Every entry in the order of the text.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `OSRELEASE`: the kernel release (`uname -r`).
    pub fn osrelease(&self) -> Option<&str> {
        self.get("OSRELEASE")
    }

    /// `PAGESIZE`, in bytes.
    pub fn page_size(&self) -> Option<u64> {
        self.get("PAGESIZE").and_then(parse_decimal)
    }

    /// `SYMBOL(name)`: the symbol's address in the running kernel (KASLR
    /// applied).
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.get(&format!("SYMBOL({name})")).and_then(parse_hex)
    }

    /// `SIZE(name)`: the size of a type in bytes.
    pub fn size(&self, name: &str) -> Option<u64> {
        self.get(&format!("SIZE({name})")).and_then(parse_decimal)
    }

    /// `OFFSET(type.member)`: a member's offset in bytes.
    pub fn offset(&self, type_name: &str, member: &str) -> Option<u64> {
        self.get(&format!("OFFSET({type_name}.{member})"))
            .and_then(parse_decimal)
    }

    /// `LENGTH(name)`: an array's element count.
    pub fn length(&self, name: &str) -> Option<u64> {
        self.get(&format!("LENGTH({name})")).and_then(parse_decimal)
    }

    /// `NUMBER(name)`: decimal, possibly negative, or `0x` hex.
    pub fn number(&self, name: &str) -> Option<i64> {
        self.get(&format!("NUMBER({name})")).and_then(parse_number)
    }

    /// `KERNELOFFSET`: how far KASLR moved the kernel image from its
    /// link-time address.
    pub fn kernel_offset(&self) -> Option<u64> {
        self.get("KERNELOFFSET").and_then(parse_hex)
    }

    /// `NUMBER(phys_base)` (x86-64): the physical address of the kernel
    /// image minus its link-time offset from `__START_KERNEL_map`.
    pub fn phys_base(&self) -> Option<u64> {
        self.number("phys_base").map(|v| v as u64)
    }

    /// `NUMBER(pgtable_l5_enabled)` (x86-64): whether the kernel ran with
    /// 5-level page tables. `None` on kernels that predate it (4-level).
    pub fn pgtable_l5_enabled(&self) -> Option<bool> {
        self.number("pgtable_l5_enabled").map(|v| v != 0)
    }

    /// `NUMBER(sme_mask)` (x86-64): the memory-encryption bit that page
    /// table entries carry in their address field, 0 without SME.
    pub fn sme_mask(&self) -> Option<u64> {
        self.number("sme_mask").map(|v| v as u64)
    }

    /// `NUMBER(KERNEL_IMAGE_SIZE)` (x86-64): the size of the kernel image
    /// mapping at `__START_KERNEL_map`.
    pub fn kernel_image_size(&self) -> Option<u64> {
        self.number("KERNEL_IMAGE_SIZE").map(|v| v as u64)
    }

    /// `CRASHTIME`: seconds since the epoch when the kernel crashed.
    pub fn crash_time(&self) -> Option<i64> {
        self.get("CRASHTIME").and_then(|v| v.trim().parse().ok())
    }

    /// `BUILD-ID`: the kernel's GNU build-id, when the kernel writes it
    /// (5.9 and later).
    pub fn build_id(&self) -> Option<Vec<u8>> {
        let hex = self.get("BUILD-ID")?.trim();
        if hex.is_empty() || hex.len() % 2 != 0 {
            return None;
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect()
    }
}

fn parse_hex(value: &str) -> Option<u64> {
    let v = value.trim();
    let v = v
        .strip_prefix("0x")
        .or_else(|| v.strip_prefix("0X"))
        .unwrap_or(v);
    u64::from_str_radix(v, 16).ok()
}

fn parse_decimal(value: &str) -> Option<u64> {
    let v = value.trim();
    if v.starts_with("0x") || v.starts_with("0X") {
        return parse_hex(v);
    }
    v.parse().ok()
}

fn parse_number(value: &str) -> Option<i64> {
    let v = value.trim();
    if v.starts_with("0x") || v.starts_with("0X") {
        return parse_hex(v).map(|n| n as i64);
    }
    v.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86_64: &str = "OSRELEASE=a-release\nBUILD-ID=0a1b2c3d\nPAGESIZE=4096\n\
        SYMBOL(init_uts_ns)=ffffffffa7a13e60\nSYMBOL(_stext)=ffffffffa5a00000\n\
        SIZE(page)=64\nOFFSET(page.flags)=0\nLENGTH(zone.free_area)=11\n\
        NUMBER(NR_FREE_PAGES)=0\nNUMBER(phys_base)=42991616\nSYMBOL(init_top_pgt)=ffffffffa760a000\n\
        NUMBER(pgtable_l5_enabled)=1\nKERNELOFFSET=24a00000\nNUMBER(KERNEL_IMAGE_SIZE)=1073741824\n\
        NUMBER(sme_mask)=0\nCRASHTIME=1764085000\n";

    #[test]
    fn typed_accessors_read_each_base() {
        let info = VmcoreInfo::parse(X86_64);
        assert_eq!(info.osrelease(), Some("a-release"));
        assert_eq!(info.page_size(), Some(4096));
        assert_eq!(info.symbol("_stext"), Some(0xffffffffa5a00000));
        assert_eq!(info.size("page"), Some(64));
        assert_eq!(info.offset("page", "flags"), Some(0));
        assert_eq!(info.length("zone.free_area"), Some(11));
        assert_eq!(info.phys_base(), Some(42991616));
        assert_eq!(info.pgtable_l5_enabled(), Some(true));
        assert_eq!(info.kernel_offset(), Some(0x24a00000));
        assert_eq!(info.kernel_image_size(), Some(1 << 30));
        assert_eq!(info.sme_mask(), Some(0));
        assert_eq!(info.crash_time(), Some(1764085000));
        assert_eq!(info.build_id(), Some(vec![0x0a, 0x1b, 0x2c, 0x3d]));
        assert_eq!(info.len(), 16);
        assert_eq!(info.symbol("nothing"), None);
    }

    #[test]
    fn negative_and_hex_numbers() {
        let info = VmcoreInfo::parse("NUMBER(a)=-5\nNUMBER(b)=0x10\nNUMBER(c)=x\n");
        assert_eq!(info.number("a"), Some(-5));
        assert_eq!(info.number("b"), Some(16));
        assert_eq!(info.number("c"), None);
        assert_eq!(info.phys_base(), None);
    }

    #[test]
    fn junk_lines_and_repeats_and_nul() {
        let info = VmcoreInfo::parse("garbage\n=x\nOSRELEASE=a\r\nOSRELEASE=b\n\0PAGESIZE=4096\n");
        assert_eq!(info.osrelease(), Some("a"));
        assert_eq!(info.page_size(), None);
        assert_eq!(info.entries().count(), 1);
        assert_eq!(VmcoreInfo::parse("BUILD-ID=abc\n").build_id(), None);
        assert_eq!(VmcoreInfo::parse("BUILD-ID=zz\n").build_id(), None);
        assert!(VmcoreInfo::parse("").is_empty());
    }
}
