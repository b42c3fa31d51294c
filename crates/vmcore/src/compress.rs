//! Page compression of kdump-compressed dumps: the `page_desc.flags` bits
//! of makedumpfile's `diskdump_mod.h` and the decompression of one page
//! into a page-sized buffer. A page must decompress to exactly one page:
//! more is an error found after one byte past the page (a decompression
//! bomb costs a page of work), less is an error too.

use std::fmt;

/// `DUMP_DH_COMPRESSED_ZLIB`.
pub(crate) const FLAG_ZLIB: u32 = 0x1;
/// `DUMP_DH_COMPRESSED_LZO`.
pub(crate) const FLAG_LZO: u32 = 0x2;
/// `DUMP_DH_COMPRESSED_SNAPPY`.
pub(crate) const FLAG_SNAPPY: u32 = 0x4;
/// `DUMP_DH_COMPRESSED_ZSTD`.
pub(crate) const FLAG_ZSTD: u32 = 0x20;

/// How pages are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Stored as they are.
    None,
    /// zlib (`makedumpfile -c`, QEMU `dump-guest-memory -z`).
    Zlib,
    /// LZO1X (`makedumpfile -l`, QEMU `-l`).
    Lzo,
    /// snappy (`makedumpfile -p`, QEMU `-s`).
    Snappy,
    /// zstd (`makedumpfile -z`).
    Zstd,
}

impl Compression {
    /// The compression of a page from its descriptor's flags, or `None`
    /// when more than one method bit is set.
    pub(crate) fn from_page_flags(flags: u32) -> Option<Compression> {
        let methods = flags & (FLAG_ZLIB | FLAG_LZO | FLAG_SNAPPY | FLAG_ZSTD);
        Some(match methods {
            0 => Compression::None,
            FLAG_ZLIB => Compression::Zlib,
            FLAG_LZO => Compression::Lzo,
            FLAG_SNAPPY => Compression::Snappy,
            FLAG_ZSTD => Compression::Zstd,
            _ => return None,
        })
    }

    /// The methods named by a kdump header's `status` bits, which use the
    /// same values.
    pub(crate) fn from_status(status: u32) -> Vec<Compression> {
        [
            (FLAG_ZLIB, Compression::Zlib),
            (FLAG_LZO, Compression::Lzo),
            (FLAG_SNAPPY, Compression::Snappy),
            (FLAG_ZSTD, Compression::Zstd),
        ]
        .into_iter()
        .filter(|(bit, _)| status & bit != 0)
        .map(|(_, c)| c)
        .collect()
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed",
            Compression::Zlib => "zlib",
            Compression::Lzo => "lzo",
            Compression::Snappy => "snappy",
            Compression::Zstd => "zstd",
        })
    }
}

/// Decompresses `src` into `page`, which it must fill exactly.
pub(crate) fn decompress_page(
    method: Compression,
    src: &[u8],
    page: &mut [u8],
) -> Result<(), String> {
    let produced = match method {
        Compression::None => {
            if src.len() != page.len() {
                return Err(format!(
                    "an uncompressed page of {} bytes holds {}",
                    page.len(),
                    src.len()
                ));
            }
            page.copy_from_slice(src);
            return Ok(());
        }
        Compression::Zlib => zlib(src, page)?,
        Compression::Lzo => match lzokay::decompress::decompress(src, page) {
            Ok(n) => n,
            Err(lzokay::Error::OutputOverrun) => return Err(more_than(page.len())),
            Err(e) => return Err(format!("corrupt LZO data ({e})")),
        },
        Compression::Snappy => {
            let claimed =
                snap::raw::decompress_len(src).map_err(|e| format!("corrupt snappy data ({e})"))?;
            if claimed > page.len() {
                return Err(more_than(page.len()));
            }
            snap::raw::Decoder::new()
                .decompress(src, page)
                .map_err(|e| format!("corrupt snappy data ({e})"))?
        }
        Compression::Zstd => match zstd::bulk::decompress_to_buffer(src, page) {
            Ok(n) => n,
            Err(e) if e.to_string().contains("too small") => return Err(more_than(page.len())),
            Err(e) => return Err(format!("corrupt zstd data ({e})")),
        },
    };
    if produced != page.len() {
        return Err(format!(
            "it decompresses to {produced} bytes, not a page of {}",
            page.len()
        ));
    }
    Ok(())
}

