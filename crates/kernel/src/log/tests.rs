//! Tests of the log readers on rings and buffers built in memory, and
//! the seeds of the `kernel_log` fuzz target made from them.

use super::*;
use crate::memory::MemoryImage;

/// The printk entries of the VMCOREINFO of Debian's 6.1 kernel.
const VMCOREINFO: &str = "SYMBOL(prb)=ffffffff83000f00\nSIZE(printk_ringbuffer)=88\n\
    OFFSET(printk_ringbuffer.desc_ring)=0\nOFFSET(printk_ringbuffer.text_data_ring)=48\n\
    OFFSET(printk_ringbuffer.fail)=80\nSIZE(prb_desc_ring)=48\n\
    OFFSET(prb_desc_ring.count_bits)=0\nOFFSET(prb_desc_ring.descs)=8\n\
    OFFSET(prb_desc_ring.infos)=16\nOFFSET(prb_desc_ring.head_id)=24\n\
    OFFSET(prb_desc_ring.tail_id)=32\nSIZE(prb_desc)=24\nOFFSET(prb_desc.state_var)=0\n\
    OFFSET(prb_desc.text_blk_lpos)=8\nSIZE(prb_data_blk_lpos)=16\n\
    OFFSET(prb_data_blk_lpos.begin)=0\nOFFSET(prb_data_blk_lpos.next)=8\n\
    SIZE(printk_info)=88\nOFFSET(printk_info.seq)=0\nOFFSET(printk_info.ts_nsec)=8\n\
    OFFSET(printk_info.text_len)=16\nOFFSET(printk_info.caller_id)=20\n\
    OFFSET(printk_info.dev_info)=24\nSIZE(dev_printk_info)=64\n\
    OFFSET(dev_printk_info.subsystem)=0\nLENGTH(printk_info_subsystem)=16\n\
    OFFSET(dev_printk_info.device)=16\nLENGTH(printk_info_device)=48\n\
    SIZE(prb_data_ring)=32\nOFFSET(prb_data_ring.size_bits)=0\n\
    OFFSET(prb_data_ring.data)=8\nOFFSET(prb_data_ring.head_lpos)=16\n\
    OFFSET(prb_data_ring.tail_lpos)=24\nSIZE(atomic_long_t)=8\n\
    OFFSET(atomic_long_t.counter)=0\n";

const PRB_VAR: u64 = 0xffff_ffff_8300_0f00;
const PRB: u64 = 0xffff_ffff_8300_0000;
const DESCS: u64 = 0xffff_ffff_8300_1000;
const INFOS: u64 = 0xffff_ffff_8300_2000;
const TEXT: u64 = 0xffff_ffff_8300_4000;

/// A ring of 8 descriptors and 256 bytes of text, laid out as 6.1
/// lays it out.
struct Ring {
    prb: Vec<u8>,
    descs: Vec<u8>,
    infos: Vec<u8>,
    text: Vec<u8>,
}

impl Ring {
    fn new(tail: u64, head: u64) -> Ring {
        let mut prb = vec![0; 88];
        prb[0..4].copy_from_slice(&3u32.to_le_bytes());
        prb[8..16].copy_from_slice(&DESCS.to_le_bytes());
        prb[16..24].copy_from_slice(&INFOS.to_le_bytes());
        prb[24..32].copy_from_slice(&head.to_le_bytes());
        prb[32..40].copy_from_slice(&tail.to_le_bytes());
        prb[48..52].copy_from_slice(&8u32.to_le_bytes());
        prb[56..64].copy_from_slice(&TEXT.to_le_bytes());
        Ring {
            prb,
            descs: vec![0; 8 * 24],
            infos: vec![0; 8 * 88],
            text: vec![0; 256],
        }
    }

