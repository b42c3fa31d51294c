//! Every syscall of this crate: bpf(2) (maps, program loads and test
//! runs, the kernel's object lists), perf_event_open(2) and its ioctls,
//! and the mmap(2) and epoll(7) calls behind a ring buffer. The attribute
//! structs are the kernel's (include/uapi/linux/bpf.h,
//! include/uapi/linux/perf_event.h), cut at a documented size; the kernel
//! treats the missing tail as zeros.

// Each bpf(2) call passes a pointer to a local, fully initialised
// #[repr(C)] struct without padding and its size, and wraps a returned fd
// in OwnedFd at once. The ring buffer's shared pages are read only through
// atomics and through slices of records the kernel has committed.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicUsize, Ordering};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_PROG_GET_NEXT_ID: libc::c_long = 11;
const BPF_MAP_GET_NEXT_ID: libc::c_long = 12;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_MAP_GET_FD_BY_ID: libc::c_long = 14;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_MAP_FREEZE: libc::c_long = 22;
/// BPF_F_RDONLY_PROG: programs may only read the map.
pub(crate) const BPF_F_RDONLY_PROG: u32 = 1 << 7;

/// BPF_F_MMAPABLE: an array map whose values user space can mmap(2).
pub(crate) const BPF_F_MMAPABLE: u32 = 1 << 10;

/// `BPF_F_RDONLY`: a map fd that can only read, all that listing needs.
const BPF_F_RDONLY: u32 = 1 << 3;

/// Calls bpf(2) with `attr` as its `union bpf_attr`.
///
/// # Safety
///
/// `T` must be a `#[repr(C)]` prefix of `union bpf_attr` for `cmd`, with
/// no padding, and every pointer in it must be valid for what the kernel
/// does with it under `cmd` (read or write, of the sizes given beside it).
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> libc::c_long {
    #[cfg(test)]
    if let Some(ret) = fake::answer(fake::Call::Bpf(cmd)) {
        return ret;
    }
    // SAFETY: the caller vouches for `attr`'s layout and pointers; the
    // kernel reads and writes at most size_of::<T>() bytes of it.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) }
}

fn rc(ret: libc::c_long) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `union bpf_attr` as BPF_MAP_CREATE uses it, up to map_ifindex.
#[repr(C)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
    map_ifindex: u32,
}

/// `union bpf_attr` as BPF_MAP_LOOKUP_ELEM and BPF_MAP_UPDATE_ELEM use it.
#[repr(C)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// Creates a map; `name` is NUL-padded, as bpftool shows it.
pub(crate) fn map_create(
    map_type: u32,
    name: &[u8; 16],
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
) -> io::Result<OwnedFd> {
    let mut attr = MapCreateAttr {
        map_type,
        key_size,
        value_size,
        max_entries,
        map_flags,
        inner_map_fd: 0,
        numa_node: 0,
        map_name: *name,
        map_ifindex: 0,
    };
    // SAFETY: MapCreateAttr is a padding-free prefix of the MAP_CREATE
    // attributes and holds no pointers.
    owned_fd(unsafe { bpf(BPF_MAP_CREATE, &mut attr) })
}

/// `union bpf_attr` as BPF_MAP_FREEZE uses it.
#[repr(C)]
struct MapFdAttr {
    map_fd: u32,
}

/// Freezes a map: user space can no longer change it, which is what lets
/// the verifier treat its contents as constants.
pub(crate) fn map_freeze(map: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = MapFdAttr {
        map_fd: map.as_raw_fd() as u32,
    };
    // SAFETY: MapFdAttr is the one-field prefix BPF_MAP_FREEZE reads.
    rc(unsafe { bpf(BPF_MAP_FREEZE, &mut attr) })
}

/// Copies the value stored under `key` into `value`.
///
/// `key` and `value` must be exactly as long as the map's key and its
/// value as the syscall copies it (the callers in `map.rs` check): the
/// kernel reads and writes those sizes whatever the slices are.
pub(crate) fn map_lookup(map: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        _pad: 0,
        key: key.as_ptr() as u64,
        value: value.as_mut_ptr() as u64,
        flags: 0,
    };
    // SAFETY: key and value are live buffers of the map's key and value
    // sizes (the caller's contract above), and the value is writable.
    rc(unsafe { bpf(BPF_MAP_LOOKUP_ELEM, &mut attr) })
}

