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
    /// BPF_MAP_TYPE_LRU_HASH: a hash map that, when full, makes room by
    /// dropping its least recently used entries.
    LruHash,
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
            MapType::LruHash => 9,
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
    /// The value size the map was created with.
    value_size: u32,
    /// The most elements it holds.
    max_entries: u32,
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
            MapType::Array
            | MapType::Hash
            | MapType::LruHash
            | MapType::StackTrace
            | MapType::RingBuf => value_size as usize,
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
            value_size,
            max_entries,
        })
    }

    /// An array map (u32 keys) whose values user space can map into its
    /// memory (BPF_F_MMAPABLE) with [`Map::map_values`]: read and change
    /// them in place, word by word and atomically, while programs change
    /// them too — where a lookup and an update would undo a program's
    /// concurrent change.
    pub fn create_mmapable(name: &str, value_size: u32, max_entries: u32) -> Result<Map> {
        Map::create_with_flags(
            MapType::Array,
            name,
            4,
            value_size,
            max_entries,
            sys::BPF_F_MMAPABLE,
        )
    }

    /// The values of a map made by [`Map::create_mmapable`], mapped into
    /// this process: value N starts at N × round_up(value_size, 8). The
    /// mapping holds the map alive by itself.
    pub fn map_values(&self) -> Result<MappedValue> {
        let stride = (self.value_size as usize).next_multiple_of(8);
        let len = stride.saturating_mul(self.max_entries as usize);
        let shared = sys::SharedValues::map(self.fd.as_fd(), len).map_err(|source| Error::Map {
            name: self.name.clone(),
            op: "mapping its values (was it made by Map::create_mmapable?)",
            source,
        })?;
        Ok(MappedValue {
            shared,
            name: self.name.clone(),
            len,
        })
    }

    /// Deletes the element under `key` (BPF_MAP_DELETE_ELEM); false when
    /// there was none.
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        self.check_key(key)?;
        match sys::map_delete(self.fd.as_fd(), key) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(source) => Err(Error::Map {
                name: self.name.clone(),
                op: "deleting an element",
                source,
            }),
        }
    }

    /// The key after `prev` in the kernel's order, or the first key when
    /// `prev` is None (BPF_MAP_GET_NEXT_KEY); None after the last. A
    /// `prev` that is no longer there starts over from the first key.
    pub fn next_key(&self, prev: Option<&[u8]>) -> Result<Option<Vec<u8>>> {
        if let Some(prev) = prev {
            self.check_key(prev)?;
        }
        let mut next = vec![0u8; self.key_size as usize];
        match sys::map_next_key(self.fd.as_fd(), prev, &mut next) {
            Ok(()) => Ok(Some(next)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(source) => Err(Error::Map {
                name: self.name.clone(),
                op: "walking its keys",
                source,
            }),
        }
    }

    /// Every key, each once, in the kernel's order. Programs may add and
    /// delete elements during the walk: a key deleted under the walk
    /// restarts it (the kernel's rule), keys seen already are skipped, and
    /// the walk stops after twice `max_entries` steps, so that it ends
    /// whatever the programs do; keys added during the walk may be missed.
    pub fn keys(&self) -> Result<Vec<Vec<u8>>> {
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut prev: Option<Vec<u8>> = None;
        for _ in 0..2 * u64::from(self.max_entries) {
            let Some(key) = self.next_key(prev.as_deref())? else {
                break;
            };
            if seen.insert(key.clone()) {
                keys.push(key.clone());
            }
            prev = Some(key);
        }
        Ok(keys)
    }

    /// Like [`lookup`](Map::lookup), but a missing key is `Ok(false)`, not
    /// an error: what a hash map's absent element is.
    pub fn lookup_if_present(&self, key: &[u8], value: &mut [u8]) -> Result<bool> {
        self.check_buffers(key, value.len())?;
        match sys::map_lookup(self.fd.as_fd(), key, value) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(source) => Err(Error::Map {
                name: self.name.clone(),
                op: "looking up an element",
                source,
            }),
        }
    }

    /// How many bytes [`lookup`](Map::lookup) and [`update`](Map::update)
    /// take as a value: the value size, or for per-CPU maps one 8-byte
    /// aligned slot per possible CPU.
    pub fn value_len(&self) -> usize {
        self.value_len
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
        self.check_key(key)?;
        if value_len != self.value_len {
            let per_cpu = if matches!(self.kind, MapType::PerCpuArray | MapType::PerCpuHash) {
                " (one 8-byte-aligned slot per possible CPU)"
            } else {
                ""
            };
            return Err(Error::MapInvalid {
                name: self.name.clone(),
                reason: format!(
                    "the value buffer is {value_len} bytes, but the map's values are {} bytes{per_cpu}",
                    self.value_len
                ),
            });
        }
        Ok(())
    }

    /// Refuses a key the kernel would misread: one of another size, or
    /// any key of a ring buffer.
    fn check_key(&self, key: &[u8]) -> Result<()> {
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
        Ok(())
    }
}

