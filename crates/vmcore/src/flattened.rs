//! makedumpfile's flattened format: the kdump-compressed file written as a
//! stream, so that it can go through a pipe (`makedumpfile -F`, QEMU's
//! `dump-guest-memory -z/-l/-s`). A 4096-byte header (`makedumpfile`
//! signature, then the big-endian type 1 and version) is followed by
//! records, each a big-endian (offset, size) pair and `size` bytes that
//! belong at `offset` of the kdump file, and an end marker (-1, -1).
//! `makedumpfile -R` writes the records into a (sparse) file in stream
//! order; [`FlatIndex`] indexes them instead, later records winning where
//! they overlap, and serves reads of the kdump file from the stream.

use std::collections::BTreeMap;

use crate::Error;
use kscope_elf::Reader;

/// The signature at the start of a flattened stream.
pub const SIGNATURE: &[u8] = b"makedumpfile";
/// `MAX_SIZE_MDF_HEADER`: the header's size; the first record follows.
const HEADER_SIZE: u64 = 4096;
/// `TYPE_FLAT_HEADER`.
const TYPE_FLAT: i64 = 1;

/// A run of the kdump file's bytes that one record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    /// Offset in the kdump file.
    start: u64,
    /// Length in bytes.
    len: u64,
    /// Offset of the bytes in the stream.
    stream_offset: u64,
}

/// Where each byte of the kdump file is in the flattened stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct FlatIndex {
    /// Disjoint pieces in offset order.
    pieces: Vec<Piece>,
    /// The kdump file's size: the end of the furthest record.
    size: u64,
    /// Number of records in the stream.
    records: u64,
}

impl FlatIndex {
    /// Indexes the records of the stream `bytes`.
    pub(crate) fn build(bytes: &[u8]) -> Result<FlatIndex, Error> {
        let r = Reader::new(bytes, 0);
        let signature = r.slice(0, 16, "the flattened header's signature")?;
        if &signature[..SIGNATURE.len()] != SIGNATURE {
            return Err(Error::at(0, "the signature \"makedumpfile\""));
        }
        let kind = r.i64_be(16, "the flattened header's type")?;
        if kind != TYPE_FLAT {
            return Err(Error::at(16, format!("flattened type 1, found {kind}")));
        }
        r.slice(0, HEADER_SIZE, "the 4096-byte flattened header")?;
        let mut records = Vec::new();
        let mut pos = HEADER_SIZE;
        loop {
            let offset = r.i64_be(pos, "a flattened record's offset (or the end marker)")?;
            let size = r.i64_be(pos + 8, "a flattened record's size (or the end marker)")?;
            if offset == -1 && size == -1 {
                break;
            }
            if offset < 0 || size <= 0 {
                return Err(Error::at(
                    pos,
                    format!(
                        "a record of a positive size at a positive offset, or the end marker (-1, -1); found ({offset}, {size})"
                    ),
                ));
            }
            let data = pos + 16;
            r.slice(data, size as u64, "a flattened record's data")?;
            (offset as u64)
                .checked_add(size as u64)
                .ok_or_else(|| Error::at(pos, "a record that ends before 2^64"))?;
            records.push(Piece {
                start: offset as u64,
                len: size as u64,
                stream_offset: data,
            });
            pos = data + size as u64;
        }
        Ok(FlatIndex::from_records(&records))
    }

    /// The disjoint pieces of `records`, where a later record hides what
    /// an earlier one wrote at the same offsets. Records are taken from
    /// the last; `covered` holds the merged ranges already taken, so each
    /// record walks only the ranges it swallows, and the whole build is
    /// O(n log n).
    fn from_records(records: &[Piece]) -> FlatIndex {
        let mut covered: BTreeMap<u64, u64> = BTreeMap::new();
        let mut pieces = Vec::new();
        let mut size = 0;
        for rec in records.iter().rev() {
            let (a, b) = (rec.start, rec.start + rec.len);
            size = size.max(b);
            let mut overlapping: Vec<(u64, u64)> = Vec::new();
            if let Some((&s, &e)) = covered.range(..a).next_back()
                && e > a
            {
                overlapping.push((s, e));
            }
            overlapping.extend(covered.range(a..b).map(|(&s, &e)| (s, e)));
            let mut pos = a;
            for &(s, e) in &overlapping {
                if s > pos {
                    pieces.push(piece_of(rec, pos, s));
                }
                pos = pos.max(e);
            }
            if pos < b {
                pieces.push(piece_of(rec, pos, b));
            }
            let merged_start = overlapping.first().map_or(a, |r| r.0.min(a));
            let merged_end = overlapping.last().map_or(b, |r| r.1.max(b));
            for (s, _) in overlapping {
                covered.remove(&s);
            }
            covered.insert(merged_start, merged_end);
        }
        pieces.sort_by_key(|p| p.start);
        FlatIndex {
            pieces,
            size,
            records: records.len() as u64,
        }
    }