/// Stores `value` under `key` (flags BPF_ANY: create or replace); the same
/// size contract as [`map_lookup`].
pub(crate) fn map_update(map: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        _pad: 0,
        key: key.as_ptr() as u64,
        value: value.as_ptr() as u64,
        flags: 0,
    };
    // SAFETY: key and value are live buffers of the map's key and value
    // sizes (the caller's contract); the kernel only reads them.
    rc(unsafe { bpf(BPF_MAP_UPDATE_ELEM, &mut attr) })
}

/// Deletes the element under `key`; the same size contract for `key` as
/// [`map_lookup`].
pub(crate) fn map_delete(map: BorrowedFd<'_>, key: &[u8]) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        _pad: 0,
        key: key.as_ptr() as u64,
        value: 0,
        flags: 0,
    };
    // SAFETY: key is a live buffer of the map's key size (the caller's
    // contract); the kernel only reads it.
    rc(unsafe { bpf(BPF_MAP_DELETE_ELEM, &mut attr) })
}

/// Writes into `next` the key that follows `prev` (the first key when
/// `prev` is None); ENOENT after the last. `prev` and `next` must be the
/// map's key size, as for [`map_lookup`].
pub(crate) fn map_next_key(
    map: BorrowedFd<'_>,
    prev: Option<&[u8]>,
    next: &mut [u8],
) -> io::Result<()> {
    // The `value` field is `next_key` for this command.
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        _pad: 0,
        key: prev.map_or(0, |k| k.as_ptr() as u64),
        value: next.as_mut_ptr() as u64,
        flags: 0,
    };
    // SAFETY: prev (when given) and next are live buffers of the map's
    // key size (the caller's contract); the kernel writes only `next`.
    rc(unsafe { bpf(BPF_MAP_GET_NEXT_KEY, &mut attr) })
}

/// The values of an array map created with [`BPF_F_MMAPABLE`], mapped
/// shared and writable: the same bytes BPF programs read and change.
/// Every access is bounds-checked by the caller (`map.rs`), and words
/// are read and changed atomically, as the programs do.
#[derive(Debug)]
pub(crate) struct SharedValues {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping belongs to the process, not to a thread; words are
// accessed atomically and byte copies race only as BPF programs' own
// accesses do.
unsafe impl Send for SharedValues {}

impl SharedValues {
    /// Maps `len` bytes of the mmapable array map `fd` (rounded up to
    /// whole pages).
    pub(crate) fn map(fd: BorrowedFd<'_>, len: usize) -> io::Result<SharedValues> {
        let len = len.max(1).next_multiple_of(page_size());
        let ptr = mmap(fd, len, libc::PROT_READ | libc::PROT_WRITE, 0)?;
        Ok(SharedValues { ptr, len })
    }

    /// The mapping's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn word(&self, offset: usize) -> &AtomicI64 {
        assert!(
            offset.is_multiple_of(8) && offset + 8 <= self.len,
            "an unchecked word offset {offset}"
        );
        // SAFETY: the offset is 8-aligned and inside the mapping (checked
        // above), which lives as long as `self`; the kernel's programs
        // access these words with atomic instructions or plain loads and
        // stores of whole words.
        unsafe { AtomicI64::from_ptr(self.ptr.as_ptr().add(offset).cast::<i64>()) }
    }

    /// The word at `offset` (8-aligned, inside the mapping).
    pub(crate) fn load(&self, offset: usize) -> i64 {
        self.word(offset).load(Ordering::SeqCst)
    }

    /// Adds `delta` to the word at `offset`; the value before.
    pub(crate) fn fetch_add(&self, offset: usize, delta: i64) -> i64 {
        self.word(offset).fetch_add(delta, Ordering::SeqCst)
    }

    /// Copies `out.len()` bytes from `offset` into `out`.
    pub(crate) fn read(&self, offset: usize, out: &mut [u8]) {
        assert!(offset + out.len() <= self.len, "an unchecked range");
        // SAFETY: the range is inside the mapping (checked above); a
        // program writing there at the same time leaves the bytes torn,
        // never the memory unsafe (plain bytes, no invariants).
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ptr.as_ptr().add(offset),
                out.as_mut_ptr(),
                out.len(),
            )
        };
    }

    /// Copies `bytes` to `offset`.
    pub(crate) fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.len, "an unchecked range");
        // SAFETY: the range is inside the writable mapping (checked
        // above), and `bytes` cannot overlap it (a shared borrow of it
        // does not exist outside this type).
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.ptr.as_ptr().add(offset),
                bytes.len(),
            )
        };
    }
}