/// The values of an array map made by [`Map::create_mmapable`], mapped
/// into this process: what its BPF programs read and write, changed in
/// place. Longs are read and added to atomically, so that a program's
/// concurrent atomic add is never lost.
#[derive(Debug)]
pub struct MappedValue {
    shared: sys::SharedValues,
    name: String,
    /// The bytes of the map's values (the mapping is rounded up to pages).
    len: usize,
}

impl MappedValue {
    /// How many bytes the values take.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the map has no value bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The native-endian long at `offset` (8-aligned).
    pub fn read_i64(&self, offset: usize) -> Result<i64> {
        self.check_word(offset)?;
        Ok(self.shared.load(offset))
    }

    /// Adds `delta` (wrapping) to the long at `offset` in one atomic
    /// step, as BPF_ATOMIC_ADD does; returns the value after.
    pub fn atomic_add(&self, offset: usize, delta: i64) -> Result<i64> {
        self.check_word(offset)?;
        Ok(self.shared.fetch_add(offset, delta).wrapping_add(delta))
    }

    /// Copies `out.len()` bytes from `offset` into `out`.
    pub fn read_bytes(&self, offset: usize, out: &mut [u8]) -> Result<()> {
        self.check_range(offset, out.len())?;
        self.shared.read(offset, out);
        Ok(())
    }

    /// Writes `bytes` at `offset`.
    pub fn write_bytes(&self, offset: usize, bytes: &[u8]) -> Result<()> {
        self.check_range(offset, bytes.len())?;
        self.shared.write(offset, bytes);
        Ok(())
    }

    fn check_word(&self, offset: usize) -> Result<()> {
        if !offset.is_multiple_of(8) {
            return Err(Error::MapInvalid {
                name: self.name.clone(),
                reason: format!("offset {offset} of a long is not a multiple of 8"),
            });
        }
        self.check_range(offset, 8)
    }