    /// The kdump file's size.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The number of records of the stream.
    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// Fills `buf` with the kdump file's bytes at `offset`. Bytes that no
    /// record wrote read as zeros, as in the sparse file `makedumpfile -R`
    /// makes; reading past the file's end is an error naming `what`.
    pub(crate) fn read(
        &self,
        stream: &[u8],
        offset: u64,
        buf: &mut [u8],
        what: &str,
    ) -> Result<(), Error> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.size) {
            return Err(Error::at(
                offset,
                format!(
                    "{what} ({} bytes; the kdump file in the flattened stream has {} from there)",
                    buf.len(),
                    self.size.saturating_sub(offset)
                ),
            ));
        }
        buf.fill(0);
        let first = self.pieces.partition_point(|p| p.start + p.len <= offset);
        let mut pos = offset;
        let end = offset + buf.len() as u64;
        for p in &self.pieces[first..] {
            if p.start >= end {
                break;
            }
            let from = pos.max(p.start);
            let to = end.min(p.start + p.len);
            let src = (p.stream_offset + (from - p.start)) as usize;
            let dst = (from - offset) as usize;
            let n = (to - from) as usize;
            buf[dst..dst + n].copy_from_slice(&stream[src..src + n]);
            pos = to;
        }
        Ok(())
    }
}

fn piece_of(rec: &Piece, from: u64, to: u64) -> Piece {
    Piece {
        start: from,
        len: to - from,
        stream_offset: rec.stream_offset + (from - rec.start),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flattened stream of `records` (offset, bytes).
    fn stream(records: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let mut out = vec![0u8; 4096];
        out[..12].copy_from_slice(SIGNATURE);
        out[16..24].copy_from_slice(&1i64.to_be_bytes());
        out[24..32].copy_from_slice(&1i64.to_be_bytes());
        for (offset, data) in records {
            out.extend_from_slice(&(*offset as i64).to_be_bytes());
            out.extend_from_slice(&(data.len() as i64).to_be_bytes());
            out.extend_from_slice(data);
        }
        out.extend_from_slice(&(-1i64).to_be_bytes());
        out.extend_from_slice(&(-1i64).to_be_bytes());
        out
    }

    /// What `makedumpfile -R` would write: each record in stream order.
    fn rearranged(records: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let mut file = Vec::new();
        for (offset, data) in records {
            let end = *offset as usize + data.len();
            if file.len() < end {
                file.resize(end, 0);
            }
            file[*offset as usize..end].copy_from_slice(data);
        }
        file
    }

    #[test]
    fn overlapping_records_read_like_the_rearranged_file() {
        // A small pseudo-random generator: the same records every run.
        let mut seed = 0x2545f4914f6cdd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..200 {
            let count = 1 + next(12);
            let records: Vec<(u64, Vec<u8>)> = (0..count)
                .map(|i| {
                    let offset = next(300);
                    let len = 1 + next(80) as usize;
                    (offset, vec![(round * 16 + i + 1) as u8; len])
                })
                .collect();
            let bytes = stream(&records);
            let index = FlatIndex::build(&bytes).unwrap();
            let file = rearranged(&records);
            assert_eq!(index.size(), file.len() as u64);
            assert_eq!(index.records(), count);
            let mut got = vec![0xee; file.len()];
            index.read(&bytes, 0, &mut got, "all").unwrap();
            assert_eq!(got, file, "round {round}: {records:?}");
            let mut part = vec![0; 7];
            if file.len() >= 17 {
                index.read(&bytes, 10, &mut part, "part").unwrap();
                assert_eq!(part, file[10..17]);
            }
            assert!(
                index
                    .read(&bytes, file.len() as u64 - 1, &mut part, "past")
                    .is_err()
            );
        }
    }

    #[test]
    fn malformed_streams_are_errors() {
        let good = stream(&[(0, vec![1; 10])]);
        assert!(FlatIndex::build(&good).is_ok());
        let mut bad = good.clone();
        bad[0] = b'M';
        assert!(
            FlatIndex::build(&bad)
                .unwrap_err()
                .to_string()
                .contains("signature")
        );
        let mut bad = good.clone();
        bad[23] = 2;
        assert!(
            FlatIndex::build(&bad)
                .unwrap_err()
                .to_string()
                .contains("type 1")
        );
        // No end marker, a cut record, a zero size, a negative offset.
        assert!(FlatIndex::build(&good[..good.len() - 16]).is_err());
        assert!(FlatIndex::build(&good[..4096 + 16 + 5]).is_err());
        assert!(FlatIndex::build(&stream(&[(0, vec![])])).is_err());
        let mut bad = good.clone();
        bad[4096] = 0x80;
        assert!(FlatIndex::build(&bad).is_err());
        // A record far away makes a large sparse file, not an allocation.
        let mut far = good.clone();
        far[4096..4104].copy_from_slice(&(i64::MAX - 2).to_be_bytes());
        let index = FlatIndex::build(&far).unwrap();
        assert_eq!(index.size(), i64::MAX as u64 + 8);
        let mut buf = [9; 4];
        index.read(&far, 1 << 40, &mut buf, "a hole").unwrap();
        assert_eq!(buf, [0; 4]);
        assert!(FlatIndex::build(&good[..100]).is_err());
    }
}
