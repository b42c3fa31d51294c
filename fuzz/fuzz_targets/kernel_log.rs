//! Any bytes as the memory that holds the kernel's printk log, read
//! through `kscope_kernel::read_log` as a dump's would be: the first byte
//! chooses the format (the lockless ring buffer of 5.10 and later, or the
//! `log_buf` of 3.5 to 5.9) and whether the pointers inside the
//! structures point at the other pieces of the input or wherever the input
//! says; the rest is the `struct printk_ringbuffer` (or the `log_buf`
//! variables) followed by the descriptors, the infos and the text ring
//! (or the buffer), laid out by the VMCOREINFO of Debian's 6.1 kernel.
//! Errors are expected; panics, hangs and allocations beyond the input's
//! size are not. What reads must format (`Log::dmesg`) with a line per
//! record at least.

#![no_main]

use kscope_kernel::log::{BitField, Log, RingbufferLayout, read_ringbuffer};
use kscope_kernel::{MemoryImage, read_log};
use kscope_vmcore::VmcoreInfo;
use libfuzzer_sys::fuzz_target;

/// The printk entries of the VMCOREINFO of Debian's 6.1 kernel, and the
/// `log_buf` entries of a 5.4 kernel.
const VMCOREINFO: &str = "SYMBOL(prb)=ffffffff83000f00\nSIZE(printk_ringbuffer)=88\n\
    OFFSET(printk_ringbuffer.desc_ring)=0\nOFFSET(printk_ringbuffer.text_data_ring)=48\n\
    OFFSET(prb_desc_ring.count_bits)=0\nOFFSET(prb_desc_ring.descs)=8\n\
    OFFSET(prb_desc_ring.infos)=16\nOFFSET(prb_desc_ring.head_id)=24\n\
    OFFSET(prb_desc_ring.tail_id)=32\nSIZE(prb_desc)=24\nOFFSET(prb_desc.state_var)=0\n\
    OFFSET(prb_desc.text_blk_lpos)=8\nOFFSET(prb_data_blk_lpos.begin)=0\n\
    OFFSET(prb_data_blk_lpos.next)=8\nSIZE(printk_info)=88\nOFFSET(printk_info.seq)=0\n\
    OFFSET(printk_info.ts_nsec)=8\nOFFSET(printk_info.text_len)=16\n\
    OFFSET(printk_info.caller_id)=20\nOFFSET(printk_info.dev_info)=24\n\
    OFFSET(dev_printk_info.subsystem)=0\nLENGTH(printk_info_subsystem)=16\n\
    OFFSET(dev_printk_info.device)=16\nLENGTH(printk_info_device)=48\n\
    OFFSET(prb_data_ring.size_bits)=0\nOFFSET(prb_data_ring.data)=8\n\
    OFFSET(atomic_long_t.counter)=0\n";

const LEGACY: &str = "SYMBOL(log_buf)=ffffffff82100000\nSYMBOL(log_buf_len)=ffffffff82100010\n\
    SYMBOL(log_first_idx)=ffffffff82100020\nSYMBOL(log_next_idx)=ffffffff82100030\n\
    SIZE(printk_log)=16\nOFFSET(printk_log.ts_nsec)=0\nOFFSET(printk_log.len)=8\n\
    OFFSET(printk_log.text_len)=10\nOFFSET(printk_log.dict_len)=12\n";

const PRB_VAR: u64 = 0xffff_ffff_8300_0f00;
const PRB: u64 = 0xffff_ffff_8300_0000;
const DESCS: u64 = 0xffff_ffff_8400_0000;
const INFOS: u64 = 0xffff_ffff_8500_0000;
const TEXT: u64 = 0xffff_ffff_8600_0000;
const LOG_BUF: u64 = 0xffff_8880_0100_0000;

/// `n` bytes from the front of `data` (fewer at its end), and the rest.
fn take(data: &[u8], n: usize) -> (&[u8], &[u8]) {
    data.split_at(n.min(data.len()))
}

fn check(log: &Log, most_text: usize) {
    let text = log.dmesg();
    assert!(text.matches('\n').count() >= log.records.len());
    for record in &log.records {
        assert!(record.text.len() <= most_text.max(usize::from(u16::MAX)));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let wild_pointers = mode & 2 != 0;
    let mut image = MemoryImage::default();
    if mode & 1 == 0 {
        let (prb, rest) = take(rest, 88);
        let mut prb = prb.to_vec();
        prb.resize(88, 0);
        if !wild_pointers {
            prb[8..16].copy_from_slice(&DESCS.to_le_bytes());
            prb[16..24].copy_from_slice(&INFOS.to_le_bytes());
            prb[56..64].copy_from_slice(&TEXT.to_le_bytes());
        }
        let (split, rest) = take(rest, 2);
        let descs_len = usize::from(split.first().copied().unwrap_or(0)) * 24;
        let infos_len = usize::from(split.get(1).copied().unwrap_or(0)) * 88;
        let (descs, rest) = take(rest, descs_len);
        let (infos, text) = take(rest, infos_len);
        image.insert(PRB_VAR, PRB.to_le_bytes().to_vec());
        image.insert(PRB, prb);
        image.insert(DESCS, descs.to_vec());
        image.insert(INFOS, infos.to_vec());
        image.insert(TEXT, text.to_vec());
        let info = VmcoreInfo::parse(VMCOREINFO);
        if let Ok(log) = read_log(&image, &info, None) {
            check(&log, text.len());
        }
        if mode & 4 != 0 {
            let Ok(layout) = RingbufferLayout::from_vmcoreinfo(&info, None) else {
                return;
            };
            let layout = RingbufferLayout {
                level: Some(BitField {
                    bit_offset: 19 * 8 + 5,
                    bits: 3,
                }),
                facility: Some(BitField {
                    bit_offset: 18 * 8,
                    bits: 8,
                }),
                ..layout
            };
            if let Ok(log) = read_ringbuffer(&image, PRB, &layout) {
                assert!(log.records.iter().all(|r| r.level.is_some_and(|l| l < 8)));
                check(&log, text.len());
            }
        }
    } else {
        let (vars, buf) = take(rest, 12);
        let word = |i: usize| {
            let mut b = [0u8; 4];
            for (j, x) in b.iter_mut().enumerate() {
                *x = vars.get(i * 4 + j).copied().unwrap_or(0);
            }
            u32::from_le_bytes(b)
        };
        // Mostly the buffer's real length, so that more inputs read.
        let len = if mode & 4 == 0 {
            buf.len() as u32
        } else {
            word(0)
        };
        let pointer = if wild_pointers {
            u64::from(word(0)) << 32 | u64::from(word(1))
        } else {
            LOG_BUF
        };
        image.insert(0xffff_ffff_8210_0000, pointer.to_le_bytes().to_vec());
        image.insert(0xffff_ffff_8210_0010, len.to_le_bytes().to_vec());
        image.insert(0xffff_ffff_8210_0020, word(1).to_le_bytes().to_vec());
        image.insert(0xffff_ffff_8210_0030, word(2).to_le_bytes().to_vec());
        image.insert(LOG_BUF, buf.to_vec());
        if let Ok(log) = read_log(&image, &VmcoreInfo::parse(LEGACY), None) {
            check(&log, buf.len());
        }
    }
});
