//! Ring-buffer sub-buffers as `per_cpu/cpuN/trace_pipe_raw` hands them out
//! (and as trace.dat stores them): a header with the sub-buffer's time
//! stamp and its `commit` word, then compressed event headers, each
//! followed by a record or by time-keeping data, and after the data,
//! sometimes, the number of events the kernel dropped. [`SubBuffer`]
//! checks the header, and [`Records`] walks the events, keeping the clock
//! and yielding each record's absolute time stamp and payload without
//! copying. Little-endian kernels only. `docs/formats/ring-buffer.md`
//! describes the encoding and the kernel sources it comes from.

use std::iter::FusedIterator;

use crate::header::HeaderPage;

/// Where the sub-buffer header stores the `commit` word.
const COMMIT_AT: usize = 8;
/// Flag in `commit`: events were lost before this sub-buffer.
const MISSED_EVENTS: u64 = 1 << 31;
/// Flag in `commit`: their number follows the data.
const MISSED_STORED: u64 = 1 << 30;
/// The bits of `commit` below the two flags: the length of the data.
const COMMIT_LEN_MASK: u64 = MISSED_STORED - 1;

/// type_len of an event that is skipped: a discarded record, or the
/// unused end of a sub-buffer.
const PADDING: u32 = 29;
/// type_len of a time extend: more delta bits than an event header holds.
const TIME_EXTEND: u32 = 30;
/// type_len of an absolute time stamp.
const TIME_STAMP: u32 = 31;
/// The bits of `time_delta` in an event header; `array[0]` of a time
/// extend or time stamp holds the bits above them.
const TIME_DELTA_BITS: u32 = 27;
/// The five top bits of a clock value, which absolute time stamps leave
/// out (they hold 59 bits).
const TS_MSB: u64 = 0xf8 << 56;

/// How the kernel that wrote a sub-buffer laid out its header. The event
/// encoding after the header does not depend on the kernel's word size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLayout {
    /// Size of the `commit` word and of the missed-events count: the
    /// kernel's `long`, 8 bytes on 64-bit kernels and 4 on 32-bit ones.
    pub commit_size: usize,
    /// Where the data starts: 16 on 64-bit kernels, 12 on most 32-bit ones.
    pub data_offset: usize,
}

impl PageLayout {
    /// The layout of x86-64 kernels (and of every other 64-bit one).
    pub const X86_64: PageLayout = PageLayout {
        commit_size: 8,
        data_offset: 16,
    };

    /// The layout `events/header_page` describes.
    pub fn from_header(page: &HeaderPage) -> PageLayout {
        PageLayout {
            commit_size: page.commit_size() as usize,
            data_offset: page.data_offset() as usize,
        }
    }
}

/// A sub-buffer or record that does not have the kernel's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sub-buffer offset {offset} ({offset:#x}): expected {expected}")]
pub struct PageError {
    /// Offset from the start of the sub-buffer.
    pub offset: usize,
    /// What the decoder needed there.
    pub expected: &'static str,
}

impl PageError {
    fn new(offset: usize, expected: &'static str) -> PageError {
        PageError { offset, expected }
    }
}

/// Whether the kernel dropped events (an overwritten or full buffer)
/// between the previous sub-buffer of this CPU and this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// Nothing was lost.
    None,
    /// This many events were lost (the kernel had room to store the count).
    Count(u64),
    /// Events were lost; the kernel had no room left to say how many.
    Unknown,
}

impl Missed {
    /// `None` when nothing was lost; else `Some` of the count, when the
    /// kernel stored one.
    pub fn lost(self) -> Option<Option<u64>> {
        match self {
            Missed::None => None,
            Missed::Count(n) => Some(Some(n)),
            Missed::Unknown => Some(None),
        }
    }
}

