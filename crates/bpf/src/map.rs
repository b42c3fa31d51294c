//! BPF maps: kernel-side storage shared by BPF programs and user space,
//! held as an fd. Dropping a [`Map`] closes the fd; the kernel frees the
//! map once no program uses it either.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::error::{Error, Result};
use crate::objects::kernel_name;
use crate::perf::possible_cpus;
use crate::sys;

/// The map types kscope creates (values of `enum bpf_map_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    /// BPF_MAP_TYPE_ARRAY: `max_entries` values under u32 keys 0.., all
    /// present and zeroed from the start.
    Array,
    /// BPF_MAP_TYPE_PERCPU_ARRAY: an array with one value per possible
    /// CPU under each key; programs see their CPU's value.
    PerCpuArray,
    /// BPF_MAP_TYPE_HASH: at most `max_entries` values under keys of any
    /// size, created and deleted one by one.
    Hash,
    /// BPF_MAP_TYPE_PERCPU_HASH: a hash map with one value per possible
    /// CPU under each key; programs see their CPU's value.
    PerCpuHash,
    /// BPF_MAP_TYPE_STACK_TRACE: stack traces that bpf_get_stackid
    /// stores, under u32 ids; a value is `value_size / 8` addresses,
    /// zero after the last frame.
    StackTrace,
    /// BPF_MAP_TYPE_RINGBUF: a ring buffer of records (key and value size
    /// 0, `max_entries` is its size in bytes); read it through
    /// [`RingBuf`](crate::RingBuf).
    RingBuf,
}

impl MapType {
    fn raw(self) -> u32 {
        match self {
            MapType::Hash => 1,
            MapType::Array => 2,
            MapType::PerCpuHash => 5,
            MapType::PerCpuArray => 6,
            MapType::StackTrace => 7,
            MapType::RingBuf => 27,
        }
    }
}

/// A map the kernel has created; it owns the fd.
#[derive(Debug)]
pub struct Map {
    fd: OwnedFd,
    name: String,
    kind: MapType,
    key_size: u32,
    /// How long a value is as the lookup and update syscalls copy it: the
    /// value size, or one 8-byte-aligned slot per possible CPU.
    value_len: usize,
}

impl Map {
    /// Creates a map. `name` (at most 15 bytes, letters, digits, `_` and
    /// `.`) is what `bpftool map` shows. Array and per-CPU array keys are
    /// 4 bytes; a ring buffer takes key and value size 0 and a
    /// `max_entries` that is its size in bytes (see
    /// [`RingBuf::create`](crate::RingBuf::create), which also maps it).
    pub fn create(
        kind: MapType,
        name: &str,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> Result<Map> {
        Map::create_with_flags(kind, name, key_size, value_size, max_entries, 0)
    }

    /// A one-value array holding `value` that programs can only read and
    /// user space can no longer change (BPF_F_RDONLY_PROG, then frozen):
    /// constants such as format strings, which helpers like bpf_snprintf
    /// accept only from such a map.
    pub fn read_only(name: &str, value: &[u8]) -> Result<Map> {
        let size = u32::try_from(value.len()).map_err(|_| Error::MapInvalid {
            name: name.to_string(),
            reason: "the value is larger than 4 GiB".to_string(),
        })?;
        let map = Map::create_with_flags(MapType::Array, name, 4, size, 1, sys::BPF_F_RDONLY_PROG)?;
        map.update(&0u32.to_ne_bytes(), value)?;
        sys::map_freeze(map.fd.as_fd()).map_err(|source| Error::Map {
            name: name.to_string(),
            op: "freezing it",
            source,
        })?;
        Ok(map)
    }

    fn create_with_flags(
        kind: MapType,
        name: &str,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        flags: u32,
    ) -> Result<Map> {
        let raw_name = kernel_name(name).map_err(|reason| Error::MapInvalid {
            name: name.to_string(),
            reason: reason.to_string(),
        })?;
        let value_len = match kind {
            // Saturating: a size no buffer has, for a map the kernel refuses.
            MapType::PerCpuArray | MapType::PerCpuHash => (value_size as usize)
                .next_multiple_of(8)
                .saturating_mul(possible_cpus()? as usize),
            MapType::Array | MapType::Hash | MapType::StackTrace | MapType::RingBuf => {
                value_size as usize
            }
        };
        let fd = sys::map_create(
            kind.raw(),
            &raw_name,
            key_size,
            value_size,
            max_entries,
            flags,
        )
        .map_err(|source| Error::Map {
            name: name.to_string(),
            op: "creating it",
            source,
        })?;
        Ok(Map {
            fd,
            name: name.to_string(),
            kind,
            key_size,
            value_len,
        })
    }

    /// The map's fd as a number, for [`Insn::ld_map_fd`](crate::Insn::ld_map_fd).
    /// It stays valid as long as `self` lives.
    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// The map's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Stores `value` under `key`, creating or replacing it
    /// (BPF_MAP_UPDATE_ELEM with BPF_ANY). For a
    /// [`MapType::PerCpuArray`], `value` holds one slot per possible CPU
    /// as [`lookup`](Map::lookup) describes, and sets every CPU's value.
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.check_buffers(key, value.len())?;
        sys::map_update(self.fd.as_fd(), key, value).map_err(|source| Error::Map {
            name: self.name.clone(),
            op: "updating an element",
            source,
        })
    }

