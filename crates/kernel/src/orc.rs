//! The kernel's ORC unwind tables (x86-64, CONFIG_UNWINDER_ORC): for every
//! text address, where the caller's stack pointer, frame pointer and
//! return address are. objtool writes two parallel arrays into the image,
//! `.orc_unwind_ip` (between `__start_orc_unwind_ip` and
//! `__stop_orc_unwind_ip`: one `s32` per entry, the distance from the
//! entry itself to the first instruction it covers) and `.orc_unwind`
//! (between `__start_orc_unwind` and `__stop_orc_unwind`: one 6-byte
//! `struct orc_entry` per entry); a module carries its own pair in
//! `module.arch`. An entry covers its address up to the next entry's.
//!
//! `struct orc_entry` is `s16 sp_offset; s16 bp_offset;` and a 16-bit
//! word of bitfields whose layout changed twice
//! (arch/x86/include/asm/orc_types.h), see [`OrcVersion`]. This module
//! decodes every layout into one [`OrcEntry`]; which layout a kernel
//! uses is told by the members of its BTF's `struct orc_entry`
//! ([`OrcVersion::from_btf`]), or else from the entries themselves
//! ([`OrcVersion::detect`]).
//!
//! The kernel also keeps `orc_lookup`, an index of 256-byte blocks of
//! text into the table, that only narrows its binary search; with the
//! whole table read, a binary search over it finds the same entry, so
//! the index is not read.
//!
//! Parsing never trusts the bytes: counts are checked against each other
//! and capped ([`MAX_ORC_ENTRIES`]), and a table that is not sorted (the
//! kernel sorts it at build or load time) is sorted here.

use kscope_btf::Btf;

use crate::{Error, KernelRead, SymbolTable};

/// The size of one `struct orc_entry`.
pub const ORC_ENTRY_SIZE: usize = 6;

/// The most entries a table may have: a distribution kernel has about
/// 400,000 (6.1: 384,849).
pub const MAX_ORC_ENTRIES: usize = 1 << 22;

/// The layout of `struct orc_entry`'s bitfield word (bit 0 first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrcVersion {
    /// Linux 4.14 to 6.2: `sp_reg:4 bp_reg:4 type:2 end:1`; types CALL 0,
    /// REGS 1, REGS_PARTIAL 2; an undefined `sp_reg` ends the stack when
    /// `end` is set and is an error otherwise.
    V1,
    /// Linux 6.3: `sp_reg:4 bp_reg:4 type:2 signal:1 end:1`.
    V2,
    /// Linux 6.4 and later: `sp_reg:4 bp_reg:4 type:3 signal:1`; types
    /// UNDEFINED 0, END_OF_STACK 1, CALL 2, REGS 3, REGS_PARTIAL 4.
    V3,
}

impl OrcVersion {
    /// The layout the kernel's BTF gives `struct orc_entry`: `end`
    /// without `signal` is V1, both V2, `signal` alone V3. `None` when
    /// BTF lacks the struct or has another shape.
    pub fn from_btf(btf: &Btf<'_>) -> Option<OrcVersion> {
        let members = btf.members(btf.find("struct orc_entry")?)?;
        let has = |name: &str| members.iter().any(|m| m.name == name);
        match (has("end"), has("signal")) {
            (true, false) => Some(OrcVersion::V1),
            (true, true) => Some(OrcVersion::V2),
            (false, true) => Some(OrcVersion::V3),
            (false, false) => None,
        }
    }

    /// Tells the layout from a table's entries: in V3 most entries are
    /// CALL, 2 in the three type bits, where V1 and V2 have CALL 0; V2
    /// sets bit 11 (`end`) on its end-of-stack entries, which V1 never
    /// sets. Every kernel has both kinds of entry by the thousand.
    pub fn detect(entries: &[u8]) -> OrcVersion {
        let (mut defined, mut v3_calls, mut bit11) = (0u64, 0u64, false);
        for raw in entries.chunks_exact(ORC_ENTRY_SIZE) {
            let flags = u16::from_le_bytes([raw[4], raw[5]]);
            bit11 |= flags & (1 << 11) != 0;
            if flags & 0xf != 0 {
                defined += 1;
                if (flags >> 8) & 7 == 2 {
                    v3_calls += 1;
                }
            }
        }
        if defined > 0 && v3_calls * 2 > defined {
            OrcVersion::V3
        } else if bit11 {
            OrcVersion::V2
        } else {
            OrcVersion::V1
        }
    }
}