    /// A record: its descriptor in `state`, its info, and its text
    /// written into its block (where the block wraps, at the ring's
    /// start).
    #[allow(clippy::too_many_arguments)]
    fn record(&mut self, id: u64, state: u64, begin: u64, next: u64, ts: u64, text: &[u8]) {
        let d = (id % 8) as usize * 24;
        self.descs[d..d + 8].copy_from_slice(&((state << 62) | id).to_le_bytes());
        self.descs[d + 8..d + 16].copy_from_slice(&begin.to_le_bytes());
        self.descs[d + 16..d + 24].copy_from_slice(&next.to_le_bytes());
        let i = (id % 8) as usize * 88;
        self.infos[i..i + 8].copy_from_slice(&(id + 100).to_le_bytes());
        self.infos[i + 8..i + 16].copy_from_slice(&ts.to_le_bytes());
        self.infos[i + 16..i + 18].copy_from_slice(&(text.len() as u16).to_le_bytes());
        // facility 1 (user), level 6 (info), flags 0.
        self.infos[i + 18] = 1;
        self.infos[i + 19] = 6 << 5;
        self.infos[i + 20..i + 24].copy_from_slice(&(0x8000_0001u32).to_le_bytes());
        if begin & 1 == 0 {
            let at = if begin >> 8 == next >> 8 {
                begin % 256
            } else {
                0
            } as usize;
            self.text[at..at + 8].copy_from_slice(&id.to_le_bytes());
            let end = (at + 8 + text.len()).min(256);
            self.text[at + 8..end].copy_from_slice(&text[..end - at - 8]);
        }
    }

    fn dev_info(&mut self, id: u64, subsystem: &[u8], device: &[u8]) {
        let i = (id % 8) as usize * 88 + 24;
        self.infos[i..i + subsystem.len()].copy_from_slice(subsystem);
        self.infos[i + 16..i + 16 + device.len()].copy_from_slice(device);
    }

    fn image(&self) -> MemoryImage {
        let mut image = MemoryImage::default();
        image.insert(PRB_VAR, PRB.to_le_bytes().to_vec());
        image.insert(PRB, self.prb.clone());
        image.insert(DESCS, self.descs.clone());
        image.insert(INFOS, self.infos.clone());
        image.insert(TEXT, self.text.clone());
        image
    }
}

fn layout() -> RingbufferLayout {
    RingbufferLayout::from_vmcoreinfo(&VmcoreInfo::parse(VMCOREINFO), None).expect("layout")
}

/// Ids 5 to 10: a finalized record, one reserved, a multi-line one
/// with a device, one committed whose block wraps, one without data
/// and one whose descriptor was reused for a later id.
fn ring() -> Ring {
    let mut ring = Ring::new(5, 10);
    ring.record(5, 2, 320, 336, 1_000_001_000, b"hello");
    ring.record(6, 0, 336, 352, 1_000_002_000, b"unfinished");
    ring.record(7, 2, 352, 368, 2_500_000_123, b"a\nb\x01c");
    ring.dev_info(7, b"pci", b"+pci:0000:00:01.0");
    ring.record(8, 1, 496, 544, 12_000_042_999, b"a block that wraps!!");
    ring.record(9, 2, 3, 3, 13_000_000_000, b"");
    ring.record(10, 2, 544, 560, 14_000_000_000, b"gone");
    // The descriptor of id 10 now holds id 18.
    ring.descs[2 * 24..2 * 24 + 8].copy_from_slice(&((2u64 << 62) | 18).to_le_bytes());
    ring
}

#[test]
fn the_lockless_ring_reads_in_id_order_as_makedumpfile_prints_it() {
    let memory = ring().image();
    let log = read_log(&memory, &VmcoreInfo::parse(VMCOREINFO), None).expect("reads");
    assert_eq!(log.format, LogFormat::Ringbuffer);
    assert_eq!(log.records.len(), 3);
    assert_eq!(log.skipped, 3);
    assert_eq!(
        log.dmesg(),
        "[    1.000001] hello\n\
         [    2.500000] a\n               b\\x01c\n\
         [   12.000042] a block that wraps!!\n"
    );
    let multi = &log.records[1];
    assert_eq!((multi.seq, multi.caller_id), (107, Some(0x8000_0001)));
    assert_eq!(multi.subsystem, b"pci");
    assert_eq!(multi.device, b"+pci:0000:00:01.0");
    assert_eq!(multi.level, None);
    assert!(log.records[0].subsystem.is_empty());
}

#[test]
fn levels_and_facilities_come_from_their_bitfields() {
    let layout = RingbufferLayout {
        facility: Some(BitField {
            bit_offset: 18 * 8,
            bits: 8,
        }),
        level: Some(BitField {
            bit_offset: 19 * 8 + 5,
            bits: 3,
        }),
        ..layout()
    };
    let log = read_ringbuffer(&ring().image(), PRB, &layout).expect("reads");
    assert!(
        log.records
            .iter()
            .all(|r| r.level == Some(6) && r.facility == Some(1))
    );
}

