//! Any bytes as a vmcore: `Vmcore::from_bytes` (ELF, kdump-compressed or
//! flattened, by the magic), then the reads a debugger starts with: the
//! memory ranges, physical reads at the ranges' edges and at an address
//! the input chooses (twice, the second time from the page cache), the
//! VMCOREINFO accessors, and the x86-64 kernel layout with a few virtual
//! reads. Errors are expected; panics, hangs and allocations beyond the
//! input's size (plus the stated limits) are not. The input is also parsed
//! as VMCOREINFO text.

#![no_main]

use kscope_vmcore::{KernelMemory, Vmcore, VmcoreInfo};
use libfuzzer_sys::fuzz_target;

fn accessors(info: &VmcoreInfo) {
    let _ = (info.osrelease(), info.page_size(), info.kernel_offset());
    let _ = (info.phys_base(), info.pgtable_l5_enabled(), info.sme_mask());
    let _ = (info.crash_time(), info.build_id(), info.kernel_image_size());
    let _ = (info.symbol("init_top_pgt"), info.size("page"), info.length("node_data"));
    let _ = (info.offset("list_head", "next"), info.number("NR_FREE_PAGES"));
    assert_eq!(info.entries().count(), info.len());
}

fuzz_target!(|data: &[u8]| {
    accessors(&VmcoreInfo::parse(&String::from_utf8_lossy(data)));
    let chosen = data
        .get(data.len().saturating_sub(8)..)
        .map(|b| b.iter().fold(0u64, |a, &x| a << 8 | u64::from(x)))
        .unwrap_or(0);
    let Ok(dump) = Vmcore::from_bytes(data.to_vec()) else {
        return;
    };
    let _ = (dump.format(), dump.machine(), dump.compression(), dump.kdump_header());
    let _ = (dump.elf_segments().len(), dump.cpus().len(), dump.max_phys_addr());
    if let Some(info) = dump.vmcoreinfo() {
        accessors(info);
    }
    let mut buf = vec![0u8; dump.page_size() as usize + 16];
    let mut addresses = vec![0, chosen, chosen & !0xfff];
    if let Ok(ranges) = dump.memory_ranges() {
        for r in ranges.iter().take(4) {
            assert!(r.start <= r.end);
            addresses.extend([r.start, r.end.saturating_sub(8), r.end.saturating_sub(100)]);
        }
    }
    for &paddr in &addresses {
        for _ in 0..2 {
            match dump.read_phys(paddr, &mut buf) {
                Ok(()) => {}
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
        let _ = dump.read_phys_u64(paddr);
    }
    if let Ok(kernel) = KernelMemory::new(&dump) {
        let layout = kernel.layout().clone();
        assert!(layout.levels == 4 || layout.levels == 5);
        for vaddr in [
            0xffff_ffff_8100_0000,
            chosen,
            layout.page_offset_base.unwrap_or(0).wrapping_add(chosen & 0xffff_ffff),
            0xffff_c900_0000_0000 | (chosen & 0xff_ffff_ffff),
        ] {
            let _ = kernel.translate(vaddr);
            let _ = kernel.walk(vaddr);
            let _ = kernel.read_u64(vaddr);
            let _ = kernel.read_cstr(vaddr, 300);
        }
    }
});