/// The register an ORC value is based on (`ORC_REG_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrcReg {
    /// 0: no value (for `bp_reg`: unchanged).
    Undefined,
    /// 1: the caller's stack pointer (the CFA).
    PrevSp,
    /// 2: `rdx`.
    Dx,
    /// 3: `rdi`.
    Di,
    /// 4: `rbp`.
    Bp,
    /// 5: `rsp`.
    Sp,
    /// 6: `r10`.
    R10,
    /// 7: `r13`.
    R13,
    /// 8: the word at `rbp + offset`.
    BpIndirect,
    /// 9: the word at `rsp`, plus the offset.
    SpIndirect,
    /// 10 to 15: not defined by any kernel.
    Unknown(u8),
}

impl OrcReg {
    fn from_bits(bits: u16) -> OrcReg {
        match bits & 0xf {
            0 => OrcReg::Undefined,
            1 => OrcReg::PrevSp,
            2 => OrcReg::Dx,
            3 => OrcReg::Di,
            4 => OrcReg::Bp,
            5 => OrcReg::Sp,
            6 => OrcReg::R10,
            7 => OrcReg::R13,
            8 => OrcReg::BpIndirect,
            9 => OrcReg::SpIndirect,
            other => OrcReg::Unknown(other as u8),
        }
    }
}

/// What kind of frame an entry describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrcType {
    /// No unwind information here: an error to reach.
    Undefined,
    /// The outermost frame: the stack ends here, normally.
    EndOfStack,
    /// A function frame: the return address is just below the caller's
    /// stack pointer.
    Call,
    /// The previous stack pointer points at a whole `struct pt_regs` (an
    /// interrupt, exception or syscall entry).
    Regs,
    /// The previous stack pointer points at an IRET frame (ip, cs, flags,
    /// sp, ss), the end of a `pt_regs`.
    RegsPartial,
    /// A type no kernel defines.
    Unknown(u8),
}

/// One decoded `struct orc_entry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrcEntry {
    /// Added to `sp_reg`'s value to get the caller's stack pointer.
    pub sp_offset: i16,
    /// Added to `bp_reg`'s value to find where the caller's `rbp` is saved.
    pub bp_offset: i16,
    /// What the caller's stack pointer is based on.
    pub sp_reg: OrcReg,
    /// Where the caller's frame pointer is: `Undefined` (unchanged),
    /// `PrevSp` or `Bp` (saved at that base plus `bp_offset`).
    pub bp_reg: OrcReg,
    /// The frame's kind.
    pub kind: OrcType,
    /// Whether the address this entry leads to is exact (an interrupted
    /// instruction) rather than a return address: set for REGS frames,
    /// and from V2 on by the entry's `signal` bit.
    pub signal: bool,
}

impl OrcEntry {
    /// The kernel's guess for code without ORC data (`orc_fp_entry`):
    /// a frame-pointer frame, the caller's stack pointer at `rbp + 16`
    /// and its `rbp` saved at `rbp`.
    pub const FRAME_POINTER: OrcEntry = OrcEntry {
        sp_offset: 16,
        bp_offset: -16,
        sp_reg: OrcReg::Bp,
        bp_reg: OrcReg::PrevSp,
        kind: OrcType::Call,
        signal: false,
    };

    /// The kernel's entry for address 0 (`null_orc_entry`): a call
    /// through a NULL function pointer, the return address on top of the
    /// stack.
    pub const NULL_CALL: OrcEntry = OrcEntry {
        sp_offset: 8,
        bp_offset: 0,
        sp_reg: OrcReg::Sp,
        bp_reg: OrcReg::Undefined,
        kind: OrcType::Call,
        signal: false,
    };