#[test]
fn a_text_longer_than_its_block_is_cut_to_the_block() {
    let mut ring = Ring::new(5, 5);
    ring.record(5, 2, 0, 16, 0, b"12345678");
    // The info claims 30 bytes; the block holds 8.
    ring.infos[5 * 88 + 16..5 * 88 + 18].copy_from_slice(&30u16.to_le_bytes());
    let log = read_ringbuffer(&ring.image(), PRB, &layout()).expect("reads");
    assert_eq!(log.records[0].text, b"12345678");
    assert_eq!(log.records[0].text_lossy(), "12345678");
}

#[test]
fn damaged_rings_are_errors_or_skipped_records() {
    let layout = layout();
    let bad = ring_with(|r| r.prb[0..4].copy_from_slice(&27u32.to_le_bytes()));
    let err = read_ringbuffer(&bad.image(), PRB, &layout).expect_err("too many");
    assert!(err.to_string().contains("2^27 descriptors"), "{err}");

    let bad = ring_with(|r| r.prb[48..52].copy_from_slice(&2u32.to_le_bytes()));
    assert!(read_ringbuffer(&bad.image(), PRB, &layout).is_err());

    // Head and tail further apart than the ring.
    let bad = ring_with(|r| r.prb[24..32].copy_from_slice(&100u64.to_le_bytes()));
    let err = read_ringbuffer(&bad.image(), PRB, &layout).expect_err("apart");
    assert!(err.to_string().contains("further apart"), "{err}");

    // Descriptors the dump lacks.
    let mut image = ring().image();
    image.insert(DESCS, vec![0; 24]);
    let err = read_ringbuffer(&image, PRB, &layout).expect_err("no descs");
    assert!(err.to_string().contains("struct prb_desc"), "{err}");

    // Text the dump lacks: the records are skipped.
    let mut image = ring().image();
    image.insert(TEXT, vec![0; 64]);
    let log = read_ringbuffer(&image, PRB, &layout).expect("reads");
    // The wrapped block's text is at the ring's start, which is there.
    assert_eq!(log.records.len(), 1);
    assert_eq!(log.skipped, 5);

    // Blocks that are not aligned, or span more than one wrap.
    let bad = ring_with(|r| {
        r.descs[5 * 24 + 8..5 * 24 + 16].copy_from_slice(&321u64.to_le_bytes());
        r.descs[7 * 24 + 16..7 * 24 + 24].copy_from_slice(&880u64.to_le_bytes());
    });
    let log = read_ringbuffer(&bad.image(), PRB, &layout).expect("reads");
    assert_eq!(log.records.len(), 1);

    let info = VmcoreInfo::parse("SYMBOL(prb)=ffffffff83000f00\n");
    let err = read_log(&bad.image(), &info, None).expect_err("no layout");
    assert!(err.to_string().contains("SIZE(printk_ringbuffer)"), "{err}");
    let err = read_log(&bad.image(), &VmcoreInfo::parse(""), None).expect_err("neither");
    assert!(err.to_string().contains("SYMBOL(prb)"), "{err}");
}

fn ring_with(change: impl FnOnce(&mut Ring)) -> Ring {
    let mut ring = ring();
    change(&mut ring);
    ring
}

// log_buf of 3.5 to 5.9, as the kernel's VMCOREINFO describes it: a
// 16-byte packed header (ts_nsec, len, text_len, dict_len, facility,
// flags:5 and level:3), records aligned to 4 bytes.
const LOG_BUF_VAR: u64 = 0xffff_ffff_8210_0000;
const LOG_BUF_LEN: u64 = 0xffff_ffff_8210_0010;
const FIRST_IDX: u64 = 0xffff_ffff_8210_0020;
const NEXT_IDX: u64 = 0xffff_ffff_8210_0030;
const LOG_BUF: u64 = 0xffff_8880_0100_0000;
const LEGACY: &str = "SYMBOL(log_buf)=ffffffff82100000\nSYMBOL(log_buf_len)=ffffffff82100010\n\
    SYMBOL(log_first_idx)=ffffffff82100020\nSYMBOL(clear_idx)=ffffffff82100028\n\
    SYMBOL(log_next_idx)=ffffffff82100030\nSIZE(printk_log)=16\n\
    OFFSET(printk_log.ts_nsec)=0\nOFFSET(printk_log.len)=8\n\
    OFFSET(printk_log.text_len)=10\nOFFSET(printk_log.dict_len)=12\n";

