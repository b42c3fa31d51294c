//! SystemTap's text for one stack address, as its runtime's
//! `_stp_snprint_addr` (runtime/sym.c) writes it, and the backtrace
//! string and `print_stack` lines built from those (the tapsets
//! `context-unwind.stp`, `context-symbols.stp` and their `u` twins).
//! SystemTap's `%p` and `%#lx` both print `0x` and lowercase hex with no
//! padding (`0x0` for zero), which is Rust's `{:#x}`.

use std::fmt::Write;

/// How many frames SystemTap's backtraces hold (`MAXBACKTRACE`, runtime
/// `unwind/unwind.h`): `backtrace()` and `print_backtrace()` stop there.
pub const MAX_BACKTRACE: usize = 20;

/// The module SystemTap names for an address of the kernel image itself.
pub const KERNEL_MODULE: &str = "kernel";

/// What the symbol tables say about one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location<'a> {
    /// Inside a symbol: its name, the address's offset in it, the
    /// symbol's size, and the module holding it (`kernel`, a kernel
    /// module's name, or a user file's path).
    Symbol {
        /// The symbol's name, as the table spells it.
        name: &'a str,
        /// The address minus the symbol's start.
        offset: u64,
        /// The symbol's size (0 when the table does not know it).
        size: u64,
        /// `kernel`, a kernel module, or the mapped file's path.
        module: &'a str,
    },
    /// Inside a module (a mapped file) where no symbol covers it: the
    /// offset from the module's first mapped byte, and the module's span.
    Module {
        /// The mapped file's path.
        module: &'a str,
        /// The address minus the module's lowest mapped address.
        offset: u64,
        /// The module's mapped span, lowest to highest address.
        size: u64,
    },
    /// Nothing known: SystemTap prints the bare address.
    Unknown,
}

impl Location<'_> {
    /// The frame's name in folded stacks: the symbol without its offset,
    /// `[file name]` for a module without a symbol, the hex address when
    /// nothing is known.
    pub fn function_name(&self, address: u64) -> String {
        match self {
            Location::Symbol { name, .. } => (*name).to_string(),
            Location::Module { module, .. } => {
                let base = module.rsplit('/').next().unwrap_or(module);
                format!("[{base}]")
            }
            Location::Unknown => format!("{address:#x}"),
        }
    }
}

/// A source of [`Location`]s: the kernel's symbols, or one process's.
pub trait Symbols {
    /// What is known about `address`; [`Location::Unknown`] for 0, as
    /// SystemTap gives no symbol to a null address.
    fn locate(&self, address: u64) -> Location<'_>;
}

/// The symbol name as SystemTap prints it: a leading `.` (the function
/// entry symbols of some ABIs) dropped.
fn printed_name(name: &str) -> &str {
    name.strip_prefix('.').unwrap_or(name)
}

/// `print_backtrace()`'s and `print_ubacktrace()`'s line for `address`
/// (SystemTap's `_STP_SYM_FULL`), without the newline that ends it:
/// ` 0xADDR : NAME+0xOFF/0xSIZE [MODULE]`, ` 0xADDR [MODULE+0xOFF/0xSIZE]`
/// when only the module is known, ` 0xADDR` when nothing is.
pub fn frame_line(location: &Location<'_>, address: u64) -> String {
    match location {
        Location::Symbol { .. } => format!(" {address:#x} : {}", symdata(location, address)),
        _ => format!(" {}", symdata(location, address)),
    }
}

/// `symdata()`'s and `usymdata()`'s text for `address` (SystemTap's
/// `_STP_SYM_DATA`): `NAME+0xOFF/0xSIZE [MODULE]`,
/// `0xADDR [MODULE+0xOFF/0xSIZE]`, or `0xADDR`.
pub fn symdata(location: &Location<'_>, address: u64) -> String {
    match location {
        Location::Symbol {
            name,
            offset,
            size,
            module,
        } => format!("{}+{offset:#x}/{size:#x} [{module}]", printed_name(name)),
        Location::Module {
            module,
            offset,
            size,
        } => format!("{address:#x} [{module}+{offset:#x}/{size:#x}]"),
        Location::Unknown => format!("{address:#x}"),
    }
}