    /// Decodes the 6 bytes of a `struct orc_entry` (little-endian).
    pub fn decode(raw: [u8; ORC_ENTRY_SIZE], version: OrcVersion) -> OrcEntry {
        let sp_offset = i16::from_le_bytes([raw[0], raw[1]]);
        let bp_offset = i16::from_le_bytes([raw[2], raw[3]]);
        let flags = u16::from_le_bytes([raw[4], raw[5]]);
        let sp_reg = OrcReg::from_bits(flags);
        let bp_reg = OrcReg::from_bits(flags >> 4);
        let bit = |n: u16| flags & (1 << n) != 0;
        let (kind, signal) = match version {
            OrcVersion::V1 | OrcVersion::V2 => {
                let end = if version == OrcVersion::V1 {
                    bit(10)
                } else {
                    bit(11)
                };
                let kind = if sp_reg == OrcReg::Undefined {
                    if end {
                        OrcType::EndOfStack
                    } else {
                        OrcType::Undefined
                    }
                } else {
                    match (flags >> 8) & 3 {
                        0 => OrcType::Call,
                        1 => OrcType::Regs,
                        2 => OrcType::RegsPartial,
                        other => OrcType::Unknown(other as u8),
                    }
                };
                let signal = if version == OrcVersion::V1 {
                    matches!(kind, OrcType::Regs | OrcType::RegsPartial)
                } else {
                    bit(10)
                };
                (kind, signal)
            }
            OrcVersion::V3 => {
                let kind = match (flags >> 8) & 7 {
                    0 => OrcType::Undefined,
                    1 => OrcType::EndOfStack,
                    2 => OrcType::Call,
                    3 => OrcType::Regs,
                    4 => OrcType::RegsPartial,
                    other => OrcType::Unknown(other as u8),
                };
                (kind, bit(11))
            }
        };
        OrcEntry {
            sp_offset,
            bp_offset,
            sp_reg,
            bp_reg,
            kind,
            signal,
        }
    }
}

/// One ORC table: the kernel's, or a module's.
#[derive(Debug, Clone)]
pub struct OrcTable {
    /// The first address each entry covers, ascending.
    ips: Vec<u64>,
    entries: Vec<[u8; ORC_ENTRY_SIZE]>,
    version: OrcVersion,
}

impl OrcTable {
    /// Parses a table: `ip_table` is the `.orc_unwind_ip` array read at
    /// kernel address `ip_table_address` (its entries are relative to
    /// their own addresses), `entries` the `.orc_unwind` array. The
    /// layout is `version`, or detected from the entries when `None`.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] when an array is not a whole number of
    /// entries, the two counts differ, or there are more than
    /// [`MAX_ORC_ENTRIES`].
    pub fn parse(
        ip_table: &[u8],
        ip_table_address: u64,
        entries: &[u8],
        version: Option<OrcVersion>,
    ) -> Result<OrcTable, Error> {
        if !ip_table.len().is_multiple_of(4) {
            return Err(Error::Corrupt(format!(
                "ORC ip table at {ip_table_address:#x}: {} bytes, expected a multiple of 4 (s32 entries)",
                ip_table.len()
            )));
        }
        if !entries.len().is_multiple_of(ORC_ENTRY_SIZE) {
            return Err(Error::Corrupt(format!(
                "ORC entries: {} bytes, expected a multiple of {ORC_ENTRY_SIZE} (struct orc_entry)",
                entries.len()
            )));
        }
        let count = ip_table.len() / 4;
        if count != entries.len() / ORC_ENTRY_SIZE {
            return Err(Error::Corrupt(format!(
                "ORC ip table at {ip_table_address:#x} has {count} entries, expected as many as the {} ORC entries",
                entries.len() / ORC_ENTRY_SIZE
            )));
        }
        if count > MAX_ORC_ENTRIES {
            return Err(Error::Corrupt(format!(
                "ORC table at {ip_table_address:#x}: {count} entries, more than the limit of {MAX_ORC_ENTRIES}"
            )));
        }
        let version = version.unwrap_or_else(|| OrcVersion::detect(entries));
        let mut ips = Vec::with_capacity(count);
        let mut sorted = true;
        for (i, rel) in ip_table.chunks_exact(4).enumerate() {
            let rel = i32::from_le_bytes([rel[0], rel[1], rel[2], rel[3]]);
            let ip = ip_table_address
                .wrapping_add(4 * i as u64)
                .wrapping_add_signed(i64::from(rel));
            sorted &= ips.last().is_none_or(|&last| last <= ip);
            ips.push(ip);
        }
        let mut entries: Vec<[u8; ORC_ENTRY_SIZE]> = entries
            .chunks_exact(ORC_ENTRY_SIZE)
            .map(|e| [e[0], e[1], e[2], e[3], e[4], e[5]])
            .collect();
        if !sorted {
            // As the kernel sorts a module's table: by address, and among
            // entries of one address the section terminators (undefined)
            // first, so that a lookup finds the real entry.
            let mut order: Vec<usize> = (0..count).collect();
            order.sort_by_key(|&i| {
                let real = OrcEntry::decode(entries[i], version).kind != OrcType::Undefined;
                (ips[i], real)
            });
            ips = order.iter().map(|&i| ips[i]).collect();
            entries = order.iter().map(|&i| entries[i]).collect();
        }
        Ok(OrcTable {
            ips,
            entries,
            version,
        })
    }

