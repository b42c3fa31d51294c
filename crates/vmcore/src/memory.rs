//! [`KernelMemory`]: the dumped kernel's memory by virtual address. Reads
//! are split at page boundaries, each page translated on its own (two
//! neighbouring virtual pages are rarely neighbours in physical memory
//! outside the image and direct map).

use crate::x86_64::{Translation, X86_64Layout};
use crate::{Error, Vmcore};

/// The most bytes [`KernelMemory::read_vec`] reads at once: lengths often
/// come from the dump itself.
pub const MAX_READ: usize = 64 << 20;

/// The kernel's virtual memory in a dump (x86-64).
///
/// ```no_run
/// # let dump = kscope_vmcore::Vmcore::open("vmcore")?;
/// let kernel = kscope_vmcore::KernelMemory::new(&dump)?;
/// let init_task = dump.vmcoreinfo().and_then(|i| i.symbol("init_task")).unwrap_or(0);
/// let first_word = kernel.read_u64(init_task)?;
/// # Ok::<(), kscope_vmcore::Error>(())
/// ```
#[derive(Debug)]
pub struct KernelMemory<'a> {
    dump: &'a Vmcore,
    layout: X86_64Layout,
}

impl<'a> KernelMemory<'a> {
    /// The kernel memory of `dump`, its layout found by
    /// [`X86_64Layout::from_dump`].
    pub fn new(dump: &'a Vmcore) -> Result<KernelMemory<'a>, Error> {
        Ok(KernelMemory {
            dump,
            layout: X86_64Layout::from_dump(dump)?,
        })
    }

    /// The kernel memory of `dump` with a layout the caller knows.
    pub fn with_layout(dump: &'a Vmcore, layout: X86_64Layout) -> KernelMemory<'a> {
        KernelMemory { dump, layout }
    }

    /// The layout in use.
    pub fn layout(&self) -> &X86_64Layout {
        &self.layout
    }

    /// Sets the start of the direct map, read by a caller that knows the
    /// address of the kernel variable `page_offset_base`.
    pub fn set_page_offset_base(&mut self, base: u64) {
        self.layout.page_offset_base = Some(base);
    }

    /// The dump.
    pub fn dump(&self) -> &'a Vmcore {
        self.dump
    }

    fn read_phys_u64(&self) -> impl Fn(u64) -> Result<u64, Error> + 'a {
        let dump = self.dump;
        move |paddr| dump.read_phys_u64(paddr)
    }

    /// The physical address of `vaddr` (kernel image and direct map by
    /// arithmetic, the rest by the page tables).
    pub fn translate(&self, vaddr: u64) -> Result<Translation, Error> {
        self.layout.translate(&self.read_phys_u64(), vaddr)
    }

    /// The physical address of `vaddr` by the page tables alone.
    pub fn walk(&self, vaddr: u64) -> Result<Translation, Error> {
        self.layout.walk(&self.read_phys_u64(), vaddr)
    }

    /// The direct-map address of `paddr`, when the direct map is known.
    pub fn phys_to_virt(&self, paddr: u64) -> Option<u64> {
        let base = self.layout.page_offset_base?;
        (paddr < self.layout.direct_map_size).then(|| base.wrapping_add(paddr))
    }