/// One sub-buffer, borrowed.
///
/// ```
/// use kscope_traceevent::{Missed, PageLayout, SubBuffer};
/// let mut page = vec![0u8; 4096];
/// page[..8].copy_from_slice(&1_000u64.to_le_bytes()); // time stamp
/// page[8..16].copy_from_slice(&8u64.to_le_bytes()); // commit: 8 bytes of data
/// // One event: type_len 1 (4 bytes of payload), time delta 5.
/// page[16..20].copy_from_slice(&(1u32 | 5 << 5).to_le_bytes());
/// page[20..24].copy_from_slice(&[0x2a, 0, 0, 0]);
/// let sub = SubBuffer::parse(&page, &PageLayout::X86_64)?;
/// assert_eq!(sub.missed, Missed::None);
/// let records = sub.records().collect::<Result<Vec<_>, _>>()?;
/// assert_eq!(records.len(), 1);
/// assert_eq!(records[0].timestamp, 1_005);
/// assert_eq!(records[0].data, &[0x2a, 0, 0, 0]);
/// # Ok::<(), kscope_traceevent::PageError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubBuffer<'a> {
    /// The time stamp the events' deltas start from.
    pub timestamp: u64,
    /// Events the kernel lost before this sub-buffer.
    pub missed: Missed,
    /// The sub-buffer from its start to the end of the committed data.
    committed: &'a [u8],
    data_offset: usize,
}

impl<'a> SubBuffer<'a> {
    /// Checks the header of one whole sub-buffer. `bytes` is what one read
    /// of `trace_pipe_raw` returned (its length is the sub-buffer size,
    /// 4 KiB unless `buffer_subbuf_size_kb` says more) or one page of a
    /// trace.dat file.
    pub fn parse(bytes: &'a [u8], layout: &PageLayout) -> Result<SubBuffer<'a>, PageError> {
        let PageLayout {
            commit_size,
            data_offset,
        } = *layout;
        if commit_size != 4 && commit_size != 8 {
            return Err(PageError::new(
                COMMIT_AT,
                "a layout whose commit word is 4 or 8 bytes",
            ));
        }
        if data_offset < COMMIT_AT + commit_size {
            return Err(PageError::new(
                COMMIT_AT,
                "a layout whose data starts after the commit word",
            ));
        }
        let timestamp = word(bytes, 0, 8).ok_or(PageError::new(0, "an 8-byte time stamp"))?;
        let commit = word(bytes, COMMIT_AT, commit_size)
            .ok_or(PageError::new(COMMIT_AT, "the commit word"))?;
        if bytes.len() < data_offset {
            return Err(PageError::new(
                bytes.len(),
                "the rest of the sub-buffer header",
            ));
        }
        // RB_MISSED_EVENTS is the C int `1 << 31`, a negative number, and
        // the kernel adds it to the `long` commit: on 64-bit kernels a
        // sub-buffer after a loss has bits 31 to 63 all set.
        let high = commit >> 32;
        if high != 0 && !(high == 0xffff_ffff && commit & MISSED_EVENTS != 0) {
            return Err(PageError::new(
                COMMIT_AT,
                "a commit word whose bits 32 to 63 are clear, or all set with bit 31",
            ));
        }
        let data_end = usize::try_from(commit & COMMIT_LEN_MASK)
            .ok()
            .and_then(|len| data_offset.checked_add(len))
            .filter(|&end| end <= bytes.len())
            .ok_or(PageError::new(
                COMMIT_AT,
                "a commit length that fits in the sub-buffer",
            ))?;
        let missed = if commit & MISSED_STORED != 0 {
            // The kernel sets this flag only together with MISSED_EVENTS.
            let count = word(bytes, data_end, commit_size).ok_or(PageError::new(
                data_end,
                "the missed-events count right after the data",
            ))?;
            Missed::Count(count)
        } else if commit & MISSED_EVENTS != 0 {
            Missed::Unknown
        } else {
            Missed::None
        };
        Ok(SubBuffer {
            timestamp,
            missed,
            committed: &bytes[..data_end],
            data_offset,
        })
    }

    /// How many bytes of event data the sub-buffer holds.
    pub fn data_len(&self) -> usize {
        self.committed.len() - self.data_offset
    }

    /// The records, in the order the kernel wrote them.
    pub fn records(&self) -> Records<'a> {
        Records {
            committed: self.committed,
            position: self.data_offset,
            time: self.timestamp,
            done: false,
        }
    }
}

