//! Compression as trace.dat version 7 uses it: whole blocks (a metadata
//! section) and chunks (CPU data, ten pages at a time), zlib or zstd, each
//! preceded by its compressed and uncompressed sizes. Decompression never
//! produces more than the size the file declares, and the sizes a file may
//! declare are bounded (see [`MAX_BLOCK`] and [`Budget`]). CPU data is
//! compressed and decompressed on several threads ([`parallel_map`]).

use std::io;
use std::sync::Mutex;

use crate::{Compression, Error};

/// The largest uncompressed size of one compressed block or chunk that a
/// file may declare. trace-cmd's chunks are ten pages (40 KiB with 4 KiB
/// pages) and its largest metadata block is kallsyms (a few MiB).
pub(crate) const MAX_BLOCK: u64 = 64 << 20;

/// How many uncompressed bytes a CPU-data chunk holds when writing: ten
/// pages, as trace-cmd 3.1 writes.
pub(crate) const PAGES_PER_CHUNK: usize = 10;

/// The zlib version written in the compression header. trace-cmd compares
/// only its major number with that of the zlib it links.
pub(crate) const ZLIB_VERSION: &str = "1.2.13";

/// The zstd level trace-cmd uses (zstd's default).
const ZSTD_LEVEL: i32 = 3;

/// The total of uncompressed bytes that one parse may produce: 64 MiB plus
/// 1024 times the file's size. Real traces compress 5 to 50 times, pages
/// that are mostly empty a few hundred times.
#[derive(Debug)]
pub(crate) struct Budget {
    left: u64,
    limit: u64,
}

impl Budget {
    /// The budget of a file of `file_len` bytes.
    pub(crate) fn for_file(file_len: usize) -> Budget {
        let limit = (64u64 << 20).saturating_add((file_len as u64).saturating_mul(1024));
        Budget { left: limit, limit }
    }

    /// Takes `size` bytes from the budget, or says which limit `size`
    /// passes (`error` builds the error from the size and the limit).
    pub(crate) fn take(
        &mut self,
        size: u64,
        error: impl FnOnce(u64, u64) -> Error,
    ) -> Result<(), Error> {
        if size > self.left {
            return Err(error(self.limit - self.left + size, self.limit));
        }
        self.left -= size;
        Ok(())
    }
}

/// A decompressor of one algorithm, kept for the chunks of one CPU so that
/// its context is made once.
pub(crate) enum Decompressor {
    Zlib(flate2::Decompress),
    Zstd(zstd::bulk::Decompressor<'static>),
}

impl Decompressor {
    /// A decompressor of `algorithm`, which is not `None`; `offset` is for
    /// the error of a context that cannot be made.
    pub(crate) fn new(algorithm: Compression, offset: u64) -> Result<Decompressor, Error> {
        match algorithm {
            Compression::Zstd => zstd::bulk::Decompressor::new()
                .map(Decompressor::Zstd)
                .map_err(|source| Error::Decompress {
                    offset,
                    algorithm,
                    source,
                }),
            _ => Ok(Decompressor::Zlib(flate2::Decompress::new(true))),
        }
    }

    fn algorithm(&self) -> Compression {
        match self {
            Decompressor::Zlib(_) => Compression::Zlib,
            Decompressor::Zstd(_) => Compression::Zstd,
        }
    }

    /// Decompresses `input` into `out`, which it must fill exactly;
    /// `offset` is where `input` is in the file, for errors.
    pub(crate) fn decompress_into(
        &mut self,
        input: &[u8],
        out: &mut [u8],
        offset: u64,
    ) -> Result<(), Error> {
        let size = out.len();
        let algorithm = self.algorithm();
        let failed = |source: io::Error| Error::Decompress {
            offset,
            algorithm,
            source,
        };
        let wrong_size = |holds: String| {
            failed(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("it holds {holds} bytes, the file declares {size}"),
            ))
        };
        match self {
            Decompressor::Zlib(z) => {
                z.reset(true);
                let status = z
                    .decompress(input, out, flate2::FlushDecompress::Finish)
                    .map_err(|e| failed(io::Error::new(io::ErrorKind::InvalidData, e)))?;
                let written = z.total_out() as usize;
                match status {
                    flate2::Status::StreamEnd if written == size => {}
                    flate2::Status::StreamEnd => return Err(wrong_size(written.to_string())),
                    // Room for no more output, and the stream goes on.
                    _ if written == size => return Err(wrong_size(format!("more than {size}"))),
                    _ => {
                        return Err(failed(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("the stream ends after {written} bytes, before its end mark"),
                        )));
                    }
                }
            }
            Decompressor::Zstd(z) => {
                let written = z.decompress_to_buffer(input, out).map_err(|e| {
                    failed(io::Error::new(
                        e.kind(),
                        format!("{e} (the file declares {size} uncompressed bytes)"),
                    ))
                })?;
                if written != size {
                    return Err(wrong_size(written.to_string()));
                }
            }
        }
        Ok(())
    }
}

/// A compressor of one algorithm (zlib at its best level, zstd at its
/// default level, as trace-cmd compresses), kept for the chunks of one
/// CPU.
pub(crate) enum Compressor {
    Zlib(flate2::Compress),
    Zstd(zstd::bulk::Compressor<'static>),
}

impl Compressor {
    /// A compressor of `algorithm`, which is not `None`.
    pub(crate) fn new(algorithm: Compression) -> io::Result<Compressor> {
        match algorithm {
            Compression::Zstd => zstd::bulk::Compressor::new(ZSTD_LEVEL).map(Compressor::Zstd),
            _ => Ok(Compressor::Zlib(flate2::Compress::new(
                flate2::Compression::best(),
                true,
            ))),
        }
    }