/// Puts a record at `at`; returns where the next one goes.
fn put(buf: &mut [u8], at: usize, ts: u64, text: &[u8], dict: &[u8]) -> usize {
    let len = (16 + text.len() + dict.len()).next_multiple_of(4);
    buf[at..at + 8].copy_from_slice(&ts.to_le_bytes());
    buf[at + 8..at + 10].copy_from_slice(&(len as u16).to_le_bytes());
    buf[at + 10..at + 12].copy_from_slice(&(text.len() as u16).to_le_bytes());
    buf[at + 12..at + 14].copy_from_slice(&(dict.len() as u16).to_le_bytes());
    buf[at + 15] = 4 << 5;
    buf[at + 16..at + 16 + text.len()].copy_from_slice(text);
    buf[at + 16 + text.len()..at + 16 + text.len() + dict.len()].copy_from_slice(dict);
    at + len
}

fn legacy_image(buf: Vec<u8>, first: u32, next: u32) -> MemoryImage {
    let mut image = MemoryImage::default();
    image.insert(LOG_BUF_VAR, LOG_BUF.to_le_bytes().to_vec());
    image.insert(LOG_BUF_LEN, (buf.len() as u32).to_le_bytes().to_vec());
    image.insert(FIRST_IDX, first.to_le_bytes().to_vec());
    image.insert(NEXT_IDX, next.to_le_bytes().to_vec());
    image.insert(LOG_BUF, buf);
    image
}

/// Four records from index 64: two at the end of a 160-byte buffer,
/// the end marker (the kernel keeps room for one after each record),
/// two at its start.
fn legacy_buf() -> (Vec<u8>, u32) {
    let mut buf = vec![0xaa; 160];
    let at = put(&mut buf, 64, 5_000_000, b"older", b"");
    let at = put(&mut buf, at, 6_000_000, b"two\nlines", b"SUB=pci");
    let wrapped = b"wrapped record!!";
    assert!(at + 16 + wrapped.len() + 16 > buf.len());
    // The zero header that sends readers back to the start.
    buf[at..at + 16].fill(0);
    let at = put(&mut buf, 0, 7_000_000_000, wrapped, b"");
    let next = put(&mut buf, at, 3_601_000_000_000, b"last\x7f", b"");
    (buf, next as u32)
}

#[test]
fn log_buf_records_wrap_at_the_end_marker() {
    let (buf, next) = legacy_buf();
    let memory = legacy_image(buf, 64, next);
    let log = read_log(&memory, &VmcoreInfo::parse(LEGACY), None).expect("reads");
    assert_eq!(log.format, LogFormat::LogBuf);
    assert_eq!(log.records.len(), 4);
    assert_eq!(
        log.dmesg(),
        "[    0.005000] older\n\
         [    0.006000] two\n               lines\n\
         [    7.000000] wrapped record!!\n\
         [ 3601.000000] last\\x7f\n"
    );
    // The old name of the struct.
    let old = LEGACY.replace("printk_log", "log");
    let log = read_log(&memory, &VmcoreInfo::parse(&old), None).expect("reads");
    assert_eq!(log.records.len(), 4);
}

#[test]
fn log_buf_callers_print_as_makedumpfile_prints_them() {
    let record = LogRecord {
        seq: 0,
        ts_nsec: 1_500_000,
        level: None,
        facility: None,
        caller_id: Some(42),
        text: b"x\ny".to_vec(),
        subsystem: Vec::new(),
        device: Vec::new(),
    };
    let mut out = String::new();
    record.write_dmesg(&mut out, true);
    assert_eq!(
        out,
        "[    0.001500] [     T42] x\n                          y\n"
    );
    let cpu = LogRecord {
        caller_id: Some(0x8000_0003),
        ..record
    };
    let mut out = String::new();
    cpu.write_dmesg(&mut out, true);
    assert!(out.starts_with("[    0.001500] [      C3] x\n"), "{out}");
    let mut out = String::new();
    cpu.write_dmesg(&mut out, false);
    assert!(out.starts_with("[    0.001500] x\n"), "{out}");
}