/// One record of a sub-buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Absolute time, in the units of the instance's trace clock
    /// (nanoseconds for `local`, `global`, `mono`, ...).
    pub timestamp: u64,
    /// The event's payload, starting with `common_type`: at least 4 bytes,
    /// and it may end with up to 3 bytes of alignment padding beyond what
    /// the event's format says.
    pub data: &'a [u8],
    /// Where the record's event header is in the sub-buffer.
    pub offset: usize,
}

/// The records of a sub-buffer, from [`SubBuffer::records`]. After an
/// error it yields `None`.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    committed: &'a [u8],
    position: usize,
    time: u64,
    done: bool,
}

impl<'a> Records<'a> {
    /// Decodes events up to the next record. Nothing here allocates, and
    /// every event moves `position` forward by at least 4 bytes, so a
    /// hostile sub-buffer can neither loop nor grow memory.
    fn advance(&mut self) -> Result<Option<Record<'a>>, PageError> {
        while self.position < self.committed.len() {
            let at = self.position;
            let header = self.u32_at(at, "a 4-byte event header")?;
            let type_len = header & 0x1f;
            let delta = u64::from(header >> (32 - TIME_DELTA_BITS));
            match type_len {
                PADDING if delta == 0 => {
                    // The rest of the sub-buffer is unused.
                    self.position = self.committed.len();
                }
                PADDING => {
                    self.position = self.skip_length_word(at, PADDING_LENGTH)?;
                    // A discarded record keeps its delta, and the next
                    // event counts from it; the padding that fills a
                    // sub-buffer's end has delta 1, which is no time.
                    if delta != 1 {
                        self.time = self.time.wrapping_add(delta);
                    }
                }
                TIME_EXTEND => {
                    let high = self.u32_at(at + 4, "the upper bits of a time extend")?;
                    self.time = self
                        .time
                        .wrapping_add((u64::from(high) << TIME_DELTA_BITS) | delta);
                    self.position = at + 8;
                }
                TIME_STAMP => {
                    let high = self.u32_at(at + 4, "the upper bits of an absolute time stamp")?;
                    let absolute = (u64::from(high) << TIME_DELTA_BITS) | delta;
                    self.time = restore_top_bits(absolute, self.time);
                    self.position = at + 8;
                }
                0 => {
                    let end = self.skip_length_word(at, RECORD_LENGTH)?;
                    return Ok(Some(self.record(at, at + 8, end, delta)));
                }
                words => {
                    let end = at + 4 + words as usize * 4;
                    if end > self.committed.len() {
                        return Err(PageError::new(
                            at,
                            "an event that ends within the committed data",
                        ));
                    }
                    return Ok(Some(self.record(at, at + 4, end, delta)));
                }
            }
        }
        Ok(None)
    }

    fn record(&mut self, at: usize, start: usize, end: usize, delta: u64) -> Record<'a> {
        self.time = self.time.wrapping_add(delta);
        self.position = end;
        Record {
            timestamp: self.time,
            data: &self.committed[start..end],
            offset: at,
        }
    }

    /// For padding and large records, whose `array[0]` counts the bytes
    /// after the event header (itself included): where the event ends.
    fn skip_length_word(&self, at: usize, rule: LengthRule) -> Result<usize, PageError> {
        let length = self.u32_at(at + 4, "the length word after the event header")?;
        if length < rule.min || !length.is_multiple_of(4) {
            return Err(PageError::new(at + 4, rule.expected));
        }
        (at + 4)
            .checked_add(length as usize)
            .filter(|&end| end <= self.committed.len())
            .ok_or(PageError::new(
                at + 4,
                "a length that ends within the committed data",
            ))
    }

    fn u32_at(&self, at: usize, expected: &'static str) -> Result<u32, PageError> {
        word(self.committed, at, 4)
            .map(|w| w as u32)
            .ok_or(PageError::new(at, expected))
    }
}