impl Drop for SharedValues {
    fn drop(&mut self) {
        munmap(self.ptr, self.len);
    }
}

/// PERF_EVENT_IOC_ENABLE, PERF_EVENT_IOC_DISABLE, PERF_EVENT_IOC_SET_BPF.
pub(crate) const PERF_IOC_ENABLE: libc::c_ulong = 0x2400;
pub(crate) const PERF_IOC_DISABLE: libc::c_ulong = 0x2401;
pub(crate) const PERF_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;

/// ioctl(2) on a perf event fd with an integer argument.
pub(crate) fn perf_ioctl(
    fd: BorrowedFd<'_>,
    request: libc::c_ulong,
    arg: libc::c_int,
) -> io::Result<()> {
    #[cfg(test)]
    if let Some(ret) = fake::answer(fake::Call::PerfIoctl(request)) {
        return rc(ret);
    }
    // SAFETY: the perf ioctls used here take an int by value, no pointer.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request, arg) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `union bpf_attr` as used by BPF_PROG_LOAD, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// Loads a program; on failure, `log` holds what the verifier wrote.
pub(crate) fn prog_load(
    prog_type: u32,
    insns: &[u8],
    name: &[u8; 16],
    log: &mut [u8],
) -> io::Result<OwnedFd> {
    let license = c"GPL";
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt: u32::try_from(insns.len() / 8)
            .map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: u32::from(!log.is_empty()),
        log_size: u32::try_from(log.len()).unwrap_or(u32::MAX),
        // All three log fields must be zero together, or set together.
        log_buf: if log.is_empty() {
            0
        } else {
            log.as_mut_ptr() as u64
        },
        prog_name: *name,
        ..ProgLoadAttr::default()
    };
    // SAFETY: the instruction, license and log buffers outlive the call,
    // insn_cnt says how many 8-byte instructions `insns` holds, and the
    // kernel writes at most `log_size` bytes into `log`.
    owned_fd(unsafe { bpf(BPF_PROG_LOAD, &mut attr) })
}

/// `union bpf_attr` as BPF_PROG_TEST_RUN uses it, up to batch_size (the
/// last field of 6.x kernels), with the tail padding spelled out so that
/// it is zero, as the kernel demands of unknown bytes.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// Runs a program once on this CPU with `ctx` as its context (no packet
/// data, no context out), and returns its return value.
pub(crate) fn prog_test_run(prog: BorrowedFd<'_>, ctx: &[u64]) -> io::Result<u32> {
    let mut attr = TestRunAttr {
        prog_fd: prog.as_raw_fd() as u32,
        ctx_size_in: u32::try_from(std::mem::size_of_val(ctx))
            .map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
        ctx_in: if ctx.is_empty() {
            0
        } else {
            ctx.as_ptr() as u64
        },
        ..TestRunAttr::default()
    };
    // SAFETY: ctx_in points to ctx_size_in live bytes that the kernel only
    // reads; no other pointer is set. The kernel writes `retval` back into
    // `attr`, which is ours for the whole call.
    rc(unsafe { bpf(BPF_PROG_TEST_RUN, &mut attr) })?;
    Ok(attr.retval)
}

/// The two kinds of BPF object the kernel lists by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObjectKind {
    Program,
    Map,
}

/// `union bpf_attr` as the BPF_*_GET_NEXT_ID and BPF_*_GET_FD_BY_ID
/// commands use it.
#[repr(C)]
struct IdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

/// The id that follows `after` (0: the first), or None past the last.
pub(crate) fn next_id(kind: ObjectKind, after: u32) -> io::Result<Option<u32>> {
    let cmd = match kind {
        ObjectKind::Program => BPF_PROG_GET_NEXT_ID,
        ObjectKind::Map => BPF_MAP_GET_NEXT_ID,
    };
    let mut attr = IdAttr {
        id: after,
        next_id: 0,
        open_flags: 0,
    };
    // SAFETY: IdAttr is a padding-free prefix of these attributes and holds
    // no pointers; the kernel writes next_id into it.
    match rc(unsafe { bpf(cmd, &mut attr) }) {
        Ok(()) => Ok(Some(attr.next_id)),
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(err) => Err(err),
    }
}