fn more_than(page: usize) -> String {
    format!("it decompresses to more than a page of {page} bytes")
}

/// A zlib stream (with its header, as zlib's `compress2` writes it).
fn zlib(src: &[u8], page: &mut [u8]) -> Result<usize, String> {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut z = Decompress::new(true);
    let corrupt = |e: flate2::DecompressError| format!("corrupt zlib data ({e})");
    let status = z
        .decompress(src, page, FlushDecompress::Finish)
        .map_err(corrupt)?;
    let produced = z.total_out() as usize;
    if status == Status::StreamEnd {
        return Ok(produced);
    }
    if produced == page.len() {
        // The page is full and the stream goes on: one byte more says
        // whether it holds more data or only lacks its end.
        let consumed = (z.total_in() as usize).min(src.len());
        let mut extra = [0u8; 1];
        z.decompress(&src[consumed..], &mut extra, FlushDecompress::Finish)
            .map_err(corrupt)?;
        if z.total_out() as usize > page.len() {
            return Err(more_than(page.len()));
        }
    }
    Err(format!(
        "the zlib stream ends early, after {produced} bytes of a page of {}",
        page.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn page() -> Vec<u8> {
        (0..4096u32)
            .map(|i| (i % 251) as u8 ^ (i / 512) as u8)
            .collect()
    }

    fn zlib_of(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_method_round_trips_one_page() {
        let data = page();
        let inputs = [
            (Compression::None, data.clone()),
            (Compression::Zlib, zlib_of(&data)),
            (Compression::Lzo, lzokay::compress::compress(&data).unwrap()),
            (
                Compression::Snappy,
                snap::raw::Encoder::new().compress_vec(&data).unwrap(),
            ),
            (Compression::Zstd, zstd::bulk::compress(&data, 3).unwrap()),
        ];
        for (method, src) in inputs {
            let mut out = vec![0; 4096];
            decompress_page(method, &src, &mut out).unwrap_or_else(|e| panic!("{method}: {e}"));
            assert_eq!(out, data, "{method}");
        }
    }

    #[test]
    fn more_or_less_than_a_page_is_an_error() {
        let big = vec![7u8; 1 << 20];
        let small = vec![7u8; 100];
        let cases = [
            (Compression::Zlib, zlib_of(&big), zlib_of(&small)),
            (
                Compression::Lzo,
                lzokay::compress::compress(&big).unwrap(),
                lzokay::compress::compress(&small).unwrap(),
            ),
            (
                Compression::Snappy,
                snap::raw::Encoder::new().compress_vec(&big).unwrap(),
                snap::raw::Encoder::new().compress_vec(&small).unwrap(),
            ),
            (
                Compression::Zstd,
                zstd::bulk::compress(&big, 3).unwrap(),
                zstd::bulk::compress(&small, 3).unwrap(),
            ),
        ];
        for (method, bomb, short) in cases {
            let mut out = vec![0; 4096];
            let err = decompress_page(method, &bomb, &mut out).unwrap_err();
            assert!(err.contains("more than a page"), "{method}: {err}");
            let err = decompress_page(method, &short, &mut out).unwrap_err();
            assert!(
                err.contains("100 bytes") || err.contains("early"),
                "{method}: {err}"
            );
            let err = decompress_page(method, &bomb[..bomb.len() / 2], &mut out);
            assert!(err.is_err(), "{method}: a cut stream");
            let err = decompress_page(method, &[0xff; 64], &mut out);
            assert!(err.is_err(), "{method}: garbage");
        }
        assert!(decompress_page(Compression::None, &[0; 100], &mut [0; 4096]).is_err());
    }

    #[test]
    fn flags_name_one_method() {
        assert_eq!(Compression::from_page_flags(0), Some(Compression::None));
        assert_eq!(Compression::from_page_flags(0x20), Some(Compression::Zstd));
        assert_eq!(
            Compression::from_page_flags(0x8 | 0x1),
            Some(Compression::Zlib)
        );
        assert_eq!(Compression::from_page_flags(0x3), None);
        assert_eq!(
            Compression::from_status(0x1 | 0x4 | 0x10),
            vec![Compression::Zlib, Compression::Snappy]
        );
    }
}
