//! Stack values as text: the maps `backtrace()` and `ubacktrace()` store
//! stacks in, read back by id, and the symbols to print them with
//! ([`crate::stacks`]): the kernel's from /proc/kallsyms, read on first
//! use, and each process's, remembered when its first user stack is
//! taken (an [`Output::Process`](crate::codegen::Output::Process)
//! record) while its memory maps can still be read.

use kscope_bpf::{Map, MapType};

use crate::check::{ArrayType, Ty};
use crate::codegen::{BpfProgram, MapRef, STACK_FRAMES, stack_value, word_at};
use crate::stacks::{Folded, KernelSymbols, UserStacks, backtrace_string, print_backtrace};

use super::RuntimeError;
use crate::host::StackPrinter;

/// SystemTap's MAXSTRINGLEN less its NUL: how long `backtrace()`'s string
/// of addresses may be.
const BACKTRACE_STRING: usize = 511;
/// How many stacks each map holds.
const STACKS: u32 = 16 * 1024;

/// The stack maps a script's programs use, and the symbols to print
/// their stacks with.
pub(super) struct StackText {
    kernel_map: Option<Map>,
    user_map: Option<Map>,
    processes: Option<Map>,
    /// Read from /proc/kallsyms the first time a kernel stack is printed.
    kernel: std::cell::OnceCell<KernelSymbols>,
    user: UserStacks,
}

impl std::fmt::Debug for StackText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackText")
            .field("kernel_stacks", &self.kernel_map.is_some())
            .field("user_stacks", &self.user_map.is_some())
            .finish_non_exhaustive()
    }
}

impl StackPrinter for StackText {
    fn text(&self, value: i64, lines: bool) -> String {
        let stack = self.addresses(value);
        if !lines {
            return backtrace_string(&stack, BACKTRACE_STRING);
        }
        match stack_value(value).and_then(|(_, user)| user) {
            Some(tgid) => print_backtrace(&self.user.process(tgid), &stack),
            None => print_backtrace(self.kernel_symbols(), &stack),
        }
    }
}

impl StackText {
    /// The maps `programs` refer to.
    pub(super) fn create(programs: &[BpfProgram]) -> Result<StackText, RuntimeError> {
        let uses = |wanted: MapRef| {
            programs
                .iter()
                .any(|p| p.relocations.iter().any(|&(_, m)| m == wanted))
        };
        let stack_map = |name: &str, of: &'static str| {
            Map::create(MapType::StackTrace, name, 4, 8 * STACK_FRAMES, STACKS).map_err(|source| {
                RuntimeError::StackMap {
                    of,
                    stacks: STACKS,
                    source,
                }
            })
        };
        Ok(StackText {
            kernel_map: uses(MapRef::KernelStacks)
                .then(|| stack_map("ks_kstacks", "backtrace()"))
                .transpose()?,
            user_map: uses(MapRef::UserStacks)
                .then(|| stack_map("ks_ustacks", "ubacktrace()"))
                .transpose()?,
            processes: uses(MapRef::Processes)
                .then(|| {
                    Map::create(MapType::Hash, "ks_procs", 8, 8, STACKS).map_err(RuntimeError::Maps)
                })
                .transpose()?,
            kernel: std::cell::OnceCell::new(),
            user: UserStacks::new(),
        })
    }

    /// The fd of `map`, if it is one of these.
    pub(super) fn fd(&self, map: MapRef) -> Option<i32> {
        let map = match map {
            MapRef::KernelStacks => self.kernel_map.as_ref(),
            MapRef::UserStacks => self.user_map.as_ref(),
            MapRef::Processes => self.processes.as_ref(),
            _ => None,
        };
        map.map(Map::raw_fd)
    }

    /// Reads process `tgid`'s maps now, so that its stacks can be
    /// symbolized after it exits. A process already gone is left out:
    /// its frames print as bare addresses.
    pub(super) fn remember(&mut self, tgid: u32) {
        if !self.user.knows(tgid) {
            let _ = self.user.remember(tgid);
        }
    }

    /// The addresses of stack `value`, innermost first; empty when it was
    /// not taken or is gone.
    pub(super) fn addresses(&self, value: i64) -> Vec<u64> {
        let Some((id, user)) = stack_value(value) else {
            return Vec::new();
        };
        let map = if user.is_some() {
            &self.user_map
        } else {
            &self.kernel_map
        };
        let Some(map) = map else {
            return Vec::new();
        };
        let mut raw = vec![0u8; 8 * STACK_FRAMES as usize];
        if map.lookup(&id.to_ne_bytes(), &mut raw).is_err() {
            return Vec::new();
        }
        (0..raw.len())
            .step_by(8)
            .map(|at| word_at(&raw, at) as u64)
            .collect()
    }

    /// Adds stack `value`, seen `count` times, to `folded`.
    pub(super) fn fold(&mut self, folded: &mut Folded, value: i64, count: u64) {
        let stack = self.addresses(value);
        match stack_value(value).and_then(|(_, user)| user) {
            Some(tgid) => folded.add_stack(&self.user.process(tgid), &stack, count),
            None => folded.add_stack(self.kernel_symbols(), &stack, count),
        }
    }

    fn kernel_symbols(&self) -> &KernelSymbols {
        self.kernel
            .get_or_init(|| KernelSymbols::read().unwrap_or_else(|_| KernelSymbols::parse("")))
    }
}

/// The stacks of every array keyed by a stack (its first stack key), in
/// the folded format: for an array of numbers each entry's value, for a
/// statistic its count, for one of strings 1. Entries keyed by the same
/// stack and other keys add up.
pub(super) fn fold_arrays(
    stacks: &mut StackText,
    arrays: &[ArrayType],
    maps: &[Map],
) -> Result<Folded, RuntimeError> {
    let mut folded = Folded::new();
    let failed = |source| RuntimeError::Bpf {
        what: "reading an array's stacks",
        source,
    };
    for (array, map) in arrays.iter().zip(maps) {
        let Some(position) = array.keys.iter().position(|&t| t == Ty::Stack) else {
            continue;
        };
        let at = array.key_offsets()[position] as usize;
        let mut value = vec![0u8; map.value_len()];
        for key in map.keys().map_err(failed)? {
            if !map.lookup_if_present(&key, &mut value).map_err(failed)? {
                continue;
            }
            let weight = match (array.stat, array.value) {
                (true, _) => array.merge_stat(&value).map_or(0, |s| s.count()),
                (false, Ty::Str) => 1,
                (false, _) => u64::try_from(word_at(&value, 0)).unwrap_or(0),
            };
            if weight > 0 {
                stacks.fold(&mut folded, word_at(&key, at), weight);
            }
        }
    }
    Ok(folded)
}
