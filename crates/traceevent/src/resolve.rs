//! What a record does not carry but its text needs: kernel symbols for
//! `%pS` (from `/proc/kallsyms`) and command names for pids (from
//! tracefs's `saved_cmdlines`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::printfmt::{Symbol, SymbolResolver};

/// Kernel symbols sorted by address.
#[derive(Debug, Clone, Default)]
pub struct Kallsyms {
    /// (address, name, module) for every text and data symbol.
    symbols: Vec<(u64, String, Option<String>)>,
}

impl Kallsyms {
    /// Parses `/proc/kallsyms` text (`ADDRESS TYPE NAME [MODULE]`);
    /// malformed lines and zero addresses (hidden) are skipped.
    pub fn parse(text: &str) -> Kallsyms {
        let mut symbols: Vec<(u64, String, Option<String>)> = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let address = u64::from_str_radix(fields.next()?, 16).ok()?;
                let _kind = fields.next()?;
                let name = fields.next()?.to_string();
                let module = fields
                    .next()
                    .map(|m| m.trim_matches(|c| c == '[' || c == ']').to_string());
                (address != 0).then_some((address, name, module))
            })
            .collect();
        symbols.sort_by_key(|(address, _, _)| *address);
        Kallsyms { symbols }
    }

    /// How many symbols there are.
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    /// True when no symbol is known (hidden or unreadable kallsyms).
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// The address of the symbol called `name` (the first listed, for a
    /// name several modules share); a linear search, for the few
    /// landmarks (`_text`, `_end`) a reader asks for once.
    pub fn address_of(&self, name: &str) -> Option<u64> {
        self.symbols
            .iter()
            .find(|(_, n, _)| n == name)
            .map(|(address, _, _)| *address)
    }
}

impl SymbolResolver for Kallsyms {
    fn symbol(&self, address: u64) -> Option<Symbol<'_>> {
        let index = self
            .symbols
            .partition_point(|(a, _, _)| *a <= address)
            .checked_sub(1)?;
        let (start, name, module) = &self.symbols[index];
        // Several names can share an address; the size runs to the next
        // different address.
        let next = self.symbols[index + 1..]
            .iter()
            .map(|(a, _, _)| *a)
            .find(|a| a > start)?;
        Some(Symbol {
            name,
            offset: address - start,
            size: next - start,
            module: module.as_deref(),
        })
    }
}

/// Strings at fixed kernel addresses, from tracefs's `printk_formats`
/// (`0xADDRESS : "text"` lines): the formats of trace_printk() calls and
/// the strings of tracepoint_string(), which records hold by address.
#[derive(Debug, Clone, Default)]
pub struct PrintkFormats {
    strings: HashMap<u64, String>,
}

impl PrintkFormats {
    /// Parses `printk_formats`; lines of another shape are skipped.
    pub fn parse(text: &str) -> PrintkFormats {
        let strings = text
            .lines()
            .filter_map(|line| {
                let (address, rest) = line.split_once(" : ")?;
                let address = u64::from_str_radix(address.trim().strip_prefix("0x")?, 16).ok()?;
                let quoted = rest.trim().strip_prefix('"')?.strip_suffix('"')?;
                Some((address, crate::printfmt::unescape(quoted)))
            })
            .collect();
        PrintkFormats { strings }
    }

    /// The string at `address`.
    pub fn get(&self, address: u64) -> Option<&str> {
        self.strings.get(&address).map(String::as_str)
    }

    /// How many strings there are.
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

/// pid → command name, from `saved_cmdlines` (`PID COMM` lines).
#[derive(Debug, Default)]
pub struct Cmdlines {
    /// Sorted, one entry per pid, apart from the names: a binary search
    /// of a few KiB of pids is cheaper than a hash for every record of a
    /// report, and no input can make it slow.
    pids: Vec<i32>,
    /// The name of each pid, at its index.
    names: Vec<String>,
    /// The index of the pid found last: records come in runs of one task.
    last: AtomicUsize,
}

impl Clone for Cmdlines {
    fn clone(&self) -> Cmdlines {
        Cmdlines {
            pids: self.pids.clone(),
            names: self.names.clone(),
            last: AtomicUsize::new(self.last.load(Ordering::Relaxed)),
        }
    }
}

impl Cmdlines {
    /// Parses `saved_cmdlines` text; of two lines of one pid, the last
    /// counts.
    pub fn parse(text: &str) -> Cmdlines {
        let mut lines: Vec<(i32, String)> = text
            .lines()
            .filter_map(|line| {
                let (pid, comm) = line.split_once(' ')?;
                Some((pid.trim().parse().ok()?, comm.trim().to_string()))
            })
            .collect();
        // Stable: lines of one pid stay in file order; the last is kept.
        lines.sort_by_key(|(pid, _)| *pid);
        let mut cmdlines = Cmdlines::default();
        for (pid, comm) in lines {
            match cmdlines.pids.last() {
                Some(last) if *last == pid => {
                    if let Some(name) = cmdlines.names.last_mut() {
                        *name = comm;
                    }
                }
                _ => {
                    cmdlines.pids.push(pid);
                    cmdlines.names.push(comm);
                }
            }
        }
        cmdlines
    }

