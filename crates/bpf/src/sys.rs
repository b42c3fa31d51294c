//! Every syscall of this crate: bpf(2) with BPF_PROG_LOAD, and
//! perf_event_open(2). The attribute structs are the kernel's
//! (include/uapi/linux/bpf.h, include/uapi/linux/perf_event.h), cut at a
//! documented size; the kernel treats the missing tail as zeros.

// Each call passes a pointer to a local, fully initialised #[repr(C)]
// struct and its size, and wraps a returned fd in OwnedFd at once.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

const BPF_PROG_LOAD: libc::c_long = 5;

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
    }
}
