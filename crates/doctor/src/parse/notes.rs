//! ELF notes, as the kernel exports its own in `/sys/kernel/notes` and as
//! a vmlinux holds them in `.notes`: the GNU build-id identifies a kernel
//! build exactly, so a vmlinux with debug info matches the running kernel
//! only when their build-ids are equal.

/// The GNU build-id among the notes in `data` (4-byte aligned,
/// little-endian as on the machines kscope runs on), or `None` when there
/// is none. Malformed notes end the search without a panic.
pub fn build_id(data: &[u8]) -> Option<Vec<u8>> {
    kscope_elf::build_id(data, 0, 4).map(<[u8]>::to_vec)
}

pub use kscope_elf::hex;

#[cfg(test)]
mod tests {
    use kscope_elf::NT_GNU_BUILD_ID;

    use super::*;

    fn note(name: &[u8], n_type: u32, desc: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(name.len() as u32).to_ne_bytes());
        out.extend_from_slice(&(desc.len() as u32).to_ne_bytes());
        out.extend_from_slice(&n_type.to_ne_bytes());
        out.extend_from_slice(name);
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend_from_slice(desc);
        out.resize(out.len().next_multiple_of(4), 0);
        out
    }

    #[test]
    fn the_gnu_build_id_is_found_among_other_notes() {
        let id: Vec<u8> = (1..=20).collect();
        let mut data = note(b"Xen\0", 6, &[0; 8]);
        data.extend(note(b"Linux\0", 1, b"6.1\0"));
        data.extend(note(b"GNU\0", NT_GNU_BUILD_ID, &id));
        assert_eq!(build_id(&data), Some(id.clone()));
        assert_eq!(hex(&id[..3]), "010203");
    }

    #[test]
    fn no_build_id_or_truncated_notes_give_none() {
        let id: Vec<u8> = (1..=20).collect();
        let data = note(b"GNU\0", NT_GNU_BUILD_ID, &id);
        assert_eq!(build_id(&data[..data.len() - 8]), None);
        assert_eq!(build_id(&note(b"GNU\0", 1, &id)), None);
        assert_eq!(build_id(&[]), None);
        assert_eq!(build_id(&[0xff; 7]), None);
    }

    #[test]
    fn a_huge_declared_size_does_not_allocate_or_panic() {
        let mut data = Vec::new();
        data.extend_from_slice(&4u32.to_ne_bytes());
        data.extend_from_slice(&u32::MAX.to_ne_bytes());
        data.extend_from_slice(&NT_GNU_BUILD_ID.to_ne_bytes());
        data.extend_from_slice(b"GNU\0");
        assert_eq!(build_id(&data), None);
    }
}
