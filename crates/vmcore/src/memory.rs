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

    /// `len` bytes at `vaddr` (at most [`MAX_READ`]).
    pub fn read_vec(&self, vaddr: u64, len: usize) -> Result<Vec<u8>, Error> {
        if len > MAX_READ {
            return Err(Error::TooLarge {
                offset: vaddr,
                what: "a read of kernel memory",
                size: len as u64,
                limit: MAX_READ as u64,
            });
        }
        let mut buf = vec![0; len];
        self.read_virt(vaddr, &mut buf)?;
        Ok(buf)
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
