//! Every syscall of this crate: bpf(2) with BPF_PROG_LOAD, and
//! perf_event_open(2). The attribute structs are the kernel's
//! (include/uapi/linux/bpf.h, include/uapi/linux/perf_event.h), cut at a
//! documented size; the kernel treats the missing tail as zeros.

// Each call passes a pointer to a local, fully initialised #[repr(C)]
// struct and its size, and wraps a returned fd in OwnedFd at once.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_PROG_LOAD: libc::c_long = 5;

/// `union bpf_attr` as BPF_MAP_CREATE uses it, up to map_flags.
#[repr(C)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

/// `union bpf_attr` as BPF_MAP_LOOKUP_ELEM uses it.
#[repr(C)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// Creates a map.
pub(crate) fn map_create(
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
) -> io::Result<OwnedFd> {
    let attr = MapCreateAttr {
        map_type,
        key_size,
        value_size,
        max_entries,
        map_flags: 0,
    };
    // SAFETY: `attr` is live and fully initialised for the stated size.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_CREATE,
            &attr as *const MapCreateAttr,
            std::mem::size_of::<MapCreateAttr>(),
        )
    };
    owned_fd(fd)
}

/// Copies the value stored under `key` into `value`.
pub(crate) fn map_lookup(map: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> io::Result<()> {
    let attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        _pad: 0,
        key: key.as_ptr() as u64,
        value: value.as_mut_ptr() as u64,
        flags: 0,
    };
    // SAFETY: key and value are live buffers of the map's key and value
    // sizes (the caller's contract), and attr is fully initialised.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_LOOKUP_ELEM,
            &attr as *const MapElemAttr,
            std::mem::size_of::<MapElemAttr>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
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
    let attr = ProgLoadAttr {
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
    // SAFETY: `attr` points to live memory of the stated size; the
    // instruction, license and log buffers outlive the call, and the kernel
    // writes at most `log_size` bytes into `log`.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoadAttr,
            std::mem::size_of::<ProgLoadAttr>(),
        )
    };
    owned_fd(fd)
}

/// `struct perf_event_attr` at PERF_ATTR_SIZE_VER0 (64 bytes).
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
    pub config1: u64,
}

pub(crate) const PERF_FLAG_DISABLED: u64 = 1 << 0;
pub(crate) const PERF_FLAG_EXCLUDE_KERNEL: u64 = 1 << 5;
pub(crate) const PERF_FLAG_EXCLUDE_HV: u64 = 1 << 6;

/// Opens a perf event for `pid` (0: this process) on `cpu` (-1: any).
pub(crate) fn perf_event_open(attr: &mut PerfEventAttr, pid: i32, cpu: i32) -> io::Result<OwnedFd> {
    attr.size = std::mem::size_of::<PerfEventAttr>() as u32;
    // PERF_FLAG_FD_CLOEXEC from include/uapi/linux/perf_event.h.
    let flags: libc::c_ulong = 1 << 3;
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

fn owned_fd(ret: libc::c_long) -> io::Result<OwnedFd> {
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let raw = i32::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this fd to us and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_structs_have_the_kernels_sizes() {
        assert_eq!(std::mem::size_of::<PerfEventAttr>(), 64);
        // Up to and including expected_attach_type in union bpf_attr.
        assert_eq!(std::mem::size_of::<ProgLoadAttr>(), 72);
        assert_eq!(std::mem::size_of::<MapCreateAttr>(), 20);
        assert_eq!(std::mem::size_of::<MapElemAttr>(), 32);
    }
}
