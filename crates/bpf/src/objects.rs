//! BPF objects as the kernel knows them: the names bpf(2) accepts for
//! programs and maps, and the lists of every program and map loaded in
//! the kernel (whoever loaded them), which tests use to prove that
//! nothing of kscope's outlives it.

use std::os::fd::AsFd;

use crate::error::{Error, Result};
use crate::sys::{self, ObjectKind};

/// A loaded BPF program or map: its kernel-wide id and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The id bpftool shows (`bpftool prog show id N`).
    pub id: u32,
    /// The name it was loaded with (at most 15 bytes; empty if none).
    pub name: String,
}

/// Every BPF program loaded in the kernel, in id order
/// (BPF_PROG_GET_NEXT_ID, BPF_PROG_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD
/// for the name). Programs that vanish between the calls are skipped.
/// Needs CAP_SYS_ADMIN.
pub fn loaded_programs() -> Result<Vec<ObjectInfo>> {
    loaded(ObjectKind::Program, "programs")
}

/// Every BPF map in the kernel, in id order (BPF_MAP_GET_NEXT_ID,
/// BPF_MAP_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD). Maps that vanish
/// between the calls are skipped. Needs CAP_SYS_ADMIN.
pub fn loaded_maps() -> Result<Vec<ObjectInfo>> {
    loaded(ObjectKind::Map, "maps")
}

fn loaded(kind: ObjectKind, what: &'static str) -> Result<Vec<ObjectInfo>> {
    let error = |source| Error::ObjectList { what, source };
    let mut objects = Vec::new();
    let mut id = 0;
    while let Some(next) = sys::next_id(kind, id).map_err(error)? {
        id = next;
        let Some(fd) = sys::fd_by_id(kind, id).map_err(error)? else {
            continue;
        };
        let name = sys::object_name(kind, fd.as_fd()).map_err(error)?;
        objects.push(ObjectInfo {
            id,
            name: name_from_kernel(&name),
        });
    }
    Ok(objects)
}

/// The text of a NUL-padded kernel object name.
fn name_from_kernel(raw: &[u8; 16]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// `name` as bpf(2) takes it for a program or a map (`prog_name`,
/// `map_name`): at most 15 bytes of letters, digits, `_` and `.`,
/// NUL-padded to 16; the reason it cannot be otherwise.
pub(crate) fn kernel_name(name: &str) -> std::result::Result<[u8; 16], &'static str> {
    if name.len() > 15 {
        return Err("the name is longer than 15 bytes");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    {
        return Err("the name may hold only letters, digits, '_' and '.'");
    }
    let mut raw = [0u8; 16];
    raw[..name.len()].copy_from_slice(name.as_bytes());
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::bpf_works;
    use crate::{Insn, Map, MapType, Program, ProgramType};

    #[test]
    fn names_are_checked_and_padded_as_the_kernel_wants() {
        assert_eq!(&kernel_name("kscope.x_1").unwrap()[..11], b"kscope.x_1\0");
        assert_eq!(kernel_name("").unwrap(), [0u8; 16]);
        assert!(kernel_name("fifteen_bytes_x").is_ok());
        assert!(kernel_name("sixteen_bytes_xx").is_err());
        assert!(kernel_name("has-dash").is_err());
        assert!(kernel_name("ünï").is_err());
        assert_eq!(name_from_kernel(b"abc\0\0\0\0\0\0\0\0\0\0\0\0\0"), "abc");
        assert_eq!(name_from_kernel(b"0123456789abcdef"), "0123456789abcdef");
    }

    /// A name no other test process uses at the same time.
    fn unique_name(prefix: &str) -> String {
        format!("{prefix}{:x}", std::process::id())
    }

    #[test]
    fn a_loaded_program_is_listed_until_it_is_dropped() {
        if !bpf_works("listing loaded BPF programs") {
            return;
        }
        let name = unique_name("ks_lp");
        let program = Program::load(
            ProgramType::RawTracepoint,
            &name,
            &[Insn::mov64_imm(0, 0), Insn::exit()],
        )
        .expect("load");
        let listed = loaded_programs().expect("list");
        let ours: Vec<_> = listed.iter().filter(|p| p.name == name).collect();
        assert_eq!(ours.len(), 1, "{listed:?}");
        assert!(ours[0].id > 0);
        let id = ours[0].id;
        drop(program);
        let listed = loaded_programs().expect("list again");
        assert!(
            listed.iter().all(|p| p.id != id && p.name != name),
            "{listed:?}"
        );
    }

    #[test]
    fn a_created_map_is_listed_until_it_is_dropped() {
        if !bpf_works("listing loaded BPF maps") {
            return;
        }
        let name = unique_name("ks_lm");
        let map = Map::create(MapType::Array, &name, 4, 8, 1).expect("create");
        let listed = loaded_maps().expect("list");
        let ours: Vec<_> = listed.iter().filter(|m| m.name == name).collect();
        assert_eq!(ours.len(), 1, "{listed:?}");
        let id = ours[0].id;
        drop(map);
        let listed = loaded_maps().expect("list again");
        assert!(
            listed.iter().all(|m| m.id != id && m.name != name),
            "{listed:?}"
        );
    }
}
