//! The BPF side's state as a host probe sees it. Scalar globals are read
//! and written in place in the globals map's mmapped value, longs added
//! to atomically (BPF programs add to them at the same time). Arrays and
//! statistics go through the map syscalls, with the layout code
//! generation gives them ([`ArrayType`]): a key is the keys side by side
//! (8 native-endian bytes per long, [`STR`] zero-padded bytes per
//! string, 8 zero bytes for a statistic without keys); a value is a long
//! or a string slot; a statistic's value is per CPU, u64 words count,
//! sum, min, max, sum of squares, then the histogram's buckets. A host
//! probe adds to a statistic in CPU 0's slot, and reads one merged over
//! CPUs as the BPF code does. The syscalls read and write an entry whole
//! (every CPU's slots of a statistic): a change here is a read, then a
//! write back, and what a BPF program adds to that entry in between is
//! lost. Host probes run at kscope's pace (begin, end, timers), where
//! that is rare; scalar globals, changed in place, have no such gap.

use super::HostError;
use super::exec::{Interp, Result};
use super::value::Value;
use crate::ast::{Foreach, SortBy, StatOp};
use crate::check::{ArrayType, Ty};
use crate::codegen::{EXIT_FLAG, STR, word_at as word};
use crate::source::Span;
use crate::stats::{Aggregate, WORD_HIST};

/// The errno of an update that a full map refuses.
const E2BIG: i32 = 7;

/// One entry of an array as `foreach` walks it.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// Its keys.
    pub(super) keys: Vec<Value>,
    /// Its value; none for a statistic.
    pub(super) value: Option<Value>,
    /// For a statistic, its words merged over CPUs.
    pub(super) stat: Option<Stat>,
}

impl Entry {
    /// What `foreach` sorts this entry on for `by` (a value sort or an
    /// aggregate): the value, or the statistic's `@count` or named
    /// aggregate (0 when it has no values).
    pub(super) fn sort_value(&self, by: SortBy) -> Value {
        match (&self.stat, by) {
            (Some(stat), SortBy::Aggregate(op)) => Value::Long(stat_get(stat, op).unwrap_or(0)),
            (Some(stat), _) => Value::Long(stat.count() as i64),
            (None, _) => self.value.clone().unwrap_or(Value::Long(0)),
        }
    }
}

/// A statistic merged over CPUs: [`crate::stats::Aggregate`], the one
/// merge of the per-CPU values.
pub(super) type Stat = Aggregate;

/// `op` of a merged statistic; None for min, max, average and variance of
/// one with no values (SystemTap's "empty aggregate").
pub(super) fn stat_get(stat: &Aggregate, op: StatOp) -> Option<i64> {
    match op {
        StatOp::Count => Some(stat.count() as i64),
        StatOp::Sum => Some(stat.sum()),
        StatOp::Min => stat.min().ok(),
        StatOp::Max => stat.max().ok(),
        StatOp::Avg => stat.avg().ok(),
        StatOp::Variance => stat.variance().ok(),
    }
}

/// Merges the per-CPU `raw` value of a statistic of `array` (empty when
/// the entry is absent).
fn merge(array: &ArrayType, raw: &[u8]) -> Result<Aggregate> {
    array
        .merge_stat(raw)
        .map_err(|e| HostError::Script(format!("internal error: {e}")))
}

