//! Kernel stack addresses to symbols, from `/proc/kallsyms` (parsed by
//! `kscope_traceevent::Kallsyms`, the table `%pS` already uses): what
//! `print_backtrace()` and `print_stack()` print for a kernel address.
//!
//! A symbol's size is the distance to the next listed address, as
//! SystemTap's own symbol tables give it (runtime/sym.c,
//! `_stp_kallsyms_lookup`). An address below the kernel image (`_text`),
//! where only per-CPU offsets and absolute symbols are listed, or one past
//! the last symbol, has no symbol: SystemTap prints it bare.

use kscope_traceevent::Kallsyms;
use kscope_traceevent::printfmt::SymbolResolver;

use super::line::{KERNEL_MODULE, Location, Symbols, frame_line};
use super::sys;

/// Why the kernel's symbols cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum KernelSymbolsError {
    /// `/proc/kallsyms` could not be read.
    #[error("cannot read /proc/kallsyms for kernel stack symbols")]
    Read(#[source] std::io::Error),
    /// Every address is hidden (listed as zero).
    #[error(
        "/proc/kallsyms hides its addresses from this user (kptr_restrict): \
         kernel stacks need root, or kernel.kptr_restrict=0, to be symbolized"
    )]
    Hidden,
}

/// The running kernel's symbols, sorted by address.
#[derive(Debug, Clone)]
pub struct KernelSymbols {
    kallsyms: Kallsyms,
    /// The first address of the kernel image (`_text`, else `_stext`):
    /// nothing of the image's own lies below it.
    image_start: Option<u64>,
}

impl KernelSymbols {
    /// Reads `/proc/kallsyms`.
    ///
    /// # Errors
    ///
    /// [`KernelSymbolsError::Read`] when it cannot be read,
    /// [`KernelSymbolsError::Hidden`] when it lists no real address.
    pub fn read() -> Result<KernelSymbols, KernelSymbolsError> {
        let text = sys::kallsyms().map_err(KernelSymbolsError::Read)?;
        let symbols = KernelSymbols::parse(&text);
        if symbols.kallsyms.is_empty() {
            return Err(KernelSymbolsError::Hidden);
        }
        Ok(symbols)
    }

    /// Parses kallsyms text (`ADDRESS TYPE NAME [MODULE]` lines); lines of
    /// another shape and hidden (zero) addresses are skipped.
    pub fn parse(text: &str) -> KernelSymbols {
        let kallsyms = Kallsyms::parse(text);
        let image_start = kallsyms
            .address_of("_text")
            .or_else(|| kallsyms.address_of("_stext"));
        KernelSymbols {
            kallsyms,
            image_start,
        }
    }

    /// `print_backtrace()`'s line for the kernel address `address`:
    /// ` 0xffffffff81abcdef : __schedule+0x2e5/0x960 [kernel]`, the
    /// module's name in the brackets for a module's symbol, and the bare
    /// ` 0xADDR` when no symbol covers it.
    pub fn kernel_frame(&self, address: u64) -> String {
        frame_line(&self.locate(address), address)
    }
}

impl Symbols for KernelSymbols {
    fn locate(&self, address: u64) -> Location<'_> {
        if address == 0 || self.image_start.is_some_and(|start| address < start) {
            return Location::Unknown;
        }
        match self.kallsyms.symbol(address) {
            Some(symbol) => Location::Symbol {
                name: symbol.name,
                offset: symbol.offset,
                size: symbol.size,
                module: symbol.module.unwrap_or(KERNEL_MODULE),
            },
            None => Location::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stacks::line::{backtrace_string, print_backtrace, print_stack};

    const KALLSYMS: &str = "\
0000000000000000 A fixed_percpu_data
000000000001f0c0 d cpu_hw_events
ffffffff81000000 T _stext
ffffffff81000000 T _text
ffffffff81000100 T __schedule
ffffffff81000a60 T schedule
ffffffff81000a60 t schedule
ffffffff81000b00 t io_schedule
ffffffffc0a01000 t ext4_fill_super\t[ext4]
ffffffffc0a01400 t ext4_put_super\t[ext4]
not a line
";

    #[test]
    fn kernel_addresses_name_symbol_offset_size_and_kernel() {
        let k = KernelSymbols::parse(KALLSYMS);
        assert_eq!(
            k.kernel_frame(0xffffffff810003e5),
            " 0xffffffff810003e5 : __schedule+0x2e5/0x960 [kernel]"
        );
        // A name listed twice at one address: the size runs to the next
        // address.
        assert_eq!(
            k.kernel_frame(0xffffffff81000a60),
            " 0xffffffff81000a60 : schedule+0x0/0xa0 [kernel]"
        );
    }

    #[test]
    fn module_symbols_carry_their_modules_name() {
        let k = KernelSymbols::parse(KALLSYMS);
        assert_eq!(
            k.kernel_frame(0xffffffffc0a01010),
            " 0xffffffffc0a01010 : ext4_fill_super+0x10/0x400 [ext4]"
        );
    }

    #[test]
    fn addresses_without_a_symbol_are_printed_bare() {
        let k = KernelSymbols::parse(KALLSYMS);
        // Below the image: per-CPU offsets must not claim it.
        assert_eq!(k.kernel_frame(0xffff888000123456), " 0xffff888000123456");
        // Past the last symbol, whose size is unknown.
        assert_eq!(k.kernel_frame(0xffffffffc0a01404), " 0xffffffffc0a01404");
        assert_eq!(k.kernel_frame(0), " 0x0");
    }

    #[test]
    fn a_kernel_stack_prints_and_round_trips_through_its_string() {
        let k = KernelSymbols::parse(KALLSYMS);
        let stack = [0xffffffff81000a64, 0xffffffffc0a01010, 0, 0];
        assert_eq!(
            print_backtrace(&k, &stack),
            " 0xffffffff81000a64 : schedule+0x4/0xa0 [kernel]\n \
             0xffffffffc0a01010 : ext4_fill_super+0x10/0x400 [ext4]\n"
        );
        let s = backtrace_string(&stack, 511);
        assert_eq!(s, "0xffffffff81000a64 0xffffffffc0a01010 ");
        assert_eq!(
            print_stack(&k, &s),
            " 0xffffffff81000a64 : schedule+0x4/0xa0 [kernel]\n \
             0xffffffffc0a01010 : ext4_fill_super+0x10/0x400 [ext4]\n"
        );
    }

    #[test]
    fn a_listing_with_hidden_addresses_has_no_symbols() {
        let k = KernelSymbols::parse("0000000000000000 T _text\n0000000000000000 T schedule\n");
        assert_eq!(k.kernel_frame(0xffffffff81000000), " 0xffffffff81000000");
    }
}