    /// The entry covering `ip`: the last one at or below it (of several
    /// at one address, the last); `None` below the first entry.
    pub fn find(&self, ip: u64) -> Option<OrcEntry> {
        let after = self.ips.partition_point(|&start| start <= ip);
        let i = after.checked_sub(1)?;
        Some(OrcEntry::decode(self.entries[i], self.version))
    }

    /// The layout of the entries.
    pub fn version(&self) -> OrcVersion {
        self.version
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.ips.len()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty()
    }

    /// The lowest and highest address with an entry.
    pub fn bounds(&self) -> Option<(u64, u64)> {
        Some((*self.ips.first()?, *self.ips.last()?))
    }
}

/// Reads an ORC table from kernel memory: `count` entries of the ip
/// table at `ip_table` and of the entries at `entries`.
///
/// # Errors
///
/// [`Error::Corrupt`] for more than [`MAX_ORC_ENTRIES`] entries or a
/// table [`OrcTable::parse`] refuses, [`Error::Memory`] when the dump
/// lacks the bytes.
pub fn read_orc_table(
    memory: &dyn KernelRead,
    count: u64,
    ip_table: u64,
    entries: u64,
    version: Option<OrcVersion>,
) -> Result<OrcTable, Error> {
    let count = usize::try_from(count)
        .ok()
        .filter(|&c| c <= MAX_ORC_ENTRIES)
        .ok_or_else(|| {
            Error::Corrupt(format!(
                "ORC table at {ip_table:#x}: {count} entries, more than the limit of {MAX_ORC_ENTRIES}"
            ))
        })?;
    let read = |at: u64, len: usize, what: &str| {
        memory.read_vec(at, len).map_err(|source| Error::Memory {
            what: format!("{what} at {at:#x}"),
            source,
        })
    };
    let ips = read(ip_table, count * 4, "the ORC ip table")?;
    let raw = read(entries, count * ORC_ENTRY_SIZE, "the ORC entries")?;
    OrcTable::parse(&ips, ip_table, &raw, version)
}