    /// `input`, compressed as one zlib stream or zstd frame.
    pub(crate) fn compress(&mut self, input: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            Compressor::Zlib(z) => {
                z.reset();
                // zlib's compressBound, and more if that is not enough.
                let mut out = Vec::with_capacity(input.len() + input.len() / 1000 + 64);
                loop {
                    let consumed = z.total_in() as usize;
                    let status = z
                        .compress_vec(&input[consumed..], &mut out, flate2::FlushCompress::Finish)
                        .map_err(io::Error::other)?;
                    if status == flate2::Status::StreamEnd {
                        return Ok(out);
                    }
                    out.reserve(out.capacity().max(64));
                }
            }
            Compressor::Zstd(z) => z.compress(input),
        }
    }
}

/// The version string of the compression library, for the header.
pub(crate) fn library_version(algorithm: Compression) -> String {
    match algorithm {
        Compression::None => String::new(),
        Compression::Zlib => ZLIB_VERSION.to_string(),
        Compression::Zstd => zstd::zstd_safe::version_string().to_string(),
    }
}

/// Runs `f` on every job, on at most one thread per job and no more
/// threads than the machine has CPUs, and returns the results in the jobs'
/// order. A lone job runs on the calling thread.
pub(crate) fn parallel_map<T: Send, R: Send>(jobs: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len());
    if threads <= 1 {
        return jobs.into_iter().map(f).collect();
    }
    let count = jobs.len();
    let queue = Mutex::new(jobs.into_iter().enumerate());
    let next = || queue.lock().map_or(None, |mut q| q.next());
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    while let Some((index, job)) = next() {
                        out.push((index, f(job)));
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| match w.join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    debug_assert_eq!(done.len(), count);
    done.sort_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: [Compression; 2] = [Compression::Zlib, Compression::Zstd];

    fn compress(algorithm: Compression, input: &[u8]) -> Vec<u8> {
        Compressor::new(algorithm).unwrap().compress(input).unwrap()
    }

    fn decompress(
        algorithm: Compression,
        input: &[u8],
        size: usize,
        offset: u64,
    ) -> Result<Vec<u8>, Error> {
        let mut out = vec![0; size];
        Decompressor::new(algorithm, offset)?.decompress_into(input, &mut out, offset)?;
        Ok(out)
    }

    #[test]
    fn both_algorithms_round_trip_with_one_context_for_many_chunks() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for algorithm in BOTH {
            let mut compressor = Compressor::new(algorithm).unwrap();
            let mut decompressor = Decompressor::new(algorithm, 0).unwrap();
            for piece in [&data[..], &data[..10], &data[..0], &data[5..]] {
                let packed = compressor.compress(piece).unwrap();
                let mut out = vec![0; piece.len()];
                decompressor.decompress_into(&packed, &mut out, 7).unwrap();
                assert_eq!(out, piece, "{algorithm:?}");
            }
            assert!(
                compress(algorithm, &data).len() < data.len() / 10,
                "{algorithm:?}"
            );
        }
    }

    #[test]
    fn zlib_output_larger_than_its_input_fits() {
        let mut x = 88_172_645_463_325_252u64;
        let noise: Vec<u8> = (0..50_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let packed = compress(Compression::Zlib, &noise);
        assert!(packed.len() > noise.len(), "{}", packed.len());
        assert_eq!(
            decompress(Compression::Zlib, &packed, noise.len(), 0).unwrap(),
            noise
        );
    }

    #[test]
    fn output_other_than_the_declared_size_is_an_error() {
        let data = vec![7u8; 5000];
        for algorithm in BOTH {
            let packed = compress(algorithm, &data);
            for declared in [4999, 5001, 0] {
                let err = decompress(algorithm, &packed, declared, 33).unwrap_err();
                assert!(
                    matches!(err, Error::Decompress { offset: 33, .. }),
                    "{algorithm:?} {declared}: {err}"
                );
            }
            let cut = &packed[..packed.len() - 3];
            assert!(
                decompress(algorithm, cut, 5000, 0).is_err(),
                "{algorithm:?}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error() {
        for algorithm in BOTH {
            assert!(decompress(algorithm, b"not compressed at all", 100, 0).is_err());
            assert!(decompress(algorithm, b"", 100, 0).is_err());
        }
    }

    #[test]
    fn a_bomb_stops_at_the_declared_size() {
        // 64 MiB of zeros in a few KiB: the decoder is given room for 4 KiB.
        let zeros = vec![0u8; 64 << 20];
        for algorithm in BOTH {
            let bomb = compress(algorithm, &zeros);
            assert!(bomb.len() < 128 << 10, "{algorithm:?}: {}", bomb.len());
            assert!(decompress(algorithm, &bomb, 4096, 0).is_err());
        }
    }

    #[test]
    fn the_budget_counts_what_was_taken() {
        let mut budget = Budget::for_file(0);
        budget.take(60 << 20, |_, _| unreachable!()).unwrap();
        let err = budget
            .take(5 << 20, |size, limit| Error::Unrepresentable {
                what: format!("{size} {limit}"),
            })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot write this trace.dat: {} {}",
                65u64 << 20,
                64u64 << 20
            )
        );
    }

    #[test]
    fn parallel_map_keeps_the_order() {
        let out = parallel_map((0..100).collect(), |i: u32| i * 2);
        assert_eq!(out, (0..100).map(|i| i * 2).collect::<Vec<_>>());
        assert!(parallel_map(Vec::<u32>::new(), |i| i).is_empty());
    }

    #[test]
    fn the_zstd_version_is_dotted() {
        let v = library_version(Compression::Zstd);
        assert_eq!(v.split('.').count(), 3, "{v}");
    }
}