/// The frames of a stack as the kernel's stack map stores them: up to
/// the first zero (the unused tail), at most [`MAX_BACKTRACE`].
pub fn frames(stack: &[u64]) -> impl Iterator<Item = u64> + '_ {
    stack
        .iter()
        .copied()
        .take_while(|&address| address != 0)
        .take(MAX_BACKTRACE)
}

/// `print_backtrace()` / `print_ubacktrace()` of `stack`: one
/// [`frame_line`] and a newline per frame.
pub fn print_backtrace(symbols: &impl Symbols, stack: &[u64]) -> String {
    let mut out = String::new();
    for address in frames(stack) {
        out.push_str(&frame_line(&symbols.locate(address), address));
        out.push('\n');
    }
    out
}

/// `backtrace()` / `ubacktrace()`: each frame's address in hex followed
/// by one space (SystemTap's `_STP_SYM_NONE`: a trailing space too), cut
/// to `max_len` bytes as SystemTap cuts a string value at
/// `MAXSTRINGLEN - 1` (511 by default), even inside an address.
pub fn backtrace_string(stack: &[u64], max_len: usize) -> String {
    let mut out = String::new();
    for address in frames(stack) {
        // Writing to a String cannot fail.
        let _ = write!(out, "{address:#x} ");
    }
    out.truncate(max_len);
    out
}

/// `print_stack(s)` / `print_ustack(s)` of a `backtrace()` string: for
/// each space-separated token, ` TOKEN : ` and [`symdata`] of the token
/// read as hex (a `0x` prefix allowed; a token that is not hex reads as
/// 0, as `strtol` gives), and a newline.
pub fn print_stack(symbols: &impl Symbols, backtrace: &str) -> String {
    stack_lines(symbols, backtrace).collect()
}

/// `sprint_stack(s)` / `sprint_ustack(s)`: [`print_stack`]'s lines while
/// their total length stays within `max_len` (SystemTap's tapset stops
/// before the line that would pass `MAXSTRINGLEN`, 512 by default):
/// whole lines only.
pub fn sprint_stack(symbols: &impl Symbols, backtrace: &str, max_len: usize) -> String {
    let mut out = String::new();
    for line in stack_lines(symbols, backtrace) {
        if out.len() + line.len() > max_len {
            break;
        }
        out.push_str(&line);
    }
    out
}

/// The lines of [`print_stack`], one per token of `backtrace`.
fn stack_lines<'a>(
    symbols: &'a impl Symbols,
    backtrace: &'a str,
) -> impl Iterator<Item = String> + 'a {
    backtrace
        .split(' ')
        .filter(|token| !token.is_empty())
        .map(|token| {
            let address = parse_hex(token);
            format!(
                " {token} : {}\n",
                symdata(&symbols.locate(address), address)
            )
        })
}