impl Interp<'_> {
    /// The index of array `name` among the maps.
    pub(super) fn array_index(&self, name: &str) -> Option<usize> {
        self.state.arrays.iter().position(|a| a.name == name)
    }

    fn array(&self, name: &str, span: Span) -> Result<(usize, &ArrayType)> {
        let i = self.array_index(name).ok_or_else(|| {
            self.error(&format!("internal error: '{name}' is not an array"), span)
        })?;
        Ok((i, &self.state.arrays[i]))
    }

    /// The map key of `keys` in `array`.
    fn key(array: &ArrayType, keys: &[Value]) -> Vec<u8> {
        let mut key = vec![0u8; array.key_size() as usize];
        for ((value, ty), at) in keys.iter().zip(&array.keys).zip(array.key_offsets()) {
            let at = at as usize;
            match ty {
                Ty::Str => {
                    let s = value.bytes();
                    key[at..at + s.len()].copy_from_slice(s);
                }
                _ => key[at..at + 8].copy_from_slice(&value.long().to_ne_bytes()),
            }
        }
        key
    }

    /// The keys in the map key `key` of `array`.
    fn decode_key(array: &ArrayType, key: &[u8]) -> Vec<Value> {
        array
            .keys
            .iter()
            .zip(array.key_offsets())
            .map(|(ty, at)| {
                let at = at as usize;
                match ty {
                    Ty::Str => Value::string(key.get(at..at + STR as usize).unwrap_or(&[])),
                    Ty::Stack => Value::Stack(word(key, at)),
                    _ => Value::Long(word(key, at)),
                }
            })
            .collect()
    }

    /// The value of an array's entry as the map holds it.
    fn decode_value(array: &ArrayType, bytes: &[u8]) -> Value {
        match array.value {
            Ty::Str => Value::string(bytes),
            Ty::Stack => Value::Stack(word(bytes, 0)),
            _ => Value::Long(word(bytes, 0)),
        }
    }

    /// The raw value (every CPU's for a statistic) under `key`, if any.
    fn raw(&self, map: usize, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let m = &self.state.maps[map];
        let mut value = vec![0u8; m.value_len()];
        Ok(m.lookup_if_present(key, &mut value)?.then_some(value))
    }

    /// Stores `value` under `key`; a full map refuses it, which counts
    /// as a dropped update of the array, as in BPF.
    fn store(&mut self, map: usize, key: &[u8], value: &[u8]) -> Result<()> {
        match self.state.maps[map].update(key, value) {
            Ok(()) => Ok(()),
            Err(kscope_bpf::Error::Map { source, .. }) if source.raw_os_error() == Some(E2BIG) => {
                let name = &self.state.arrays[map].name;
                let at = self.state.layout.drop_offset(name);
                self.state.globals.atomic_add(at as usize, 1)?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `array[keys]`: its value, 0 or "" when absent.
    pub(super) fn element(&self, name: &str, keys: &[Value], span: Span) -> Result<Value> {
        let (map, array) = self.array(name, span)?;
        let key = Self::key(array, keys);
        Ok(match self.raw(map, &key)? {
            Some(bytes) => Self::decode_value(array, &bytes),
            None => Value::zero(array.value),
        })
    }

    /// `array[keys] = value`.
    pub(super) fn set_element(
        &mut self,
        name: &str,
        keys: &[Value],
        value: &Value,
        span: Span,
    ) -> Result<()> {
        let (map, array) = self.array(name, span)?;
        let key = Self::key(array, keys);
        let bytes = match value {
            Value::Str(s) => {
                let mut slot = vec![0u8; STR as usize];
                slot[..s.len()].copy_from_slice(s);
                slot
            }
            Value::Long(n) | Value::Stack(n) => n.to_ne_bytes().to_vec(),
        };
        self.store(map, &key, &bytes)
    }

    /// `[keys] in array`.
    pub(super) fn contains(&self, name: &str, keys: &[Value], span: Span) -> Result<bool> {
        let (map, array) = self.array(name, span)?;
        Ok(self.raw(map, &Self::key(array, keys))?.is_some())
    }

    /// `delete array[keys]`.
    pub(super) fn delete_element(&mut self, name: &str, keys: &[Value]) -> Result<()> {
        let (map, array) = self.array(name, Span::default())?;
        self.state.maps[map].delete(&Self::key(array, keys))?;
        Ok(())
    }

    /// `delete array`: every entry.
    pub(super) fn clear_array(&mut self, name: &str) -> Result<()> {
        let (map, _) = self.array(name, Span::default())?;
        let m = &self.state.maps[map];
        for key in m.keys()? {
            m.delete(&key)?;
        }
        Ok(())
    }

    /// Statistic `name[keys]` merged over CPUs (empty when absent).
    pub(super) fn stat(&self, name: &str, keys: &[Value], span: Span) -> Result<Stat> {
        let (map, array) = self.array(name, span)?;
        let raw = self.raw(map, &Self::key(array, keys))?.unwrap_or_default();
        merge(array, &raw)
    }

    /// `name[keys] <<< v`, in CPU 0's slot.
    pub(super) fn stat_add(
        &mut self,
        name: &str,
        keys: &[Value],
        v: i64,
        span: Span,
    ) -> Result<()> {
        let (map, array) = self.array(name, span)?;
        let key = Self::key(array, keys);
        let hist = array.hist;
        let mut raw = match self.raw(map, &key)? {
            Some(raw) => raw,
            None => vec![0u8; self.state.maps[map].value_len()],
        };
        // CPU 0's slot comes first.
        let [count, sum, min, max, sumsq] = [0, 1, 2, 3, 4].map(|i| word(&raw, 8 * i));
        let first = count == 0;
        let words = [
            count.wrapping_add(1),
            sum.wrapping_add(v),
            if first { v } else { min.min(v) },
            if first { v } else { max.max(v) },
            sumsq.wrapping_add(v.wrapping_mul(v)),
        ];
        let bucket = hist.map(|kind| {
            let b = WORD_HIST + kind.bucket(v);
            (b, word(&raw, 8 * b).wrapping_add(1))
        });
        for (i, n) in words.into_iter().enumerate().chain(bucket) {
            raw[8 * i..8 * i + 8].copy_from_slice(&n.to_ne_bytes());
        }
        self.store(map, &key, &raw)
    }

    /// Every entry of the array `each` walks as it is now, in the order
    /// it asks for.
    pub(super) fn snapshot(&self, each: &Foreach) -> Result<Vec<Entry>> {
        let (map, array) = self.array(&each.array, each.array_span)?;
        let mut entries = Vec::new();
        for key in self.state.maps[map].keys()? {
            // An entry deleted since the walk saw it is skipped.
            let Some(raw) = self.raw(map, &key)? else {
                continue;
            };
            let keys = Self::decode_key(array, &key);
            entries.push(if array.stat {
                Entry {
                    keys,
                    value: None,
                    stat: Some(merge(array, &raw)?),
                }
            } else {
                Entry {
                    keys,
                    value: Some(Self::decode_value(array, &raw)),
                    stat: None,
                }
            });
        }
        order(&mut entries, each);
        Ok(entries)
    }

    /// Scalar global `name`.
    pub(super) fn read_global(&self, name: &str, span: Span) -> Result<Value> {
        let var = self.global_var(name, span)?;
        let (at, ty) = (var.offset as usize, var.ty);
        Ok(match ty {
            Ty::Str => {
                let mut bytes = vec![0u8; STR as usize];
                self.state.globals.read_bytes(at, &mut bytes)?;
                Value::string(&bytes)
            }
            Ty::Stack => Value::Stack(self.state.globals.read_i64(at)?),
            _ => Value::Long(self.state.globals.read_i64(at)?),
        })
    }

    /// Sets scalar global `name` in place.
    pub(super) fn write_global(&mut self, name: &str, value: &Value, span: Span) -> Result<()> {
        let at = self.global_var(name, span)?.offset as usize;
        match value {
            Value::Str(s) => {
                let mut slot = vec![0u8; STR as usize];
                slot[..s.len()].copy_from_slice(s);
                self.state.globals.write_bytes(at, &slot)?;
            }
            Value::Long(n) | Value::Stack(n) => {
                self.state.globals.write_bytes(at, &n.to_ne_bytes())?
            }
        }
        Ok(())
    }

    /// Adds `delta` to long global `name` atomically; the value after.
    pub(super) fn add_global(&mut self, name: &str, delta: i64, span: Span) -> Result<i64> {
        let at = self.global_var(name, span)?.offset as usize;
        Ok(self.state.globals.atomic_add(at, delta)?)
    }

    /// Raises the exit flag, which stops the BPF probes.
    pub(super) fn raise_exit_flag(&mut self) -> Result<()> {
        self.state
            .globals
            .write_bytes(EXIT_FLAG as usize, &1u64.to_ne_bytes())?;
        Ok(())
    }

    fn global_var(&self, name: &str, span: Span) -> Result<&crate::codegen::GlobalVar> {
        self.state
            .layout
            .vars
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| {
                self.error(
                    &format!("internal error: '{name}' is not a scalar global"),
                    span,
                )
            })
    }
}

/// Sorts a snapshot as `each` asks: first by all keys ascending, which is
/// the order when none is asked for, then (stably) by the key, value or
/// aggregate named, descending when asked.
fn order(entries: &mut [Entry], each: &Foreach) {
    entries.sort_by(|a, b| {
        a.keys
            .iter()
            .zip(&b.keys)
            .map(|(x, y)| x.order(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let Some(sort) = each.sort else {
        return;
    };
    entries.sort_by(|a, b| {
        let o = match sort.by {
            SortBy::Key(i) => match (a.keys.get(i), b.keys.get(i)) {
                (Some(x), Some(y)) => x.order(y),
                _ => std::cmp::Ordering::Equal,
            },
            SortBy::Value | SortBy::Aggregate(_) => {
                a.sort_value(sort.by).order(&b.sort_value(sort.by))
            }
        };
        if sort.descending { o.reverse() } else { o }
    });
}