/// What an `array[0]` length must be.
#[derive(Clone, Copy)]
struct LengthRule {
    min: u32,
    expected: &'static str,
}

/// Padding covers at least its own length word.
const PADDING_LENGTH: LengthRule = LengthRule {
    min: 4,
    expected: "a padding length of at least 4 and a multiple of 4",
};

/// A record holds at least 4 bytes (the kernel rounds an empty one up), so
/// that `common_type` is always there.
const RECORD_LENGTH: LengthRule = LengthRule {
    min: 8,
    expected: "a record length of at least 8 and a multiple of 4",
};

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, PageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.advance() {
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }
}

impl FusedIterator for Records<'_> {}

/// An absolute time stamp holds 59 bits: the kernel drops the five top
/// bits of the clock, and the reader takes them from the time it had
/// before, carrying one into them when the low bits went backwards.
fn restore_top_bits(absolute: u64, before: u64) -> u64 {
    if before & TS_MSB == 0 {
        return absolute;
    }
    let restored = absolute | (before & TS_MSB);
    if restored < before {
        restored.wrapping_add(1 << 59)
    } else {
        restored
    }
}

/// A little-endian word of 4 or 8 bytes at `at`, if `bytes` holds it.
fn word(bytes: &[u8], at: usize, size: usize) -> Option<u64> {
    let raw = bytes.get(at..at.checked_add(size)?)?;
    Some(
        raw.iter()
            .rev()
            .fold(0u64, |value, &byte| (value << 8) | u64::from(byte)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds sub-buffers event by event, the way the kernel writes them.
    struct Builder {
        timestamp: u64,
        data: Vec<u8>,
    }

    impl Builder {
        fn new(timestamp: u64) -> Builder {
            Builder {
                timestamp,
                data: Vec::new(),
            }
        }

        fn header(&mut self, type_len: u32, delta: u32) {
            assert!(type_len < 32 && delta < 1 << 27);
            self.data
                .extend_from_slice(&(type_len | (delta << 5)).to_le_bytes());
        }

        /// A record of 4..=112 bytes, whose length type_len gives.
        fn small(mut self, delta: u32, payload: &[u8]) -> Builder {
            assert!(payload.len().is_multiple_of(4) && (4..=112).contains(&payload.len()));
            self.header(payload.len() as u32 / 4, delta);
            self.data.extend_from_slice(payload);
            self
        }

        /// A record whose length array[0] gives.
        fn large(mut self, delta: u32, payload: &[u8]) -> Builder {
            assert!(payload.len().is_multiple_of(4));
            self.header(0, delta);
            self.data
                .extend_from_slice(&(payload.len() as u32 + 4).to_le_bytes());
            self.data.extend_from_slice(payload);
            self
        }

        /// A discarded record (or, with delta 1, the end of a sub-buffer)
        /// of `length` bytes in all.
        fn padding(mut self, delta: u32, length: usize) -> Builder {
            self.header(PADDING, delta);
            self.data
                .extend_from_slice(&(length as u32 - 4).to_le_bytes());
            self.data.resize(self.data.len() + length - 8, 0xee);
            self
        }

        /// Padding with delta 0: nothing more on this sub-buffer.
        fn end_marker(mut self) -> Builder {
            self.header(PADDING, 0);
            self
        }

        fn extend(mut self, delta: u64) -> Builder {
            self.header(TIME_EXTEND, (delta & 0x7ff_ffff) as u32);
            self.data
                .extend_from_slice(&((delta >> 27) as u32).to_le_bytes());
            self
        }

        fn absolute(mut self, time: u64) -> Builder {
            self.header(TIME_STAMP, (time & 0x7ff_ffff) as u32);
            self.data
                .extend_from_slice(&((time >> 27) as u32).to_le_bytes());
            self
        }

        fn raw(mut self, bytes: &[u8]) -> Builder {
            self.data.extend_from_slice(bytes);
            self
        }

        /// A 4 KiB sub-buffer of the 64-bit layout, with the missed-events
        /// flag sign-extended as 64-bit kernels write it.
        fn build(&self, missed: Missed) -> Vec<u8> {
            let mut page = vec![0u8; 4096];
            let mut commit = self.data.len() as u64;
            page[..8].copy_from_slice(&self.timestamp.to_le_bytes());
            page[16..16 + self.data.len()].copy_from_slice(&self.data);
            match missed {
                Missed::None => {}
                Missed::Unknown => commit |= SIGN_EXTENDED_MISSED_EVENTS,
                Missed::Count(n) => {
                    commit |= SIGN_EXTENDED_MISSED_EVENTS | MISSED_STORED;
                    let at = 16 + self.data.len();
                    page[at..at + 8].copy_from_slice(&n.to_le_bytes());
                }
            }
            page[8..16].copy_from_slice(&commit.to_le_bytes());
            page
        }
    }

    fn decode(page: &[u8]) -> Result<Vec<Record<'_>>, PageError> {
        SubBuffer::parse(page, &PageLayout::X86_64)?
            .records()
            .collect()
    }

    fn times(records: &[Record<'_>]) -> Vec<u64> {
        records.iter().map(|r| r.timestamp).collect()
    }

    /// A sub-buffer with one of every kind of event.
    fn every_kind() -> Builder {
        Builder::new(1_000)
            .small(0, &[1, 0, 0, 0])
            .small(7, &[2, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd])
            .padding(3, 16)
            .extend(1 << 30)
            .small(2, &[3, 0, 0, 0])
            .large(5, &[4; 200])
            .absolute(5_000_000_000)
            .small(0, &[5, 0, 0, 0])
            .padding(1, 24)
    }

    #[test]
    fn small_records_carry_their_payload_offset_and_time() {
        let page = Builder::new(500)
            .small(0, &[1, 0, 2, 0])
            .small(20, &[9; 112])
            .build(Missed::None);
        let sub = SubBuffer::parse(&page, &PageLayout::X86_64).unwrap();
        assert_eq!(sub.timestamp, 500);
        assert_eq!(sub.data_len(), 8 + 116);
        let records = decode(&page).unwrap();
        assert_eq!(
            records[0],
            Record {
                timestamp: 500,
                data: &[1, 0, 2, 0],
                offset: 16,
            }
        );
        assert_eq!(records[1].timestamp, 520);
        assert_eq!(records[1].data, &[9; 112][..]);
        assert_eq!(records[1].offset, 24);
        assert_eq!(records.len(), 2);
    }

    #[test]
    fn a_large_record_takes_its_length_from_array0_which_counts_itself() {
        let payload: Vec<u8> = (0..=255).collect();
        let page = Builder::new(0)
            .large(9, &payload)
            .small(1, &[7, 0, 0, 0])
            .build(Missed::None);
        let records = decode(&page).unwrap();
        assert_eq!(records[0].data, &payload[..]);
        assert_eq!(records[0].offset, 16);
        assert_eq!(records[0].timestamp, 9);
        assert_eq!(records[1].offset, 16 + 8 + 256);
        assert_eq!(records[1].timestamp, 10);
    }

    #[test]
    fn padding_is_skipped_and_a_discarded_records_delta_still_counts() {
        let page = Builder::new(100)
            .small(0, &[1, 0, 0, 0])
            .padding(40, 12)
            .small(2, &[2, 0, 0, 0])
            .padding(1, 32)
            .build(Missed::None);
        let records = decode(&page).unwrap();
        assert_eq!(times(&records), [100, 142]);
        assert_eq!(records[1].offset, 16 + 8 + 12);
    }

    #[test]
    fn padding_with_delta_0_ends_the_sub_buffer() {
        let page = Builder::new(0)
            .small(1, &[1, 0, 0, 0])
            .end_marker()
            .raw(&[0xff; 12])
            .build(Missed::None);
        assert_eq!(times(&decode(&page).unwrap()), [1]);
    }

    #[test]
    fn a_time_extend_adds_its_upper_bits_to_the_clock() {
        let big = (3 << 27) + 17;
        let page = Builder::new(1_000)
            .extend(big)
            .small(0, &[1, 0, 0, 0])
            .extend(1 << 40)
            .small(6, &[2, 0, 0, 0])
            .build(Missed::None);
        assert_eq!(
            times(&decode(&page).unwrap()),
            [1_000 + big, 1_000 + big + (1 << 40) + 6]
        );
    }

    #[test]
    fn an_absolute_time_stamp_replaces_the_clock() {
        let page = Builder::new(1_000)
            .small(5, &[1, 0, 0, 0])
            .absolute(123_456_789_012)
            .small(0, &[2, 0, 0, 0])
            .small(3, &[3, 0, 0, 0])
            .build(Missed::None);
        assert_eq!(
            times(&decode(&page).unwrap()),
            [1_005, 123_456_789_012, 123_456_789_015]
        );
    }

    #[test]
    fn an_absolute_time_stamp_takes_its_top_five_bits_from_the_clock_before() {
        let top = 0x0800_0000_0000_0000; // bit 59, the lowest of the five
        let page = Builder::new(top | 1_000)
            .absolute(2_000)
            .small(0, &[1, 0, 0, 0])
            .build(Missed::None);
        assert_eq!(times(&decode(&page).unwrap()), [top | 2_000]);

        // Low bits below the clock's: they wrapped, so the top bits went up.
        let page = Builder::new(top | 5_000)
            .absolute(2_000)
            .small(0, &[1, 0, 0, 0])
            .build(Missed::None);
        assert_eq!(times(&decode(&page).unwrap()), [2 * top + 2_000]);
    }

    /// What `local_add(RB_MISSED_EVENTS, &commit)` adds on a 64-bit
    /// kernel: the int `1 << 31`, sign-extended to a long.
    const SIGN_EXTENDED_MISSED_EVENTS: u64 = 0xffff_ffff_8000_0000;

    #[test]
    fn missed_events_with_and_without_a_stored_count() {
        let events = Builder::new(0).small(1, &[1, 0, 0, 0]);
        for missed in [Missed::None, Missed::Unknown, Missed::Count(4242)] {
            let page = events.build(missed);
            let sub = SubBuffer::parse(&page, &PageLayout::X86_64).unwrap();
            assert_eq!(sub.missed, missed);
            assert_eq!(sub.data_len(), 8, "the flags are not part of the length");
            assert_eq!(sub.records().count(), 1);
        }
    }

    #[test]
    fn the_missed_events_flag_reads_with_or_without_its_sign_extension() {
        // Kernel 6.18 hands out sub-buffers after a loss with commit
        // words like 0xffff_ffff_c000_0fe4 (0xfe4 bytes, a stored count).
        let mut page = Builder::new(0).small(1, &[1, 0, 0, 0]).build(Missed::None);
        for commit in [0xffff_ffff_c000_0008u64, 0xc000_0008] {
            page[8..16].copy_from_slice(&commit.to_le_bytes());
            page[24..32].copy_from_slice(&17u64.to_le_bytes());
            let sub = SubBuffer::parse(&page, &PageLayout::X86_64).unwrap();
            assert_eq!(sub.missed, Missed::Count(17), "{commit:#x}");
            assert_eq!(sub.data_len(), 8, "{commit:#x}");
        }
        // Upper bits without the flag are still damage.
        page[8..16].copy_from_slice(&0xffff_ffff_0000_0008u64.to_le_bytes());
        assert!(SubBuffer::parse(&page, &PageLayout::X86_64).is_err());
    }

    #[test]
    fn a_32_bit_layout_reads_a_4_byte_commit_and_count() {
        let header = "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n\
\tfield: local_t commit;\toffset:8;\tsize:4;\tsigned:1;\n\
\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n\
\tfield: char data;\toffset:12;\tsize:4084;\tsigned:0;\n";
        let layout = PageLayout::from_header(&HeaderPage::parse(header).unwrap());
        assert_eq!(
            layout,
            PageLayout {
                commit_size: 4,
                data_offset: 12
            }
        );
        let mut page = vec![0u8; 4096];
        page[..8].copy_from_slice(&77u64.to_le_bytes());
        let commit = 8 | MISSED_EVENTS as u32 | MISSED_STORED as u32;
        page[8..12].copy_from_slice(&commit.to_le_bytes());
        page[12..16].copy_from_slice(&(1u32 | 3 << 5).to_le_bytes());
        page[16..20].copy_from_slice(&[1, 0, 0, 0]);
        page[20..24].copy_from_slice(&9u32.to_le_bytes());
        let sub = SubBuffer::parse(&page, &layout).unwrap();
        assert_eq!(sub.missed, Missed::Count(9));
        let records: Vec<_> = sub.records().map(Result::unwrap).collect();
        assert_eq!(times(&records), [80]);
        assert_eq!(records[0].offset, 12);
    }

    #[test]
    fn the_64_bit_header_page_gives_the_x86_64_layout() {
        let header = "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n\
\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n\
\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n\
\tfield: char data;\toffset:16;\tsize:4080;\tsigned:0;\n";
        let page = HeaderPage::parse(header).unwrap();
        assert_eq!(PageLayout::from_header(&page), PageLayout::X86_64);
    }

    #[test]
    fn bad_headers_name_the_offset_and_what_was_expected() {
        let good = Builder::new(0).small(0, &[1, 0, 0, 0]).build(Missed::None);
        let with_commit = |commit: u64| {
            let mut page = good.clone();
            page[8..16].copy_from_slice(&commit.to_le_bytes());
            page
        };
        let odd = PageLayout {
            commit_size: 2,
            data_offset: 16,
        };
        let overlapping = PageLayout {
            commit_size: 8,
            data_offset: 12,
        };
        let cases: [(Vec<u8>, PageLayout, usize, &str); 8] = [
            (good.clone(), odd, 8, "4 or 8 bytes"),
            (good.clone(), overlapping, 8, "after the commit word"),
            (good[..5].to_vec(), PageLayout::X86_64, 0, "time stamp"),
            (good[..12].to_vec(), PageLayout::X86_64, 8, "commit word"),
            (
                with_commit(1 << 32 | 8),
                PageLayout::X86_64,
                8,
                "bits 32 to 63",
            ),
            (
                with_commit(0xffff_ffff_0000_0008),
                PageLayout::X86_64,
                8,
                "all set with bit 31",
            ),
            (
                with_commit(4081),
                PageLayout::X86_64,
                8,
                "fits in the sub-buffer",
            ),
            (
                with_commit(4076 | MISSED_EVENTS | MISSED_STORED),
                PageLayout::X86_64,
                4092,
                "missed-events count",
            ),
        ];
        for (page, layout, offset, expected) in cases {
            let err = SubBuffer::parse(&page, &layout).unwrap_err();
            assert_eq!(err.offset, offset, "{err}");
            assert!(err.expected.contains(expected), "{err}");
            assert!(
                err.to_string().contains(&format!("offset {offset} ")),
                "{err}"
            );
        }
        // A header cut inside the data offset's padding.
        let short = PageLayout {
            commit_size: 8,
            data_offset: 24,
        };
        let err = SubBuffer::parse(&good[..20], &short).unwrap_err();
        assert_eq!(err.offset, 20, "{err}");
    }

    #[test]
    fn corrupt_events_are_errors_and_end_the_iteration() {
        let one = [1, 0, 0, 0];
        // Each corrupt event is followed by a good one, which must not come.
        let cases: [(&[u8], usize, &str); 6] = [
            // type_len 28 promises 112 bytes; the commit has 16 after it.
            (&[28, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8], 16, "ends within"),
            (&[0, 0, 0, 0, 4, 0, 0, 0], 20, "record length of at least 8"),
            (&[0, 0, 0, 0, 10, 0, 0, 0], 20, "multiple of 4"),
            (
                &[29, 1, 0, 0, 0, 0, 0, 0],
                20,
                "padding length of at least 4",
            ),
            (&[29, 1, 0, 0, 0, 1, 0, 0], 20, "ends within"),
            (&[0, 0, 0, 0, 0, 1, 0, 0], 20, "ends within"),
        ];
        let cases = cases.map(|(raw, offset, expected)| {
            (Builder::new(0).raw(raw).small(1, &one), offset, expected)
        });
        let truncated_extend = Builder::new(0).small(1, &one).raw(&[30, 0, 0, 0]);
        let cases = cases
            .into_iter()
            .chain([(truncated_extend, 28, "time extend")]);
        for (builder, offset, expected) in cases {
            let page = builder.build(Missed::None);
            let sub = SubBuffer::parse(&page, &PageLayout::X86_64).unwrap();
            let mut records = sub.records().skip_while(Result::is_ok);
            let err = records.next().unwrap().unwrap_err();
            assert_eq!(err.offset, offset, "{err}");
            assert!(err.expected.contains(expected), "{err}");
            assert_eq!(records.next(), None, "nothing after an error");
        }
        // Committed data that stops inside an event header.
        let page = Builder::new(0).raw(&[1, 0]).build(Missed::None);
        let err = decode(&page).unwrap_err();
        assert_eq!((err.offset, err.expected), (16, "a 4-byte event header"));
    }

    #[test]
    fn every_kind_of_event_together_decodes_in_order() {
        let page = every_kind().build(Missed::Count(3));
        let records = decode(&page).unwrap();
        let first_bytes: Vec<u8> = records.iter().map(|r| r.data[0]).collect();
        assert_eq!(first_bytes, [1, 2, 3, 4, 5]);
        let after_extend = 1_000 + 7 + 3 + (1 << 30) + 2;
        assert_eq!(
            times(&records),
            [1_000, 1_007, after_extend, after_extend + 5, 5_000_000_000]
        );
    }

    #[test]
    fn every_truncation_of_a_valid_sub_buffer_is_an_error_or_fewer_records() {
        let page = every_kind().build(Missed::Count(3));
        let full = decode(&page).unwrap();
        // Cut the bytes: anything shorter than the header and the
        // committed data is an error.
        let data_end = 16 + every_kind().data.len();
        for end in 0..page.len() {
            match decode(&page[..end]) {
                Ok(records) => {
                    assert!(end >= data_end + 8, "cut at {end} parsed");
                    assert_eq!(records, full);
                }
                Err(err) => assert!(err.offset <= end, "cut at {end}: {err}"),
            }
        }
        // Cut the commit length: the records before the cut survive.
        for len in 0..=data_end - 16 {
            let mut cut = page.clone();
            cut[8..16].copy_from_slice(&(len as u64).to_le_bytes());
            let sub = SubBuffer::parse(&cut, &PageLayout::X86_64).unwrap();
            let mut records = Vec::new();
            for item in sub.records() {
                match item {
                    Ok(record) => records.push(record),
                    Err(err) => assert!(err.offset <= 16 + len, "commit {len}: {err}"),
                }
            }
            assert!(records.len() <= full.len());
            assert_eq!(records, full[..records.len()], "commit {len}");
        }
    }
}