/// An fd for the object with this id, or None when it has gone since the
/// id was listed.
pub(crate) fn fd_by_id(kind: ObjectKind, id: u32) -> io::Result<Option<OwnedFd>> {
    let (cmd, open_flags) = match kind {
        ObjectKind::Program => (BPF_PROG_GET_FD_BY_ID, 0),
        ObjectKind::Map => (BPF_MAP_GET_FD_BY_ID, BPF_F_RDONLY),
    };
    let mut attr = IdAttr {
        id,
        next_id: 0,
        open_flags,
    };
    // SAFETY: as in next_id; the kernel only reads the attributes.
    match owned_fd(unsafe { bpf(cmd, &mut attr) }) {
        Ok(fd) => Ok(Some(fd)),
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(err) => Err(err),
    }
}

/// `union bpf_attr` as BPF_OBJ_GET_INFO_BY_FD uses it.
#[repr(C)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// `struct bpf_prog_info` up to and including `name` (offset 64).
#[repr(C)]
#[derive(Default)]
struct ProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
}

/// `struct bpf_map_info` up to and including `name` (offset 24).
#[repr(C)]
#[derive(Default)]
struct MapInfo {
    map_type: u32,
    id: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    name: [u8; 16],
}

/// The NUL-padded name of the program or map behind `fd`.
pub(crate) fn object_name(kind: ObjectKind, fd: BorrowedFd<'_>) -> io::Result<[u8; 16]> {
    // Every length and pointer field of the info structs is zero, so the
    // kernel fills in the fixed fields and copies no arrays anywhere.
    fn get_info<T>(fd: BorrowedFd<'_>, info: &mut T) -> io::Result<()> {
        let mut attr = InfoAttr {
            bpf_fd: fd.as_raw_fd() as u32,
            info_len: std::mem::size_of::<T>() as u32,
            info: info as *mut T as u64,
        };
        // SAFETY: `info` is a live, writable struct of info_len bytes, all
        // of whose array lengths are zero (so no other pointer is used).
        rc(unsafe { bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) })
    }
    match kind {
        ObjectKind::Program => {
            let mut info = ProgInfo::default();
            get_info(fd, &mut info)?;
            Ok(info.name)
        }
        ObjectKind::Map => {
            let mut info = MapInfo::default();
            get_info(fd, &mut info)?;
            Ok(info.name)
        }
    }
}

/// `struct perf_event_attr` at PERF_ATTR_SIZE_VER1 (72 bytes, up to config2).
#[repr(C)]
#[derive(Default)]
pub(crate) struct PerfEventAttr {
    pub type_: u32,
    pub size: u32,
    pub config: u64,
    pub sample_period: u64,
    pub sample_type: u64,
    pub read_format: u64,
    /// Bit 0 `disabled`, bit 5 `exclude_kernel`, ... (a C bitfield).
    pub flags: u64,
    pub wakeup_events: u32,
    pub bp_type: u32,
    /// For a kprobe PMU event: the address of the function's name.
    pub config1: u64,
    /// For a kprobe PMU event: the offset into the function.
    pub config2: u64,
}

pub(crate) const PERF_FLAG_DISABLED: u64 = 1 << 0;
pub(crate) const PERF_FLAG_EXCLUDE_KERNEL: u64 = 1 << 5;
pub(crate) const PERF_FLAG_EXCLUDE_HV: u64 = 1 << 6;

/// Opens a perf event for `pid` (0: this process, -1: every process) on
/// `cpu` (-1: any).
pub(crate) fn perf_event_open(attr: &mut PerfEventAttr, pid: i32, cpu: i32) -> io::Result<OwnedFd> {
    attr.size = std::mem::size_of::<PerfEventAttr>() as u32;
    // PERF_FLAG_FD_CLOEXEC from include/uapi/linux/perf_event.h.
    let flags: libc::c_ulong = 1 << 3;
    #[cfg(test)]
    if let Some(ret) = fake::answer(fake::Call::PerfEventOpen) {
        return owned_fd(ret);
    }
    // SAFETY: `attr` is a live, initialised struct whose `size` field says
    // how much of it the kernel may read; no group fd (-1).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr as *const PerfEventAttr,
            pid,
            cpu,
            -1,
            flags,
        )
    };
    owned_fd(fd)
}