    /// Copies the value under `key` into `value` (BPF_MAP_LOOKUP_ELEM).
    /// `key` must be `key_size` bytes and `value` `value_size` bytes —
    /// except for a [`MapType::PerCpuArray`], whose `value` holds one
    /// slot of `round_up(value_size, 8)` bytes per possible CPU
    /// ([`possible_cpus`](crate::possible_cpus)), CPU 0's first, each
    /// value at the start of its slot.
    pub fn lookup(&self, key: &[u8], value: &mut [u8]) -> Result<()> {
        self.check_buffers(key, value.len())?;
        sys::map_lookup(self.fd.as_fd(), key, value).map_err(|source| Error::Map {
            name: self.name.clone(),
            op: "looking up an element",
            source,
        })
    }

    /// Refuses what the kernel could not handle safely: the syscalls read
    /// and write the map's sizes whatever the buffers are.
    fn check_buffers(&self, key: &[u8], value_len: usize) -> Result<()> {
        let invalid = |reason: String| {
            Err(Error::MapInvalid {
                name: self.name.clone(),
                reason,
            })
        };
        if self.kind == MapType::RingBuf {
            return invalid(
                "a ring buffer has no elements to look up or update; read it with RingBuf::poll"
                    .to_string(),
            );
        }
        if key.len() != self.key_size as usize {
            return invalid(format!(
                "the key is {} bytes, but the map's keys are {} bytes",
                key.len(),
                self.key_size
            ));
        }
        if value_len != self.value_len {
            let per_cpu = if matches!(self.kind, MapType::PerCpuArray | MapType::PerCpuHash) {
                " (one 8-byte-aligned slot per possible CPU)"
            } else {
                ""
            };
            return invalid(format!(
                "the value buffer is {value_len} bytes, but the map's values are {} bytes{per_cpu}",
                self.value_len
            ));
        }
        Ok(())
    }
}

impl AsFd for Map {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::bpf_works;
    use crate::{Insn, Program, ProgramType};

    #[test]
    fn bad_names_are_refused_before_the_kernel() {
        for name in ["has-dash", "a_name_that_is_too_long"] {
            let err = Map::create(MapType::Array, name, 4, 8, 1).unwrap_err();
            assert!(matches!(err, Error::MapInvalid { .. }), "{err}");
        }
    }