/// Reads the kernel image's ORC table, between `__start_orc_unwind_ip`
/// and `__stop_orc_unwind_ip` and from `__start_orc_unwind`, in the
/// layout BTF gives (or, without BTF, the one its entries show).
///
/// # Errors
///
/// [`Error::MissingSymbol`] for a kernel built without ORC (or a symbol
/// table without these symbols), [`Error::Corrupt`] when they do not
/// bound a table, else as [`read_orc_table`].
pub fn read_kernel_orc(
    memory: &dyn KernelRead,
    symbols: &SymbolTable,
    btf: Option<&Btf<'_>>,
) -> Result<OrcTable, Error> {
    let start = symbols.required("__start_orc_unwind_ip")?;
    let stop = symbols.required("__stop_orc_unwind_ip")?;
    let entries = symbols.required("__start_orc_unwind")?;
    let len = stop
        .checked_sub(start)
        .filter(|len| len.is_multiple_of(4))
        .ok_or_else(|| {
            Error::Corrupt(format!(
                "__start_orc_unwind_ip {start:#x} and __stop_orc_unwind_ip {stop:#x} do not bound a table of s32"
            ))
        })?;
    read_orc_table(
        memory,
        len / 4,
        start,
        entries,
        btf.and_then(OrcVersion::from_btf),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A V1 entry (Linux 6.1's layout).
    fn v1(
        sp_offset: i16,
        bp_offset: i16,
        sp_reg: u16,
        bp_reg: u16,
        kind: u16,
        end: bool,
    ) -> [u8; 6] {
        let flags = sp_reg | bp_reg << 4 | kind << 8 | u16::from(end) << 10;
        let [a, b] = sp_offset.to_le_bytes();
        let [c, d] = bp_offset.to_le_bytes();
        let [e, f] = flags.to_le_bytes();
        [a, b, c, d, e, f]
    }

    /// An ip table of absolute addresses, as stored at `base`.
    fn ip_table(base: u64, ips: &[u64]) -> Vec<u8> {
        ips.iter()
            .enumerate()
            .flat_map(|(i, &ip)| {
                let rel = ip.wrapping_sub(base + 4 * i as u64) as i64 as i32;
                rel.to_le_bytes()
            })
            .collect()
    }

    #[test]
    fn v1_entries_decode_as_linux_6_1_lays_them_out() {
        // sp = sp + 8, bp unchanged, CALL: an ordinary function entry.
        let call = OrcEntry::decode(v1(8, 0, 5, 0, 0, false), OrcVersion::V1);
        assert_eq!(
            call,
            OrcEntry {
                sp_offset: 8,
                bp_offset: 0,
                sp_reg: OrcReg::Sp,
                bp_reg: OrcReg::Undefined,
                kind: OrcType::Call,
                signal: false
            }
        );
        let regs = OrcEntry::decode(v1(0, 0, 5, 0, 1, false), OrcVersion::V1);
        assert_eq!((regs.kind, regs.signal), (OrcType::Regs, true));
        let iret = OrcEntry::decode(v1(-8, 0, 9, 0, 2, false), OrcVersion::V1);
        assert_eq!(
            (iret.kind, iret.sp_reg, iret.signal),
            (OrcType::RegsPartial, OrcReg::SpIndirect, true)
        );
        let end = OrcEntry::decode(v1(0, 0, 0, 0, 0, true), OrcVersion::V1);
        assert_eq!(end.kind, OrcType::EndOfStack);
        let hole = OrcEntry::decode(v1(0, 0, 0, 0, 0, false), OrcVersion::V1);
        assert_eq!(hole.kind, OrcType::Undefined);
        let odd = OrcEntry::decode(v1(0, -16, 4, 1, 3, false), OrcVersion::V1);
        assert_eq!(
            (odd.kind, odd.bp_reg, odd.bp_offset),
            (OrcType::Unknown(3), OrcReg::PrevSp, -16)
        );
        assert_eq!(
            OrcEntry::decode(v1(0, 0, 12, 15, 0, false), OrcVersion::V1).sp_reg,
            OrcReg::Unknown(12)
        );
    }

    #[test]
    fn v2_and_v3_entries_carry_the_signal_bit() {
        // V2: type:2 signal:1 end:1.
        let flags: u16 = 5 | 1 << 10;
        let [e, f] = flags.to_le_bytes();
        let call_signal = OrcEntry::decode([8, 0, 0, 0, e, f], OrcVersion::V2);
        assert_eq!(
            (call_signal.kind, call_signal.signal),
            (OrcType::Call, true)
        );
        let [e, f] = (1u16 << 11).to_le_bytes();
        assert_eq!(
            OrcEntry::decode(
                [0; 4]
                    .into_iter()
                    .chain([e, f])
                    .collect::<Vec<_>>()
                    .try_into()
                    .expect("6"),
                OrcVersion::V2
            )
            .kind,
            OrcType::EndOfStack
        );
        // V3: type:3 signal:1.
        for (kind, want) in [
            (0, OrcType::Undefined),
            (1, OrcType::EndOfStack),
            (2, OrcType::Call),
            (3, OrcType::Regs),
            (4, OrcType::RegsPartial),
            (7, OrcType::Unknown(7)),
        ] {
            let flags: u16 = 5 | kind << 8 | 1 << 11;
            let [e, f] = flags.to_le_bytes();
            let entry = OrcEntry::decode([16, 0, 0, 0, e, f], OrcVersion::V3);
            assert_eq!(
                (entry.kind, entry.signal, entry.sp_offset),
                (want, true, 16)
            );
        }
    }

    #[test]
    fn the_layout_is_told_from_the_entries() {
        let v1_table: Vec<u8> = [
            v1(8, 0, 5, 0, 0, false),
            v1(16, -16, 5, 1, 0, false),
            v1(0, 0, 0, 0, 0, true),
        ]
        .concat();
        assert_eq!(OrcVersion::detect(&v1_table), OrcVersion::V1);
        let v2_end = (1u16 << 11).to_le_bytes();
        let v2_table: Vec<u8> =
            [v1(8, 0, 5, 0, 0, false), [0, 0, 0, 0, v2_end[0], v2_end[1]]].concat();
        assert_eq!(OrcVersion::detect(&v2_table), OrcVersion::V2);
        let v3_call = (5u16 | 2 << 8).to_le_bytes();
        let v3_table: Vec<u8> = [
            [8, 0, 0, 0, v3_call[0], v3_call[1]],
            [8, 0, 0, 0, v3_call[0], v3_call[1]],
            v1(0, 0, 0, 0, 1, false),
        ]
        .concat();
        assert_eq!(OrcVersion::detect(&v3_table), OrcVersion::V3);
        assert_eq!(OrcVersion::detect(&[]), OrcVersion::V1);
    }

    #[test]
    fn lookups_find_the_last_entry_at_or_below_the_address() {
        let base = 0xffff_ffff_8200_0000;
        let ips = [
            0xffff_ffff_8100_0000,
            0xffff_ffff_8100_0010,
            0xffff_ffff_8100_0010,
            0xffff_ffff_8100_0040,
        ];
        let entries = [
            v1(8, 0, 5, 0, 0, false),
            v1(0, 0, 0, 0, 0, false),
            v1(16, 0, 5, 0, 0, false),
            v1(24, 0, 5, 0, 0, false),
        ]
        .concat();
        let table = OrcTable::parse(&ip_table(base, &ips), base, &entries, None).expect("parses");
        assert_eq!(
            (table.len(), table.version(), table.is_empty()),
            (4, OrcVersion::V1, false)
        );
        assert_eq!(table.bounds(), Some((ips[0], ips[3])));
        assert_eq!(table.find(ips[0] - 1), None);
        assert_eq!(table.find(ips[0]).map(|e| e.sp_offset), Some(8));
        // Of two entries at one address, the last.
        assert_eq!(table.find(ips[1] + 5).map(|e| e.sp_offset), Some(16));
        assert_eq!(table.find(u64::MAX).map(|e| e.sp_offset), Some(24));
    }

    #[test]
    fn an_unsorted_table_is_sorted_with_terminators_before_real_entries() {
        let base = 0xffff_ffff_8200_0000;
        let ips = [
            0xffff_ffff_8100_0040,
            0xffff_ffff_8100_0010,
            0xffff_ffff_8100_0010,
        ];
        let entries = [
            v1(24, 0, 5, 0, 0, false),
            v1(16, 0, 5, 0, 0, false),
            v1(0, 0, 0, 0, 0, false),
        ]
        .concat();
        let table = OrcTable::parse(&ip_table(base, &ips), base, &entries, Some(OrcVersion::V1))
            .expect("parses");
        assert_eq!(
            table.find(0xffff_ffff_8100_0010).map(|e| e.kind),
            Some(OrcType::Call)
        );
        assert_eq!(
            table.find(0xffff_ffff_8100_0040).map(|e| e.sp_offset),
            Some(24)
        );
    }

    #[test]
    fn malformed_tables_are_refused_with_what_was_expected() {
        let err = OrcTable::parse(&[0; 5], 0, &[0; 6], None).expect_err("refused");
        assert!(err.to_string().contains("multiple of 4"), "{err}");
        let err = OrcTable::parse(&[0; 4], 0, &[0; 7], None).expect_err("refused");
        assert!(err.to_string().contains("multiple of 6"), "{err}");
        let err = OrcTable::parse(&[0; 8], 0, &[0; 6], None).expect_err("refused");
        assert!(err.to_string().contains("as many as"), "{err}");
        let empty = OrcTable::parse(&[], 0, &[], None).expect("an empty table");
        assert!(empty.is_empty() && empty.find(0).is_none() && empty.bounds().is_none());
    }
}