    fn check_range(&self, offset: usize, len: usize) -> Result<()> {
        if offset
            .checked_add(len)
            .is_none_or(|end| end > self.len.min(self.shared.len()))
        {
            return Err(Error::MapInvalid {
                name: self.name.clone(),
                reason: format!(
                    "bytes {offset}..{} are outside its {} bytes of values",
                    offset.saturating_add(len),
                    self.len
                ),
            });
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
            &atomic_add_program(&map, 0),
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

    #[test]
    fn a_hash_map_walks_its_keys_and_deletes_them() {
        if !bpf_works("BPF hash map") {
            return;
        }
        let map = Map::create(MapType::Hash, "kscope_t_keys", 8, 8, 16).expect("create");
        assert_eq!(map.next_key(None).expect("empty walk"), None);
        assert!(map.keys().expect("no keys").is_empty());
        for k in [7u64, 3, 11] {
            map.update(&k.to_ne_bytes(), &(k * 10).to_ne_bytes())
                .expect("update");
        }
        let mut keys: Vec<u64> = map
            .keys()
            .expect("keys")
            .iter()
            .map(|k| u64::from_ne_bytes(k.as_slice().try_into().expect("8 bytes")))
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, [3, 7, 11]);
        // next_key walks them one by one, and ends.
        let first = map.next_key(None).expect("first").expect("a key");
        let second = map.next_key(Some(&first)).expect("second").expect("a key");
        let third = map.next_key(Some(&second)).expect("third").expect("a key");
        assert_eq!(map.next_key(Some(&third)).expect("the end"), None);
        let mut value = [0u8; 8];
        assert!(
            map.lookup_if_present(&7u64.to_ne_bytes(), &mut value)
                .expect("7")
        );
        assert_eq!(u64::from_ne_bytes(value), 70);
        assert!(map.delete(&7u64.to_ne_bytes()).expect("delete 7"));
        assert!(!map.delete(&7u64.to_ne_bytes()).expect("delete 7 again"));
        assert!(
            !map.lookup_if_present(&7u64.to_ne_bytes(), &mut value)
                .expect("7 gone")
        );
        assert_eq!(map.keys().expect("keys").len(), 2);
        let err = map.delete(&[0u8; 4]).unwrap_err();
        assert!(err.to_string().contains("the key is 4 bytes"), "{err}");
        let err = map.next_key(Some(&[0u8; 2])).unwrap_err();
        assert!(err.to_string().contains("the key is 2 bytes"), "{err}");
    }

    /// `*(u64 *)(map[0] + offset) += 1` atomically (for a per-CPU map, on
    /// this CPU's value): a raw_tracepoint program.
    fn atomic_add_program(map: &Map, offset: i16) -> Vec<Insn> {
        use crate::{Jmp, Size};
        let mut insns = vec![Insn::st(Size::W, 10, -4, 0)];
        insns.extend(Insn::ld_map_fd(1, map.raw_fd()));
        insns.push(Insn::mov64_reg(2, 10));
        insns.push(Insn::add64_imm(2, -4));
        insns.push(Insn::call(1)); // bpf_map_lookup_elem
        insns.push(Insn::jmp_imm(Jmp::Eq, 0, 0, 2));
        insns.push(Insn::mov64_imm(1, 1));
        insns.push(Insn::atomic_add64(0, offset, 1));
        insns.push(Insn::mov64_imm(0, 0));
        insns.push(Insn::exit());
        insns
    }

    #[test]
    fn a_mapped_value_is_the_bytes_programs_change() {
        if !bpf_works("BPF mmapable array map") {
            return;
        }
        let map = Map::create_mmapable("kscope_t_mmap", 40, 1).expect("create");
        let value = map.map_values().expect("mmap");
        assert_eq!(value.len(), 40);
        // What user space writes, the syscalls and programs see.
        value.write_bytes(8, &5i64.to_ne_bytes()).expect("write");
        value.write_bytes(16, b"abc\0").expect("write a string");
        let mut seen = [0u8; 40];
        map.lookup(&0u32.to_ne_bytes(), &mut seen).expect("lookup");
        assert_eq!(&seen[8..16], &5i64.to_ne_bytes());
        assert_eq!(&seen[16..20], b"abc\0");
        let program = Program::load(
            ProgramType::RawTracepoint,
            "kscope_t_mmap",
            &atomic_add_program(&map, 8),
        )
        .expect("load");
        program.test_run(&[]).expect("run");
        program.test_run(&[]).expect("run");
        assert_eq!(value.read_i64(8).expect("read"), 7);
        assert_eq!(value.atomic_add(8, -10).expect("add"), -3);
        program.test_run(&[]).expect("run");
        assert_eq!(value.read_i64(8).expect("read"), -2);
        let mut text = [0u8; 4];
        value.read_bytes(16, &mut text).expect("read bytes");
        assert_eq!(&text, b"abc\0");
        // Out of bounds or misaligned: refused, naming the map.
        for err in [
            value.read_i64(40).unwrap_err(),
            value.read_i64(4).unwrap_err(),
            value.write_bytes(36, &[0; 8]).unwrap_err(),
            value.read_bytes(usize::MAX, &mut [0; 2]).unwrap_err(),
        ] {
            assert!(err.to_string().contains("kscope_t_mmap"), "{err}");
        }
        // A map made without BPF_F_MMAPABLE cannot be mapped.
        let plain = Map::create(MapType::Array, "kscope_t_plain", 4, 8, 1).expect("create");
        let err = plain.map_values().unwrap_err();
        assert!(err.to_string().contains("create_mmapable"), "{err}");
    }
}