/// This machine's page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the C library; no pointers.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    // POSIX requires the page size; 4096 keeps the arithmetic sane if a
    // C library ever said otherwise.
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}

/// An epoll instance that reports `fd` readable.
pub(crate) fn epoll_for_reading(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: no pointers; the returned fd is wrapped at once.
    let epoll = owned_fd(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) }.into())?;
    let mut event = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: 0,
    };
    // SAFETY: both fds are open for the call; `event` is a live struct the
    // kernel only reads.
    let ret = unsafe {
        libc::epoll_ctl(
            epoll.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            fd.as_raw_fd(),
            &mut event,
        )
    };
    rc(ret.into())?;
    Ok(epoll)
}

/// Waits up to `timeout_ms` for the epoll instance to report something;
/// true when it did. EINTR comes back as an error of kind Interrupted.
pub(crate) fn epoll_wait(epoll: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<bool> {
    let mut event = libc::epoll_event { events: 0, u64: 0 };
    // SAFETY: room for exactly one event, as maxevents says.
    let ret = unsafe { libc::epoll_wait(epoll.as_raw_fd(), &mut event, 1, timeout_ms) };
    rc(ret.into())?;
    Ok(ret > 0)
}

/// The kernel's `BPF_RINGBUF_BUSY_BIT`: the record is still being
/// written.
pub(crate) const RINGBUF_BUSY_BIT: u32 = 1 << 31;
/// The kernel's `BPF_RINGBUF_DISCARD_BIT`: the producer threw the record
/// away.
pub(crate) const RINGBUF_DISCARD_BIT: u32 = 1 << 30;
/// The kernel's `BPF_RINGBUF_HDR_SZ`: u32 length and flags, u32 pg_off.
pub(crate) const RINGBUF_HEADER_BYTES: usize = 8;

/// The user-space view of a BPF ring buffer map, laid out as the kernel
/// maps it (kernel/bpf/ringbuf.c): at file offset 0 the consumer page,
/// writable, with `consumer_pos` at its start; at offset one page the
/// producer page, read-only, with `producer_pos` at its start, followed by
/// the data area mapped twice in a row, so that a record that wraps past
/// the end reads as one contiguous slice.
#[derive(Debug)]
pub(crate) struct RingBufPages {
    consumer: NonNull<u8>,
    producer: NonNull<u8>,
    page_size: usize,
    data_size: usize,
}

// SAFETY: the mappings belong to the process, not to a thread; all reads
// of the shared words are atomic, and the only write (consumer_pos) needs
// `&mut self`.
unsafe impl Send for RingBufPages {}

impl RingBufPages {
    /// Maps the pages of the ring buffer map `fd`, whose data area is
    /// `data_size` bytes (a power of two, a multiple of the page size).
    pub(crate) fn map(fd: BorrowedFd<'_>, data_size: usize) -> io::Result<RingBufPages> {
        let page_size = page_size();
        if !data_size.is_power_of_two() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let producer_len = data_size
            .checked_mul(2)
            .and_then(|d| d.checked_add(page_size))
            .ok_or_else(|| io::Error::from_raw_os_error(libc::E2BIG))?;
        let consumer = mmap(fd, page_size, libc::PROT_READ | libc::PROT_WRITE, 0)?;
        let producer = match mmap(fd, producer_len, libc::PROT_READ, page_size) {
            Ok(p) => p,
            Err(err) => {
                munmap(consumer, page_size);
                return Err(err);
            }
        };
        Ok(RingBufPages {
            consumer,
            producer,
            page_size,
            data_size,
        })
    }

    /// The data area's size in bytes.
    pub(crate) fn data_size(&self) -> usize {
        self.data_size
    }

    // The positions are the kernel's `unsigned long`, which is usize on
    // every Linux ABI; they are handed out as u64.

    fn consumer_word(&self) -> &AtomicUsize {
        // SAFETY: the consumer page is mapped for the life of `self` and
        // page-aligned, and the kernel accesses this word only atomically
        // (smp_load_acquire).
        unsafe { AtomicUsize::from_ptr(self.consumer.as_ptr().cast::<usize>()) }
    }

    /// How far user space has read.
    pub(crate) fn consumer_pos(&self) -> u64 {
        self.consumer_word().load(Ordering::Acquire) as u64
    }

    /// Hands the space before `pos` back to the producer (a Release store,
    /// pairing with the kernel's smp_load_acquire in reserve).
    pub(crate) fn set_consumer_pos(&mut self, pos: u64) {
        self.consumer_word().store(pos as usize, Ordering::Release);
    }

    /// How far the kernel has reserved (an Acquire load, pairing with the
    /// kernel's smp_store_release).
    pub(crate) fn producer_pos(&self) -> u64 {
        // SAFETY: the producer page is mapped for the life of `self` and
        // page-aligned, and the kernel writes this word only with
        // smp_store_release.
        let word = unsafe { AtomicUsize::from_ptr(self.producer.as_ptr().cast::<usize>()) };
        word.load(Ordering::Acquire) as u64
    }

    /// Byte offset, in the producer mapping, of the record at `pos`.
    fn record_offset(&self, pos: u64) -> usize {
        // The mask keeps the offset below data_size, which is a usize.
        self.page_size + (pos & (self.data_size as u64 - 1)) as usize
    }

    /// The first word of the header of the record at `pos` (length and
    /// the busy/discard bits), loaded with Acquire, pairing with the
    /// kernel's xchg on commit.
    pub(crate) fn header(&self, pos: u64) -> u32 {
        let offset = self.record_offset(pos);
        // SAFETY: offset < page_size + data_size, inside the mapping, and
        // 8-aligned (positions advance in multiples of 8). The kernel
        // writes the word on reserve (before publishing producer_pos) and
        // with xchg on commit; an atomic load reads it soundly whatever the
        // kernel is doing, and the callers read it only below producer_pos.
        unsafe { AtomicU32::from_ptr(self.producer.as_ptr().add(offset).cast::<u32>()) }
            .load(Ordering::Acquire)
    }

    /// The body of the record at `pos`, when the kernel has committed it
    /// and it lies between consumer_pos and producer_pos; None otherwise.
    pub(crate) fn committed(&self, pos: u64) -> Option<&[u8]> {
        let consumer = self.consumer_pos();
        let producer = self.producer_pos();
        if pos < consumer || pos >= producer {
            return None;
        }
        let header = self.header(pos);
        if header & RINGBUF_BUSY_BIT != 0 {
            return None;
        }
        let len = (header & !(RINGBUF_BUSY_BIT | RINGBUF_DISCARD_BIT)) as usize;
        if len + RINGBUF_HEADER_BYTES > self.data_size
            || pos + (len + RINGBUF_HEADER_BYTES) as u64 > producer
        {
            return None;
        }
        let start = self.record_offset(pos) + RINGBUF_HEADER_BYTES;
        // SAFETY: start + len <= page_size + 2 * data_size, inside the
        // mapping (the data area is mapped twice). The record is committed
        // (its busy bit was clear after an Acquire load) and lies before
        // producer_pos and after consumer_pos, so the kernel does not
        // write it again until consumer_pos moves past it, which takes
        // `&mut self` and so cannot happen while the slice lives.
        Some(unsafe { std::slice::from_raw_parts(self.producer.as_ptr().add(start), len) })
    }
}

impl Drop for RingBufPages {
    fn drop(&mut self) {
        munmap(self.consumer, self.page_size);
        munmap(self.producer, self.page_size + 2 * self.data_size);
    }
}

fn mmap(
    fd: BorrowedFd<'_>,
    len: usize,
    prot: libc::c_int,
    offset: usize,
) -> io::Result<NonNull<u8>> {
    let offset =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a new shared mapping at an address the kernel picks; it
    // replaces nothing of ours.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            offset,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))
}

fn munmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: `ptr` and `len` describe a mapping made by `mmap` above that
    // nothing references any more. munmap of such a range cannot fail.
    unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
}

