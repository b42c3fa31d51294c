//! BTF blobs, as read from a crash dump's memory or a file: any bytes
//! parse or give an error, never a panic, a hang or an allocation beyond
//! the input's size; a parsed blob answers every query of a type (kind,
//! name, size, members flat and by path, spelling, enumerators,
//! parameters) for its first types and for names found in it, within the
//! crate's stated limits.

#![no_main]

use kscope_btf::Btf;
use libfuzzer_sys::fuzz_target;

/// How many types are queried: the work per type is bounded, and real
/// blobs hold 100,000 or more.
const QUERIED: u32 = 512;

fuzz_target!(|blob: &[u8]| {
    let Ok(btf) = Btf::parse(blob) else {
        return;
    };
    // Every type takes at least 12 bytes of the blob, void aside.
    assert!(btf.type_count() <= blob.len() / 12 + 1);
    let _ = (btf.enum_count(), btf.function_names().count());
    let count = u32::try_from(btf.type_count()).unwrap_or(u32::MAX);
    for id in (0..count.min(QUERIED)).chain([count, u32::MAX]) {
        let _ = (btf.kind(id), btf.size(id), btf.target(id), btf.array(id));
        let _ = (
            btf.int_encoding(id),
            btf.enum_is_signed(id),
            btf.enumerators(id),
        );
        let _ = (btf.members(id), btf.flat_members(id), btf.params(id));
        let resolved = btf.resolve(id);
        assert!(resolved == id || (resolved as usize) < btf.type_count());
        let name = btf.name(id);
        assert!(name.len() < 512);
        // At most 256 types spelled, each with a name under 512 bytes
        // (an unnamed base type spells as nothing).
        let spelled = btf.type_name(id);
        assert!(spelled.len() < 256 * 1024, "{}", spelled.len());
        let _ = btf.declaration(id, "x");
        let _ = btf.member_path(id, "a.b");
        if !name.is_empty() {
            for key in [
                name.to_string(),
                format!("struct {name}"),
                format!("union {name}"),
            ] {
                if let Some(found) = btf.find(&key) {
                    assert!((found as usize) < btf.type_count());
                    let _ = (btf.type_size(&key), btf.member_offset(&key, name));
                }
            }
            let _ = (btf.function_params(name), btf.function_return(name));
            let _ = (btf.has_function(name), btf.enum_value(name));
        }
    }
});