/// `strtol(token, 16)` as SystemTap's tapset computes it (the kernel's
/// `simple_strtol`): an optional `-`, an optional `0x`, then the longest
/// run of hex digits, accumulated modulo 2^64 without an overflow check
/// (so kernel addresses read back whole); 0 when there is no digit.
fn parse_hex(token: &str) -> u64 {
    let (negative, rest) = match token.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, token),
    };
    let digits = rest
        .strip_prefix("0x")
        .or_else(|| rest.strip_prefix("0X"))
        .unwrap_or(rest);
    let value = digits
        .chars()
        .map_while(|c| c.to_digit(16))
        .fold(0u64, |value, digit| {
            value.wrapping_mul(16).wrapping_add(u64::from(digit))
        });
    if negative {
        value.wrapping_neg()
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of two symbols in `kernel` and one module span.
    struct Table;

    impl Symbols for Table {
        fn locate(&self, address: u64) -> Location<'_> {
            match address {
                0x1000..0x1100 => Location::Symbol {
                    name: "schedule",
                    offset: address - 0x1000,
                    size: 0x100,
                    module: KERNEL_MODULE,
                },
                0x2000..0x2010 => Location::Symbol {
                    name: ".entry",
                    offset: address - 0x2000,
                    size: 0x10,
                    module: "/usr/lib/libc.so.6",
                },
                0x3000..0x4000 => Location::Module {
                    module: "/usr/lib/libx.so",
                    offset: address - 0x3000,
                    size: 0x1000,
                },
                _ => Location::Unknown,
            }
        }
    }

    #[test]
    fn frame_lines_have_systemtaps_three_shapes() {
        let t = Table;
        assert_eq!(
            frame_line(&t.locate(0x10e5), 0x10e5),
            " 0x10e5 : schedule+0xe5/0x100 [kernel]"
        );
        assert_eq!(
            frame_line(&t.locate(0x2000), 0x2000),
            " 0x2000 : entry+0x0/0x10 [/usr/lib/libc.so.6]"
        );
        assert_eq!(
            frame_line(&t.locate(0x3abc), 0x3abc),
            " 0x3abc [/usr/lib/libx.so+0xabc/0x1000]"
        );
        assert_eq!(frame_line(&t.locate(0x9999), 0x9999), " 0x9999");
    }

    #[test]
    fn symdata_is_the_frame_line_without_the_leading_address() {
        let t = Table;
        assert_eq!(
            symdata(&t.locate(0x10e5), 0x10e5),
            "schedule+0xe5/0x100 [kernel]"
        );
        assert_eq!(
            symdata(&t.locate(0x3abc), 0x3abc),
            "0x3abc [/usr/lib/libx.so+0xabc/0x1000]"
        );
        assert_eq!(symdata(&t.locate(0x9999), 0x9999), "0x9999");
    }

    #[test]
    fn backtraces_stop_at_the_first_zero_and_at_twenty_frames() {
        let t = Table;
        assert_eq!(
            print_backtrace(&t, &[0x1001, 0x9999, 0, 0x1002]),
            " 0x1001 : schedule+0x1/0x100 [kernel]\n 0x9999\n"
        );
        let long: Vec<u64> = (1..=30).collect();
        assert_eq!(print_backtrace(&t, &long).lines().count(), MAX_BACKTRACE);
        assert_eq!(
            backtrace_string(&long, 511).split_whitespace().count(),
            MAX_BACKTRACE
        );
    }

    #[test]
    fn backtrace_strings_end_with_a_space_and_are_cut_at_the_limit() {
        assert_eq!(
            backtrace_string(&[0xffffffff81000010, 0x1002, 0], 511),
            "0xffffffff81000010 0x1002 "
        );
        assert_eq!(backtrace_string(&[0x1001, 0x1002], 9), "0x1001 0x");
        assert_eq!(backtrace_string(&[], 511), "");
    }

    #[test]
    fn print_stack_reads_back_a_backtrace_string() {
        let t = Table;
        let s = backtrace_string(&[0x10e5, 0x3abc, 0x9999], 511);
        assert_eq!(
            print_stack(&t, &s),
            " 0x10e5 : schedule+0xe5/0x100 [kernel]\n \
             0x3abc : 0x3abc [/usr/lib/libx.so+0xabc/0x1000]\n \
             0x9999 : 0x9999\n"
        );
        // Tokens print as written; what is not hex reads as 0.
        assert_eq!(
            print_stack(&t, "  10e5 junk"),
            " 10e5 : schedule+0xe5/0x100 [kernel]\n junk : 0x0\n"
        );
    }

    #[test]
    fn sprint_stack_keeps_whole_lines_within_the_limit() {
        let t = Table;
        let s = "0x10e5 0x9999";
        let first = " 0x10e5 : schedule+0xe5/0x100 [kernel]\n";
        assert_eq!(sprint_stack(&t, s, 512), print_stack(&t, s));
        assert_eq!(sprint_stack(&t, s, first.len()), first);
        assert_eq!(sprint_stack(&t, s, first.len() + 15), first);
        assert_eq!(sprint_stack(&t, s, first.len() - 1), "");
    }

    #[test]
    fn hex_tokens_read_as_strtol_reads_them() {
        assert_eq!(parse_hex("0x1f"), 0x1f);
        assert_eq!(parse_hex("1fzz"), 0x1f);
        assert_eq!(parse_hex("0x"), 0);
        assert_eq!(parse_hex("0xffffffff81abcdef"), 0xffff_ffff_81ab_cdef);
        assert_eq!(parse_hex("1ffffffffffffffff"), u64::MAX);
        assert_eq!(parse_hex("-0x1"), u64::MAX);
    }

    #[test]
    fn folded_names_drop_offsets() {
        let t = Table;
        assert_eq!(t.locate(0x10e5).function_name(0x10e5), "schedule");
        assert_eq!(t.locate(0x3abc).function_name(0x3abc), "[libx.so]");
        assert_eq!(t.locate(0x9999).function_name(0x9999), "0x9999");
    }
}