fn owned_fd(ret: libc::c_long) -> io::Result<OwnedFd> {
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let raw = i32::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this fd to us and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The fake kernel of this crate's unit tests, in aya's way: while a test
/// runs [`with_kernel`](fake::with_kernel), the bpf(2),
/// perf_event_open(2) and perf ioctl(2) calls of its thread get the fake's
/// answer instead of reaching the kernel, so that what the crate decides
/// from an answer (a retry with a verifier log, ENOTSUPP, EEXIST) is
/// tested without root. The callers above are unchanged: the fake answers
/// at the syscall itself, errno included.
#[cfg(test)]
pub(crate) mod fake {
    use std::cell::RefCell;

    /// A call as the fake kernel sees it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Call {
        /// bpf(2) with this command (BPF_PROG_LOAD is 5).
        Bpf(libc::c_long),
        /// perf_event_open(2).
        PerfEventOpen,
        /// ioctl(2) on a perf event fd with this request.
        PerfIoctl(libc::c_ulong),
    }

    /// What the fake kernel answers: the syscall's return value (an fd
    /// it returns becomes the caller's, who closes it), or an errno.
    type Kernel = Box<dyn FnMut(Call) -> Result<libc::c_long, i32>>;

    thread_local! {
        static KERNEL: RefCell<Option<Kernel>> = const { RefCell::new(None) };
    }

    /// Takes the fake kernel off the thread, even when the test panics.
    struct Uninstall;

    impl Drop for Uninstall {
        fn drop(&mut self) {
            KERNEL.with(|kernel| kernel.borrow_mut().take());
        }
    }

    /// Runs `body` with `kernel` answering this thread's syscalls.
    pub(crate) fn with_kernel<R>(
        kernel: impl FnMut(Call) -> Result<libc::c_long, i32> + 'static,
        body: impl FnOnce() -> R,
    ) -> R {
        KERNEL.with(|slot| *slot.borrow_mut() = Some(Box::new(kernel)));
        let _uninstall = Uninstall;
        body()
    }

    /// The fake kernel's answer to `call` when one is installed: the
    /// return value, or -1 with errno set as the kernel would set it.
    pub(super) fn answer(call: Call) -> Option<libc::c_long> {
        let answer = KERNEL.with(|slot| slot.borrow_mut().as_mut().map(|kernel| kernel(call)))?;
        Some(match answer {
            Ok(ret) => ret,
            Err(errno) => {
                // SAFETY: __errno_location returns this thread's errno,
                // valid for writes for the thread's lifetime.
                unsafe { *libc::__errno_location() = errno };
                -1
            }
        })
    }

    /// A fresh fd (of /dev/null) for a fake kernel to return as a new
    /// BPF object or perf event.
    pub(crate) fn new_fd() -> libc::c_long {
        use std::os::fd::IntoRawFd;
        let file = std::fs::File::open("/dev/null").expect("/dev/null opens");
        libc::c_long::from(file.into_raw_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_structs_have_the_kernels_sizes() {
        // PERF_ATTR_SIZE_VER1: up to and including config2.
        assert_eq!(std::mem::size_of::<PerfEventAttr>(), 72);
        // Up to and including expected_attach_type in union bpf_attr.
        assert_eq!(std::mem::size_of::<ProgLoadAttr>(), 72);
        // Up to and including map_ifindex (map_name at offset 28).
        assert_eq!(std::mem::size_of::<MapCreateAttr>(), 48);
        assert_eq!(std::mem::offset_of!(MapCreateAttr, map_name), 28);
        assert_eq!(std::mem::size_of::<MapElemAttr>(), 32);
        // The test-run attributes end with batch_size at offset 72.
        assert_eq!(std::mem::size_of::<TestRunAttr>(), 80);
        assert_eq!(std::mem::offset_of!(TestRunAttr, ctx_in), 48);
        assert_eq!(std::mem::offset_of!(TestRunAttr, batch_size), 72);
        assert_eq!(std::mem::size_of::<IdAttr>(), 12);
        assert_eq!(std::mem::size_of::<InfoAttr>(), 16);
        assert_eq!(std::mem::offset_of!(ProgInfo, name), 64);
        assert_eq!(std::mem::size_of::<ProgInfo>(), 80);
        assert_eq!(std::mem::offset_of!(MapInfo, name), 24);
        assert_eq!(std::mem::size_of::<MapInfo>(), 40);
    }
}
