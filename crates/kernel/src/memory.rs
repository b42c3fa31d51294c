//! Reading kernel memory by virtual address, behind one small trait
//! ([`KernelRead`]) so that the readers of kernel structures (kallsyms,
//! the printk log, `sys`) run the same on a dump ([`KernelMemory`]) and
//! on memory built in a test or by a fuzzer ([`MemoryImage`]).

use std::collections::BTreeMap;

use kscope_vmcore::KernelMemory;

/// Kernel virtual memory that can be read.
pub trait KernelRead {
    /// Fills `buf` with the memory at `vaddr`.
    ///
    /// # Errors
    ///
    /// The reader's error when any byte of the range cannot be read.
    fn read_virt(&self, vaddr: u64, buf: &mut [u8]) -> Result<(), kscope_vmcore::Error>;

    /// `len` bytes at `vaddr`, at most [`kscope_vmcore::MAX_READ`] (lengths often come
    /// from the dump itself), read as [`kscope_vmcore::read_vec_with`]
    /// reads them: a length that the memory does not back fails before it
    /// is allocated.
    ///
    /// # Errors
    ///
    /// [`kscope_vmcore::Error::TooLarge`] past the limit, else as
    /// [`KernelRead::read_virt`].
    fn read_vec(&self, vaddr: u64, len: usize) -> Result<Vec<u8>, kscope_vmcore::Error> {
        kscope_vmcore::read_vec_with(vaddr, len, |addr, buf| self.read_virt(addr, buf))
    }

    /// The little-endian u16 at `vaddr`.
    ///
    /// # Errors
    ///
    /// As [`KernelRead::read_virt`].
    fn read_u16(&self, vaddr: u64) -> Result<u16, kscope_vmcore::Error> {
        let mut b = [0; 2];
        self.read_virt(vaddr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// The little-endian u32 at `vaddr`.
    ///
    /// # Errors
    ///
    /// As [`KernelRead::read_virt`].
    fn read_u32(&self, vaddr: u64) -> Result<u32, kscope_vmcore::Error> {
        let mut b = [0; 4];
        self.read_virt(vaddr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// The little-endian u64 at `vaddr` (a pointer, a `long`).
    ///
    /// # Errors
    ///
    /// As [`KernelRead::read_virt`].
    fn read_u64(&self, vaddr: u64) -> Result<u64, kscope_vmcore::Error> {
        let mut b = [0; 8];
        self.read_virt(vaddr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// The NUL-terminated string at `vaddr` without its NUL, or its first
    /// `max_len` bytes when no NUL comes first. It is read in aligned
    /// pieces of 256 bytes, so a string that ends just before memory the
    /// reader lacks reads.
    ///
    /// # Errors
    ///
    /// As [`KernelRead::read_virt`], for a piece before the NUL.
    fn read_cstr(&self, vaddr: u64, max_len: usize) -> Result<Vec<u8>, kscope_vmcore::Error> {
        kscope_vmcore::read_cstr_with(vaddr, max_len, |addr, buf| self.read_virt(addr, buf))
    }
}

impl KernelRead for KernelMemory<'_> {
    fn read_virt(&self, vaddr: u64, buf: &mut [u8]) -> Result<(), kscope_vmcore::Error> {
        KernelMemory::read_virt(self, vaddr, buf)
    }
}

impl<T: KernelRead + ?Sized> KernelRead for &T {
    fn read_virt(&self, vaddr: u64, buf: &mut [u8]) -> Result<(), kscope_vmcore::Error> {
        (**self).read_virt(vaddr, buf)
    }
}

/// Kernel memory held as a few byte ranges at virtual addresses: for
/// tests and fuzzers that build the kernel structures they read. A read
/// must lie inside one range.
///
/// ```
/// use kscope_kernel::{KernelRead, MemoryImage};
/// let mut image = MemoryImage::default();
/// image.insert(0xffff_ffff_8100_0000, 7u64.to_le_bytes().to_vec());
/// assert_eq!(image.read_u64(0xffff_ffff_8100_0000).ok(), Some(7));
/// assert!(image.read_u64(0xffff_ffff_8100_0004).is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryImage {
    ranges: BTreeMap<u64, Vec<u8>>,
}

impl MemoryImage {
    /// Puts `bytes` at `vaddr`, replacing a range that starts there.
    pub fn insert(&mut self, vaddr: u64, bytes: Vec<u8>) {
        self.ranges.insert(vaddr, bytes);
    }

    /// The bytes of every range, by start address.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.ranges.iter().map(|(&a, b)| (a, b.as_slice()))
    }
}

impl KernelRead for MemoryImage {
    fn read_virt(&self, vaddr: u64, buf: &mut [u8]) -> Result<(), kscope_vmcore::Error> {
        let missing = || kscope_vmcore::Error::NotMapped {
            vaddr,
            level: "memory image",
            entry: 0,
            entry_paddr: 0,
        };
        let (&start, bytes) = self
            .ranges
            .range(..=vaddr)
            .next_back()
            .ok_or_else(missing)?;
        let from = usize::try_from(vaddr - start).map_err(|_| missing())?;
        let src = from
            .checked_add(buf.len())
            .and_then(|end| bytes.get(from..end))
            .ok_or_else(missing)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use kscope_vmcore::MAX_READ;

    use super::*;

    #[test]
    fn an_image_reads_inside_its_ranges_only() {
        let mut image = MemoryImage::default();
        let mut text = b"hello\0world".to_vec();
        text.resize(256, 0);
        image.insert(0x1000, text);
        image.insert(0x2000, vec![b'x'; 256]);
        image.insert(0x3000, vec![7; 300_000]);
        assert_eq!(image.read_cstr(0x1000, 64).ok(), Some(b"hello".to_vec()));
        assert_eq!(image.read_cstr(0x1000, 3).ok(), Some(b"hel".to_vec()));
        assert_eq!(image.read_cstr(0x2000, 300).ok(), None);
        assert_eq!(
            image.read_cstr(0x2000, 256).map(|s| s.len()).ok(),
            Some(256)
        );
        assert_eq!(
            image.read_u16(0x1000).ok(),
            Some(u16::from_le_bytes(*b"he"))
        );
        assert!(image.read_u32(0x0fff).is_err());
        assert!(image.read_u64(0x10fc).is_err());
        assert!(image.read_u64(u64::MAX - 2).is_err());
        // Long reads come in pieces, and stop at the first missing one.
        assert_eq!(
            image.read_vec(0x3000, 300_000).map(|v| v.len()).ok(),
            Some(300_000)
        );
        assert!(image.read_vec(0x3000, 300_001).is_err());
        assert!(matches!(
            image.read_vec(0x3000, MAX_READ + 1),
            Err(kscope_vmcore::Error::TooLarge { .. })
        ));
        assert_eq!(image.ranges().count(), 3);
        let by_ref: &dyn KernelRead = &image;
        assert_eq!((&by_ref).read_u32(0x3000).ok(), Some(0x0707_0707));
    }
}
