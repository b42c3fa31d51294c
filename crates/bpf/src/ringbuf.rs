//! A BPF ring buffer (BPF_MAP_TYPE_RINGBUF) and user space's view of it,
//! as the kernel's Documentation/bpf/ringbuf.rst describes: programs on
//! every CPU append records with `bpf_ringbuf_output` (or reserve and
//! submit), and one consumer here reads them in order, in place, from
//! pages mapped once at creation. Each record is an 8-byte header (u32
//! length with BPF_RINGBUF_BUSY_BIT and BPF_RINGBUF_DISCARD_BIT, u32
//! pg_off) and its data, padded to 8 bytes.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::map::{Map, MapType};
use crate::sys::{self, RINGBUF_BUSY_BIT, RINGBUF_DISCARD_BIT, RINGBUF_HEADER_BYTES, RingBufPages};

/// A BPF ring buffer map and user space's view of it: the consumer page
/// mapped read-write, the producer page and the data area read-only, the
/// data area mapped twice in a row as the kernel lays it out, so that a
/// record wrapping past the end is one contiguous slice. Records are
/// handed out in place, without copying.
///
/// ```no_run
/// use std::time::Duration;
/// let mut ring = kscope_bpf::RingBuf::create("kscope_events", 1 << 20)?;
/// // ... load a program that calls bpf_ringbuf_output on ring.map() ...
/// ring.poll(Duration::from_millis(100), |record| println!("{record:?}"))?;
/// # Ok::<(), kscope_bpf::Error>(())
/// ```
#[derive(Debug)]
pub struct RingBuf {
    pages: RingBufPages,
    epoll: OwnedFd,
    map: Map,
}

impl RingBuf {
    /// Creates a ring buffer map and maps its pages. `size` in bytes: a
    /// power of two and a multiple of the page size (an error otherwise,
    /// saying so and naming the nearest size that is). One record can be
    /// at most `size - 16` bytes of data: its 8-byte header and padding
    /// count, and the kernel keeps the buffer from filling completely.
    pub fn create(name: &str, size: u32) -> Result<RingBuf> {
        let page_size = sys::page_size();
        if !valid_size(size, page_size) {
            return Err(Error::RingBufSize {
                name: name.to_string(),
                size,
                page_size,
                suggested: u64::from(size).next_power_of_two().max(page_size as u64),
            });
        }
        let map = Map::create(MapType::RingBuf, name, 0, 0, size)?;
        let error = |what| {
            move |source| Error::RingBuf {
                name: name.to_string(),
                what,
                source,
            }
        };
        let pages =
            RingBufPages::map(map.as_fd(), size as usize).map_err(error("mapping its pages"))?;
        let epoll = sys::epoll_for_reading(map.as_fd()).map_err(error("setting up epoll on it"))?;
        Ok(RingBuf { pages, epoll, map })
    }

    /// The ring buffer's map, for [`Insn::ld_map_fd`](crate::Insn::ld_map_fd)
    /// in the programs that write to it.
    pub fn map(&self) -> &Map {
        &self.map
    }

    /// Calls `each` for every committed record, in order, skipping the
    /// discarded ones, and hands each one's space back to the kernel as
    /// soon as `each` returns. If none is there, first waits up to
    /// `timeout` for the kernel to signal one (epoll on the map fd); a
    /// signal that interrupts the wait (EINTR, say Ctrl-C) counts as
    /// "woke up, nothing new": Ok(0), never an error, so that the caller
    /// can check its own flags. Stops at a record still being written (it
    /// is there next time). Returns how many records `each` saw.
    pub fn poll(&mut self, timeout: Duration, mut each: impl FnMut(&[u8])) -> Result<usize> {
        loop {
            let (seen, moved) = consume(&mut self.pages, &mut each);
            if seen > 0 || timeout.is_zero() {
                return Ok(seen);
            }
            // Only discarded records: the kernel wakes a waiter only for a
            // record committed at the consumer position, so records that
            // came in behind them would not wake us. Look again first.
            if !moved {
                break;
            }
        }
        match sys::epoll_wait(self.epoll.as_fd(), timeout_ms(timeout)) {
            Ok(_) => Ok(consume(&mut self.pages, &mut each).0),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(source) => Err(Error::RingBuf {
                name: self.map.name().to_string(),
                what: "waiting for records",
                source,
            }),
        }
    }