    #[test]
    fn an_array_keeps_what_is_stored() {
        if !bpf_works("BPF array map") {
            return;
        }
        let map = Map::create(MapType::Array, "kscope_t_array", 4, 8, 4).expect("create");
        assert!(map.raw_fd() >= 0);
        assert_eq!(map.as_fd().as_raw_fd(), map.raw_fd());
        map.update(&2u32.to_ne_bytes(), &0x1122_3344_5566_7788u64.to_ne_bytes())
            .expect("update");
        let mut value = [0xffu8; 8];
        map.lookup(&2u32.to_ne_bytes(), &mut value).expect("lookup");
        assert_eq!(u64::from_ne_bytes(value), 0x1122_3344_5566_7788);
        // Untouched entries of an array are zero.
        map.lookup(&0u32.to_ne_bytes(), &mut value)
            .expect("lookup 0");
        assert_eq!(value, [0; 8]);
        // Past max_entries: the kernel says no, and the error says where.
        let err = map.lookup(&4u32.to_ne_bytes(), &mut value).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("kscope_t_array") && text.contains("looking up"),
            "{text}"
        );
    }

    #[test]
    fn a_read_only_map_keeps_its_value_and_refuses_changes() {
        if !bpf_works("BPF read-only map") {
            return;
        }
        let map = Map::read_only("kscope_t_ro", b"%d items\0\0\0\0").expect("create");
        let mut value = [0u8; 12];
        map.lookup(&0u32.to_ne_bytes(), &mut value).expect("lookup");
        assert_eq!(&value, b"%d items\0\0\0\0");
        let err = map.update(&0u32.to_ne_bytes(), &[0u8; 12]).unwrap_err();
        assert!(err.to_string().contains("updating"), "{err}");
    }

    #[test]
    fn buffers_of_the_wrong_size_are_refused_before_the_kernel() {
        if !bpf_works("BPF array map") {
            return;
        }
        let map = Map::create(MapType::Array, "kscope_t_sizes", 4, 8, 1).expect("create");
        let err = map.update(&[0u8; 2], &[0u8; 8]).unwrap_err();
        assert!(err.to_string().contains("the key is 2 bytes"), "{err}");
        let err = map.lookup(&[0u8; 4], &mut [0u8; 4]).unwrap_err();
        assert!(
            err.to_string().contains("the value buffer is 4 bytes"),
            "{err}"
        );
    }

    #[test]
    fn a_ring_buffer_map_has_no_elements() {
        if !bpf_works("BPF ring buffer map") {
            return;
        }
        let map = Map::create(MapType::RingBuf, "kscope_t_rbmap", 0, 0, 4096).expect("create");
        let err = map.lookup(&[], &mut []).unwrap_err();
        assert!(err.to_string().contains("RingBuf::poll"), "{err}");
    }

    #[test]
    fn the_kernel_refuses_sizes_a_map_type_does_not_take() {
        if !bpf_works("BPF array map") {
            return;
        }
        // An array's keys are u32 indexes.
        let err = Map::create(MapType::Array, "kscope_t_badkey", 8, 8, 1).unwrap_err();
        match err {
            Error::Map { op, source, .. } => {
                assert_eq!(op, "creating it");
                assert_eq!(source.raw_os_error(), Some(libc::EINVAL));
            }
            other => panic!("{other}"),
        }
    }

    /// `map[0] += 1` on this CPU's value: a raw_tracepoint program.
    fn count_program(map: &Map) -> Vec<Insn> {
        use crate::{Jmp, Size};
        let mut insns = vec![Insn::st(Size::W, 10, -4, 0)];
        insns.extend(Insn::ld_map_fd(1, map.raw_fd()));
        insns.push(Insn::mov64_reg(2, 10));
        insns.push(Insn::add64_imm(2, -4));
        insns.push(Insn::call(1)); // bpf_map_lookup_elem
        insns.push(Insn::jmp_imm(Jmp::Eq, 0, 0, 2));
        insns.push(Insn::mov64_imm(1, 1));
        insns.push(Insn::atomic_add64(0, 0, 1));
        insns.push(Insn::mov64_imm(0, 0));
        insns.push(Insn::exit());
        insns
    }

    #[test]
    fn a_per_cpu_array_has_a_slot_per_possible_cpu() {
        if !bpf_works("BPF per-CPU array map") {
            return;
        }
        let cpus = possible_cpus().expect("possible CPUs") as usize;
        // 4-byte values: each CPU's slot is rounded up to 8 bytes.
        let map = Map::create(MapType::PerCpuArray, "kscope_t_pcpu", 4, 4, 1).expect("create");
        let mut slots = vec![0u8; 8 * cpus];
        for cpu in 0..cpus {
            slots[cpu * 8..cpu * 8 + 4].copy_from_slice(&(100 + cpu as u32).to_ne_bytes());
        }
        map.update(&0u32.to_ne_bytes(), &slots).expect("update");
        let mut back = vec![0xffu8; 8 * cpus];
        map.lookup(&0u32.to_ne_bytes(), &mut back).expect("lookup");
        for cpu in 0..cpus {
            assert_eq!(back[cpu * 8..cpu * 8 + 4], (100 + cpu as u32).to_ne_bytes());
        }
        // One CPU's worth is not enough (unless there is only one).
        if cpus > 1 {
            assert!(matches!(
                map.lookup(&0u32.to_ne_bytes(), &mut [0u8; 8]),
                Err(Error::MapInvalid { .. })
            ));
        }
    }

    #[test]
    fn a_program_counts_into_its_cpus_slot() {
        if !bpf_works("BPF per-CPU array map") {
            return;
        }
        let cpus = possible_cpus().expect("possible CPUs") as usize;
        let map = Map::create(MapType::PerCpuArray, "kscope_t_pcnt", 4, 8, 1).expect("create");
        let program = Program::load(
            ProgramType::RawTracepoint,
            "kscope_t_pcnt",
            &count_program(&map),
        )
        .expect("load");
        for _ in 0..3 {
            assert_eq!(program.test_run(&[]).expect("run"), 0);
        }
        let mut slots = vec![0u8; 8 * cpus];
        map.lookup(&0u32.to_ne_bytes(), &mut slots).expect("lookup");
        let total: u64 = slots
            .chunks_exact(8)
            .map(|s| u64::from_ne_bytes(s.try_into().expect("8 bytes")))
            .sum();
        assert_eq!(total, 3, "{slots:?}");
    }
}