#[test]
fn damaged_log_bufs_are_errors() {
    let info = VmcoreInfo::parse(LEGACY);
    let (buf, next) = legacy_buf();
    // Indexes outside the buffer.
    let err = read_log(&legacy_image(buf.clone(), 200, next), &info, None).expect_err("outside");
    assert!(err.to_string().contains("outside log_buf"), "{err}");
    // A record longer than the buffer.
    let mut long = buf.clone();
    long[64 + 8..64 + 10].copy_from_slice(&200u16.to_le_bytes());
    let err = read_log(&legacy_image(long, 64, next), &info, None).expect_err("long");
    assert!(err.to_string().contains("record at 64"), "{err}");
    // A text longer than its record.
    let mut text = buf.clone();
    text[64 + 10..64 + 12].copy_from_slice(&100u16.to_le_bytes());
    assert!(read_log(&legacy_image(text, 64, next), &info, None).is_err());
    // next_idx that no record leads to: the walk ends at the buffer's
    // end instead of looping.
    let err = read_log(&legacy_image(buf.clone(), 64, next + 2), &info, None).expect_err("loop");
    assert!(err.to_string().contains("log_buf"), "{err}");
    // A buffer too large to read.
    let mut image = legacy_image(buf.clone(), 64, next);
    image.insert(LOG_BUF_LEN, (MAX_LOG_BUF + 1).to_le_bytes().to_vec());
    assert!(read_log(&image, &info, None).is_err());
    // A missing variable.
    let mut image = legacy_image(buf, 64, next);
    image.insert(NEXT_IDX, Vec::new());
    let err = read_log(&image, &info, None).expect_err("no next");
    assert!(err.to_string().contains("log_next_idx"), "{err}");
    let info = VmcoreInfo::parse("SYMBOL(log_buf)=1\nSYMBOL(log_first_idx)=2\n");
    let err = read_log(&MemoryImage::default(), &info, None).expect_err("no layout");
    assert!(err.to_string().contains("SYMBOL(log_buf_len)"), "{err}");
}

/// The seeds of the `kernel_log` fuzz target (fuzz/README.md): the
/// ring and the `log_buf` of the tests above in the target's input
/// layout (a mode byte; then `struct printk_ringbuffer`, the counts of
/// descriptors and of infos, the descriptors, infos and text; or the
/// three `u32` variables and the buffer).
fn fuzz_seeds() -> Vec<(String, Vec<u8>)> {
    let ring = ring();
    let mut seeds = Vec::new();
    for mode in [0u8, 4] {
        let mut seed = vec![mode];
        seed.extend_from_slice(&ring.prb);
        seed.push((ring.descs.len() / 24) as u8);
        seed.push((ring.infos.len() / 88) as u8);
        seed.extend_from_slice(&ring.descs);
        seed.extend_from_slice(&ring.infos);
        seed.extend_from_slice(&ring.text);
        seeds.push((format!("ring-{mode}"), seed));
    }
    let (buf, next) = legacy_buf();
    let mut seed = vec![1u8];
    for word in [0, 64, next] {
        seed.extend_from_slice(&word.to_le_bytes());
    }
    seed.extend_from_slice(&buf);
    seeds.push(("log_buf".to_string(), seed));
    seeds
}

/// The seeds, cut up as the fuzz target cuts its input, read as the
/// tests' own memory does; with `KSCOPE_FUZZ_SEEDS` set, they are
/// written into that directory.
#[test]
fn the_fuzz_seeds_read_as_the_tests_log() {
    let info = VmcoreInfo::parse(VMCOREINFO);
    let ring_log = read_log(&ring().image(), &info, None).expect("ring");
    let (buf, next) = legacy_buf();
    let legacy = VmcoreInfo::parse(LEGACY);
    let legacy_log = read_log(&legacy_image(buf, 64, next), &legacy, None).expect("log_buf");
    let seeds = fuzz_seeds();
    assert_eq!(seeds.len(), 3);
    for (name, seed) in &seeds {
        let (mode, rest) = seed.split_first().expect("a mode byte");
        if mode & 1 == 0 {
            let (prb, rest) = rest.split_at(88);
            let (descs, rest) = rest[2..].split_at(usize::from(rest[0]) * 24);
            let (infos, text) = rest.split_at(usize::from(seed[90]) * 88);
            let cut = Ring {
                prb: prb.to_vec(),
                descs: descs.to_vec(),
                infos: infos.to_vec(),
                text: text.to_vec(),
            };
            let log = read_log(&cut.image(), &info, None).expect(name);
            assert_eq!(log.dmesg(), ring_log.dmesg(), "{name}");
        } else {
            let word =
                |i: usize| u32::from_le_bytes(rest[4 * i..4 * i + 4].try_into().expect("4 bytes"));
            let image = legacy_image(rest[12..].to_vec(), word(1), word(2));
            let log = read_log(&image, &legacy, None).expect(name);
            assert_eq!(log.dmesg(), legacy_log.dmesg(), "{name}");
        }
    }
    if let Some(dir) = std::env::var_os("KSCOPE_FUZZ_SEEDS") {
        let dir = std::path::PathBuf::from(dir);
        for (name, seed) in seeds {
            std::fs::write(dir.join(name), seed).expect("writes");
        }
    }
}