    /// Fills `buf` with kernel memory at `vaddr`.
    pub fn read_virt(&self, vaddr: u64, buf: &mut [u8]) -> Result<(), Error> {
        let mut done = 0usize;
        while done < buf.len() {
            // A read may not wrap past the top of the address space.
            let addr = vaddr.checked_add(done as u64).ok_or(Error::NonCanonical {
                vaddr: 0,
                levels: self.layout.levels,
            })?;
            let n = (4096 - (addr % 4096) as usize).min(buf.len() - done);
            let paddr = self.translate(addr)?.paddr;
            self.dump.read_phys(paddr, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    /// `len` bytes at `vaddr` (at most [`MAX_READ`]), as
    /// [`read_vec_with`] reads them.
    pub fn read_vec(&self, vaddr: u64, len: usize) -> Result<Vec<u8>, Error> {
        read_vec_with(vaddr, len, |addr, buf| self.read_virt(addr, buf))
    }

    fn read_array<const N: usize>(&self, vaddr: u64) -> Result<[u8; N], Error> {
        let mut b = [0; N];
        self.read_virt(vaddr, &mut b)?;
        Ok(b)
    }

    /// The byte at `vaddr`.
    pub fn read_u8(&self, vaddr: u64) -> Result<u8, Error> {
        self.read_array::<1>(vaddr).map(|b| b[0])
    }

    /// The little-endian u16 at `vaddr`.
    pub fn read_u16(&self, vaddr: u64) -> Result<u16, Error> {
        self.read_array(vaddr).map(u16::from_le_bytes)
    }

    /// The little-endian u32 at `vaddr`.
    pub fn read_u32(&self, vaddr: u64) -> Result<u32, Error> {
        self.read_array(vaddr).map(u32::from_le_bytes)
    }

    /// The little-endian u64 at `vaddr` (a pointer, a `long`).
    pub fn read_u64(&self, vaddr: u64) -> Result<u64, Error> {
        self.read_array(vaddr).map(u64::from_le_bytes)
    }

    /// The NUL-terminated string at `vaddr`, without its NUL; at most
    /// `max_len` bytes when no NUL comes first. It is read in aligned
    /// 256-byte pieces, so a string that ends before an unmapped page
    /// reads.
    pub fn read_cstr(&self, vaddr: u64, max_len: usize) -> Result<Vec<u8>, Error> {
        read_cstr_with(vaddr, max_len, |addr, buf| self.read_virt(addr, buf))
    }
}

/// `len` bytes at `vaddr` read through `read` (any reader of kernel
/// virtual memory), at most [`MAX_READ`]: lengths often come from the dump
/// itself. The buffer grows by pieces of 64 KiB as the reads succeed, so a
/// length that the memory does not back fails before it is allocated.
///
/// # Errors
///
/// [`Error::TooLarge`] past the limit, else `read`'s error for the first
/// piece that cannot be read.
pub fn read_vec_with(
    vaddr: u64,
    len: usize,
    mut read: impl FnMut(u64, &mut [u8]) -> Result<(), Error>,
) -> Result<Vec<u8>, Error> {
    const PIECE: usize = 1 << 16;
    if len > MAX_READ {
        return Err(Error::TooLarge {
            offset: vaddr,
            what: "a read of kernel memory",
            size: len as u64,
            limit: MAX_READ as u64,
        });
    }
    let mut buf = Vec::with_capacity(len.min(PIECE));
    while buf.len() < len {
        let done = buf.len();
        let n = (len - done).min(PIECE);
        buf.resize(done + n, 0);
        read(vaddr.wrapping_add(done as u64), &mut buf[done..])?;
    }
    Ok(buf)
}

/// The NUL-terminated string at `vaddr` read through `read` (any reader
/// of kernel virtual memory), without its NUL; at most `max_len` bytes
/// when no NUL comes first. It is read in aligned 256-byte pieces, so a
/// string that ends before memory the reader lacks reads.
///
/// # Errors
///
/// `read`'s error, for a piece before the NUL.
pub fn read_cstr_with(
    vaddr: u64,
    max_len: usize,
    mut read: impl FnMut(u64, &mut [u8]) -> Result<(), Error>,
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 256];
    while out.len() < max_len {
        let addr = vaddr.wrapping_add(out.len() as u64);
        let n = (chunk.len() - (addr % chunk.len() as u64) as usize).min(max_len - out.len());
        read(addr, &mut chunk[..n])?;
        if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Ok(out);
        }
        out.extend_from_slice(&chunk[..n]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_vec_reads_in_pieces_and_stops_at_the_first_failure() {
        let mut asked = Vec::new();
        let bytes = read_vec_with(0x1000, 150_000, |addr, buf| {
            asked.push((addr, buf.len()));
            buf.fill(7);
            Ok(())
        })
        .unwrap();
        assert_eq!((bytes.len(), bytes[149_999]), (150_000, 7));
        assert_eq!(
            asked,
            [(0x1000, 65_536), (0x11000, 65_536), (0x21000, 18_928)]
        );
        let mut calls = 0;
        let err = read_vec_with(0, 1 << 20, |addr, _| {
            calls += 1;
            if addr == 0 {
                Ok(())
            } else {
                Err(Error::PageMissing {
                    paddr: addr,
                    why: crate::Absence::NotWritten,
                })
            }
        })
        .unwrap_err();
        assert!(
            matches!(err, Error::PageMissing { paddr: 0x10000, .. }),
            "{err}"
        );
        assert_eq!(calls, 2);
        let err = read_vec_with(5, MAX_READ + 1, |_, _| Ok(())).unwrap_err();
        assert!(matches!(err, Error::TooLarge { offset: 5, .. }), "{err}");
    }
}