    /// Adds or replaces one pid's name (learned from a sched_switch, say).
    pub fn insert(&mut self, pid: i32, comm: &str) {
        match self.pids.binary_search(&pid) {
            Ok(at) => self.names[at] = comm.to_string(),
            Err(at) => {
                self.pids.insert(at, pid);
                self.names.insert(at, comm.to_string());
            }
        }
    }

    /// The name as the kernel's `trace` file shows it: `<idle>` for pid
    /// 0, `<...>` when unknown.
    pub fn comm(&self, pid: i32) -> &str {
        if pid == 0 {
            return "<idle>";
        }
        let last = self.last.load(Ordering::Relaxed);
        if self.pids.get(last) == Some(&pid) {
            return &self.names[last];
        }
        match self.pids.binary_search(&pid) {
            Ok(at) => {
                self.last.store(at, Ordering::Relaxed);
                &self.names[at]
            }
            Err(_) => "<...>",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_resolve_to_symbol_offset_and_size() {
        let kallsyms = Kallsyms::parse(
            "ffffffff81000000 T _stext\nffffffff81000000 T _text\nffffffff81000100 T do_one\nffffffff81000180 t do_two\nffffffffc0001000 t modfn\t[ext4]\nffffffffc0001040 t modnext\t[ext4]\n0000000000000000 T hidden\ngarbage\n",
        );
        assert_eq!(kallsyms.len(), 6);
        let s = kallsyms.symbol(0xffffffff81000110).unwrap();
        assert_eq!((s.name, s.offset, s.size), ("do_one", 0x10, 0x80));
        let s = kallsyms.symbol(0xffffffff81000000).unwrap();
        assert_eq!((s.offset, s.size), (0, 0x100));
        let s = kallsyms.symbol(0xffffffffc0001004).unwrap();
        assert_eq!((s.name, s.module), ("modfn", Some("ext4")));
        assert!(kallsyms.symbol(0x1000).is_none());
        // The last symbol has no known size.
        assert!(kallsyms.symbol(0xffffffffc0001044).is_none());
        assert_eq!(kallsyms.address_of("_text"), Some(0xffffffff81000000));
        assert_eq!(kallsyms.address_of("modnext"), Some(0xffffffffc0001040));
        assert_eq!(kallsyms.address_of("hidden"), None);
    }

    #[test]
    fn printk_formats_map_addresses_to_unescaped_strings() {
        let formats = PrintkFormats::parse(
            "0xffffffff8281972f : \"thaw_processes\"\n0xffffffff82a00000 : \"x=%d\\n\"\nnot a line\n",
        );
        assert_eq!(formats.len(), 2);
        assert_eq!(formats.get(0xffffffff8281972f), Some("thaw_processes"));
        assert_eq!(formats.get(0xffffffff82a00000), Some("x=%d\n"));
        assert_eq!(formats.get(1), None);
    }

    #[test]
    fn comms_come_from_saved_cmdlines() {
        let mut cmdlines = Cmdlines::parse("42 old\n1 systemd\n42 bash\nbad line\n");
        assert_eq!(cmdlines.comm(42), "bash");
        assert_eq!(cmdlines.comm(0), "<idle>");
        assert_eq!(cmdlines.comm(7), "<...>");
        cmdlines.insert(7, "kworker/0:1");
        assert_eq!(cmdlines.comm(7), "kworker/0:1");
        cmdlines.insert(1, "init");
        assert_eq!(cmdlines.comm(1), "init");
        assert_eq!(cmdlines.comm(42), "bash");
    }
}
