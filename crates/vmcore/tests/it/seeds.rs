//! Small dumps of every format, the seeds of the `vmcore_headers` fuzz
//! target: each must open and read. With `KSCOPE_FUZZ_SEEDS` naming a
//! directory, they are written there (see fuzz/README.md).

use kscope_vmcore::{Compression, KernelMemory, Vmcore};

use crate::build::{Elf, Load, PAGE, VMCOREINFO, flatten, small_kdump, standard_notes};
use crate::translate::{BANNER, BANNER_TEXT, fixture, vmcoreinfo};

fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = vec![(
        "elf-small".to_string(),
        Elf {
            notes: standard_notes(VMCOREINFO),
            loads: vec![
                Load {
                    paddr: 0,
                    vaddr: 0,
                    memsz: PAGE,
                    data: vec![1; PAGE as usize],
                },
                Load {
                    paddr: 2 * PAGE,
                    vaddr: 0,
                    memsz: 2 * PAGE,
                    data: vec![2; PAGE as usize],
                },
            ],
        }
        .build(),
    )];
    for method in [
        Compression::None,
        Compression::Zlib,
        Compression::Lzo,
        Compression::Snappy,
        Compression::Zstd,
    ] {
        let kdump = small_kdump(method).build();
        if method == Compression::Zlib {
            out.push(("flat-zlib".to_string(), flatten(&kdump, 1024, None, true)));
        }
        out.push((format!("kdump-{method}"), kdump));
    }
    for levels in [4, 5] {
        let info = vmcoreinfo(levels, "");
        let elf = fixture(levels, 0, true).elf(&standard_notes(&info));
        out.push((format!("elf-pagetables-{levels}level"), elf));
    }
    out
}

#[test]
fn the_fuzz_seeds_open_and_read() {
    let seeds = seeds();
    for (name, bytes) in &seeds {
        assert!(bytes.len() < 200 << 10, "{name}: {} bytes", bytes.len());
        let dump = Vmcore::from_bytes(bytes.clone()).unwrap();
        assert!(dump.vmcoreinfo().is_some(), "{name}");
        let mut page = vec![0u8; PAGE as usize];
        if name.contains("pagetables") {
            let kernel = KernelMemory::new(&dump).unwrap();
            assert_eq!(kernel.read_cstr(BANNER, 256).unwrap(), BANNER_TEXT);
        } else {
            dump.read_phys(0, &mut page).unwrap();
            assert_eq!(page, vec![1u8; PAGE as usize], "{name}");
        }
    }
    if let Some(dir) = std::env::var_os("KSCOPE_FUZZ_SEEDS") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}