    /// Like [`poll`](RingBuf::poll) with a zero timeout: every record
    /// there now, without waiting.
    pub fn drain(&mut self, mut each: impl FnMut(&[u8])) -> Result<usize> {
        Ok(consume(&mut self.pages, &mut each).0)
    }
}

/// What the kernel accepts as a ring buffer's size.
fn valid_size(size: u32, page_size: usize) -> bool {
    size.is_power_of_two() && (size as usize).is_multiple_of(page_size)
}

/// epoll's timeout in milliseconds, rounded up so that a short timeout
/// still waits rather than spins, and capped at what an int holds.
fn timeout_ms(timeout: Duration) -> i32 {
    i32::try_from(timeout.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
}

/// The shared pages as the consumer loop sees them: the kernel's
/// ([`RingBufPages`]) and, in tests, a plain buffer.
trait Ring {
    fn data_size(&self) -> usize;
    fn consumer_pos(&self) -> u64;
    fn producer_pos(&self) -> u64;
    fn set_consumer_pos(&mut self, pos: u64);
    /// The header word (length and busy/discard bits) at `pos`.
    fn header(&self, pos: u64) -> u32;
    /// The data of the committed record at `pos`.
    fn committed(&self, pos: u64) -> Option<&[u8]>;
}

impl Ring for RingBufPages {
    fn data_size(&self) -> usize {
        RingBufPages::data_size(self)
    }
    fn consumer_pos(&self) -> u64 {
        RingBufPages::consumer_pos(self)
    }
    fn producer_pos(&self) -> u64 {
        RingBufPages::producer_pos(self)
    }
    fn set_consumer_pos(&mut self, pos: u64) {
        RingBufPages::set_consumer_pos(self, pos);
    }
    fn header(&self, pos: u64) -> u32 {
        RingBufPages::header(self, pos)
    }
    fn committed(&self, pos: u64) -> Option<&[u8]> {
        RingBufPages::committed(self, pos)
    }
}

/// Hands every committed record between the consumer position and the
/// producer position as read on entry to `each`, advancing the consumer
/// position past each record (discarded ones included) as it goes; stops
/// early at a record still being written. Returns how many records `each`
/// saw and whether the consumer position moved. Allocates nothing: this
/// is the per-event path.
fn consume(ring: &mut impl Ring, each: &mut impl FnMut(&[u8])) -> (usize, bool) {
    let mut seen = 0;
    let start = ring.consumer_pos();
    let mut pos = start;
    // Records committed after this read wait for the next call, so that
    // a busy producer cannot keep one call going forever.
    let end = ring.producer_pos();
    while pos < end {
        let header = ring.header(pos);
        if header & RINGBUF_BUSY_BIT != 0 {
            break;
        }
        let span = record_span(header);
        if span > ring.data_size() as u64 {
            // Not a header the kernel writes; reading on would be guessing.
            break;
        }
        if header & RINGBUF_DISCARD_BIT == 0 {
            let Some(data) = ring.committed(pos) else {
                break;
            };
            each(data);
            seen += 1;
        }
        pos += span;
        ring.set_consumer_pos(pos);
    }
    (seen, pos != start)
}

/// How far a record with this header word reaches: header plus data,
/// rounded up to 8 bytes.
fn record_span(header: u32) -> u64 {
    let len = u64::from(header & !(RINGBUF_BUSY_BIT | RINGBUF_DISCARD_BIT));
    (len + RINGBUF_HEADER_BYTES as u64).next_multiple_of(8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{bpf_works, ctx_to_ringbuf_program};
    use crate::{Insn, Jmp, Program, ProgramType};
    use std::time::Instant;

    /// A ring in a plain buffer, written the way the kernel writes one.
    struct FakeRing {
        data: Vec<u8>,
        consumer: u64,
        producer: u64,
    }

    impl FakeRing {
        fn new(size: usize) -> FakeRing {
            FakeRing {
                data: vec![0; size],
                consumer: 0,
                producer: 0,
            }
        }

        fn push(&mut self, header_bits: u32, body: &[u8]) {
            let size = self.data.len();
            let start = self.producer as usize % size;
            let mut record = (body.len() as u32 | header_bits).to_ne_bytes().to_vec();
            record.extend([0; 4]);
            record.extend(body);
            for (i, b) in record.iter().enumerate() {
                self.data[(start + i) % size] = *b;
            }
            self.producer += record_span(body.len() as u32);
        }
    }

    impl Ring for FakeRing {
        fn data_size(&self) -> usize {
            self.data.len()
        }
        fn consumer_pos(&self) -> u64 {
            self.consumer
        }
        fn producer_pos(&self) -> u64 {
            self.producer
        }
        fn set_consumer_pos(&mut self, pos: u64) {
            self.consumer = pos;
        }
        fn header(&self, pos: u64) -> u32 {
            let at = pos as usize % self.data.len();
            u32::from_ne_bytes(self.data[at..at + 4].try_into().expect("4 bytes"))
        }
        fn committed(&self, pos: u64) -> Option<&[u8]> {
            // The fake never wraps a body, which is what the double
            // mapping gives the real ring.
            let at = pos as usize % self.data.len() + RINGBUF_HEADER_BYTES;
            let len = (self.header(pos) & !RINGBUF_DISCARD_BIT) as usize;
            self.data.get(at..at + len)
        }
    }

    fn collect(ring: &mut impl Ring) -> (usize, Vec<Vec<u8>>) {
        let mut records = Vec::new();
        let (seen, _) = consume(ring, &mut |r: &[u8]| records.push(r.to_vec()));
        (seen, records)
    }

    #[test]
    fn records_are_padded_to_eight_bytes_after_their_header() {
        assert_eq!(record_span(0), 8);
        assert_eq!(record_span(1), 16);
        assert_eq!(record_span(8), 16);
        assert_eq!(record_span(9), 24);
        assert_eq!(record_span(5 | RINGBUF_DISCARD_BIT), 16);
    }

    #[test]
    fn discarded_records_are_skipped_but_consumed() {
        let mut ring = FakeRing::new(4096);
        ring.push(0, b"one");
        ring.push(RINGBUF_DISCARD_BIT, b"thrown away");
        ring.push(0, b"three");
        let (seen, records) = collect(&mut ring);
        assert_eq!(seen, 2);
        assert_eq!(records, [b"one".to_vec(), b"three".to_vec()]);
        assert_eq!(ring.consumer, ring.producer);
    }

    #[test]
    fn the_reader_says_whether_it_moved_past_discarded_records() {
        let mut ring = FakeRing::new(4096);
        assert_eq!(consume(&mut ring, &mut |_: &[u8]| {}), (0, false));
        ring.push(RINGBUF_DISCARD_BIT, b"gone");
        assert_eq!(consume(&mut ring, &mut |_: &[u8]| {}), (0, true));
        assert_eq!(consume(&mut ring, &mut |_: &[u8]| {}), (0, false));
    }

    #[test]
    fn a_busy_record_stops_the_reader_until_it_is_committed() {
        let mut ring = FakeRing::new(4096);
        ring.push(0, b"first");
        let busy_at = ring.producer;
        ring.push(RINGBUF_BUSY_BIT, b"second");
        ring.push(0, b"third");
        let (seen, records) = collect(&mut ring);
        assert_eq!((seen, records), (1, vec![b"first".to_vec()]));
        assert_eq!(ring.consumer, busy_at);
        // The producer commits: the busy bit goes.
        let at = busy_at as usize;
        ring.data[at..at + 4].copy_from_slice(&6u32.to_ne_bytes());
        let (seen, records) = collect(&mut ring);
        assert_eq!(seen, 2);
        assert_eq!(records, [b"second".to_vec(), b"third".to_vec()]);
    }

    #[test]
    fn a_header_longer_than_the_ring_stops_the_reader() {
        let mut ring = FakeRing::new(64);
        ring.producer = 8;
        ring.data[..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(collect(&mut ring).0, 0);
        assert_eq!(ring.consumer, 0);
    }

    #[test]
    fn timeouts_round_up_to_whole_milliseconds() {
        assert_eq!(timeout_ms(Duration::ZERO), 0);
        assert_eq!(timeout_ms(Duration::from_micros(1)), 1);
        assert_eq!(timeout_ms(Duration::from_millis(250)), 250);
        assert_eq!(timeout_ms(Duration::from_secs(u64::MAX)), i32::MAX);
    }

    #[test]
    fn sizes_the_kernel_refuses_are_refused_first_with_a_suggestion() {
        let page = sys::page_size() as u32;
        for (size, suggested) in [
            (3000, page as u64),
            (3 * page, 4 * page as u64),
            (0, page as u64),
        ] {
            match RingBuf::create("kscope_t_size", size) {
                Err(Error::RingBufSize { suggested: s, .. }) => {
                    assert_eq!(s, suggested, "size {size}")
                }
                other => panic!("size {size}: {other:?}"),
            }
        }
        let err = RingBuf::create("kscope_t_size", 3000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("power of two") && err.contains("page size"),
            "{err}"
        );
    }

    fn run(program: &Program, ctx: &[u64]) {
        assert_eq!(program.test_run(ctx).expect("test run"), 0);
    }

    fn words(record: &[u8]) -> Vec<u64> {
        record
            .chunks_exact(8)
            .map(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")))
            .collect()
    }

    #[test]
    fn records_written_by_a_program_are_read_in_order() {
        if !bpf_works("BPF ring buffer") {
            return;
        }
        let mut ring = RingBuf::create("kscope_t_rb", 4096).expect("create");
        let program = Program::load(
            ProgramType::RawTracepoint,
            "kscope_t_rb",
            &ctx_to_ringbuf_program(ring.map(), 1),
        )
        .expect("load");
        for value in [0x1111_2222_3333_4444, 7, u64::MAX] {
            run(&program, &[value]);
        }
        let mut records = Vec::new();
        let seen = ring.drain(|r| records.push(r.to_vec())).expect("drain");
        assert_eq!(seen, 3);
        assert_eq!(
            records,
            [
                0x1111_2222_3333_4444u64.to_ne_bytes().to_vec(),
                7u64.to_ne_bytes().to_vec(),
                u64::MAX.to_ne_bytes().to_vec()
            ]
        );
        assert_eq!(ring.drain(|_| panic!("nothing is left")).expect("drain"), 0);
    }

    #[test]
    fn records_that_wrap_past_the_end_read_whole() {
        if !bpf_works("BPF ring buffer") {
            return;
        }
        // 40-byte records take 48 bytes, which does not divide 4096: over
        // ten rounds (14400 bytes) records straddle the end of the data
        // area several times.
        let mut ring = RingBuf::create("kscope_t_wrap", 4096).expect("create");
        let program = Program::load(
            ProgramType::RawTracepoint,
            "kscope_t_wrap",
            &ctx_to_ringbuf_program(ring.map(), 5),
        )
        .expect("load");
        for round in 0..10u64 {
            for i in 0..30u64 {
                run(
                    &program,
                    &[round, i, round * 1000 + i, !i, u64::MAX - round],
                );
            }
            let mut records = Vec::new();
            let seen = ring.drain(|r| records.push(words(r))).expect("drain");
            assert_eq!(seen, 30, "round {round}");
            for (i, record) in records.iter().enumerate() {
                let i = i as u64;
                assert_eq!(
                    record,
                    &[round, i, round * 1000 + i, !i, u64::MAX - round],
                    "round {round} record {i}"
                );
            }
        }
    }

    #[test]
    fn a_full_ring_refuses_records_until_it_is_read() {
        if !bpf_works("BPF ring buffer") {
            return;
        }
        let mut ring = RingBuf::create("kscope_t_full", 4096).expect("create");
        // r0 = bpf_ringbuf_output(...): 0, or -EAGAIN when full.
        let mut insns = ctx_to_ringbuf_program(ring.map(), 5);
        insns.truncate(insns.len() - 2);
        insns.push(Insn::exit());
        let program =
            Program::load(ProgramType::RawTracepoint, "kscope_t_full", &insns).expect("load");
        // 48 bytes each: 85 fit in 4096 - 1.
        let results: Vec<u32> = (0..90)
            .map(|i| program.test_run(&[i, 0, 0, 0, 0]).expect("run"))
            .collect();
        let eagain = (-libc::EAGAIN) as u32;
        assert!(results[..85].iter().all(|&r| r == 0), "{results:?}");
        assert!(results[85..].iter().all(|&r| r == eagain), "{results:?}");
        let mut firsts = Vec::new();
        assert_eq!(ring.drain(|r| firsts.push(words(r)[0])).expect("drain"), 85);
        assert_eq!(firsts, (0..85).collect::<Vec<_>>());
        assert_eq!(program.test_run(&[99, 0, 0, 0, 0]).expect("run"), 0);
    }

    #[test]
    fn discarded_reservations_are_skipped() {
        if !bpf_works("BPF ring buffer") {
            return;
        }
        let mut ring = RingBuf::create("kscope_t_disc", 4096).expect("create");
        // r0 = bpf_ringbuf_reserve(map, 8, 0); if r0: bpf_ringbuf_discard(r0, 0).
        let mut insns = Insn::ld_map_fd(1, ring.map().raw_fd()).to_vec();
        insns.push(Insn::mov64_imm(2, 8));
        insns.push(Insn::mov64_imm(3, 0));
        insns.push(Insn::call(131));
        insns.push(Insn::jmp_imm(Jmp::Eq, 0, 0, 3));
        insns.push(Insn::mov64_reg(1, 0));
        insns.push(Insn::mov64_imm(2, 0));
        insns.push(Insn::call(133));
        insns.push(Insn::mov64_imm(0, 0));
        insns.push(Insn::exit());
        let discard =
            Program::load(ProgramType::RawTracepoint, "kscope_t_disc", &insns).expect("load");
        let output = Program::load(
            ProgramType::RawTracepoint,
            "kscope_t_out",
            &ctx_to_ringbuf_program(ring.map(), 1),
        )
        .expect("load");
        run(&output, &[1]);
        run(&discard, &[]);
        run(&output, &[3]);
        let mut records = Vec::new();
        assert_eq!(ring.drain(|r| records.push(words(r))).expect("drain"), 2);
        assert_eq!(records, [[1], [3]]);
        // Only discarded records: nothing handed out, all consumed.
        run(&discard, &[]);
        assert_eq!(ring.drain(|_| panic!("discarded")).expect("drain"), 0);
        assert_eq!(ring.pages.consumer_pos(), ring.pages.producer_pos());
    }

    #[test]
    fn poll_waits_for_a_record_from_another_thread() {
        if !bpf_works("BPF ring buffer") {
            return;
        }
        let mut ring = RingBuf::create("kscope_t_poll", 4096).expect("create");
        let program = Program::load(
            ProgramType::RawTracepoint,
            "kscope_t_poll",
            &ctx_to_ringbuf_program(ring.map(), 1),
        )
        .expect("load");
        // Nothing there: an empty poll returns 0 after its timeout.
        assert_eq!(
            ring.poll(Duration::from_millis(20), |_| panic!("empty"))
                .expect("poll"),
            0
        );
        std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(50));
                run(&program, &[42]);
            });
            let mut records = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(10);
            while records.is_empty() && Instant::now() < deadline {
                ring.poll(Duration::from_secs(10), |r| records.push(words(r)))
                    .expect("poll");
            }
            assert_eq!(records, [[42]]);
        });
    }

    /// The variable that turns this test binary into the child of
    /// `an_interrupted_wait_returns_zero`.
    const EINTR_CHILD: &str = "KSCOPE_BPF_TEST_EINTR_CHILD";

    #[test]
    fn an_interrupted_wait_returns_zero() {
        if std::env::var_os(EINTR_CHILD).is_some() {
            // The child: wait long; SIGSTOP + SIGCONT from the parent
            // interrupt epoll_wait with EINTR even without a handler.
            let mut ring = RingBuf::create("kscope_t_eintr", 4096).expect("create");
            println!("waiting");
            let started = Instant::now();
            let seen = ring
                .poll(Duration::from_secs(60), |_| panic!("empty"))
                .expect("an interrupted poll is Ok");
            assert_eq!(seen, 0);
            assert!(started.elapsed() < Duration::from_secs(60));
            return;
        }
        if !bpf_works("BPF ring buffer") {
            return;
        }
        use std::io::BufRead;
        // A child process, so that stopping it stops no other test.
        let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "ringbuf::tests::an_interrupted_wait_returns_zero",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(EINTR_CHILD, "1")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn the child");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        assert!(
            lines.any(|l| l.is_ok_and(|l| l.contains("waiting"))),
            "the child never waited"
        );
        let pid = child.id().to_string();
        let signal = |name: &str| {
            std::process::Command::new("kill")
                .args([name, &pid])
                .status()
                .expect("kill")
        };
        // The child may not be inside epoll_wait yet: repeat until it
        // returns (each round stops it for 50 ms).
        let started = Instant::now();
        let status = loop {
            std::thread::sleep(Duration::from_millis(200));
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            signal("-STOP");
            std::thread::sleep(Duration::from_millis(50));
            signal("-CONT");
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the child's poll was not interrupted"
            );
        };
        assert!(status.success(), "the child failed: {status}");
    }
}
