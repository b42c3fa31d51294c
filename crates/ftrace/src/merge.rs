//! Decoding a batch of sub-buffers and ordering their records by time
//! across CPUs, through the k-way merge of `kscope_traceevent::merge`
//! that `trace report` uses too. Records are not copied: an [`Item`]
//! points into the page it came from.

use kscope_traceevent::merge::Merge;
use kscope_traceevent::{PageError, PageLayout, SubBuffer};

use crate::session::RawPage;

/// A record or a lost-events mark, in time order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// One record: `pages[page].bytes[start..start + len]` is its payload.
    Record {
        /// Its timestamp, in trace clock units.
        ts: u64,
        /// Its CPU.
        cpu: u32,
        /// Index of its page in the batch.
        page: usize,
        /// Where its payload starts in the page.
        start: usize,
        /// Payload length.
        len: usize,
    },
    /// The kernel dropped events on `cpu` before this page.
    Lost {
        /// The page's timestamp.
        ts: u64,
        /// The CPU.
        cpu: u32,
        /// How many, when the kernel counted them.
        count: Option<u64>,
    },
}

impl Item {
    fn ts(&self) -> u64 {
        match *self {
            Item::Record { ts, .. } | Item::Lost { ts, .. } => ts,
        }
    }

    fn cpu(&self) -> u32 {
        match *self {
            Item::Record { cpu, .. } | Item::Lost { cpu, .. } => cpu,
        }
    }
}

/// A merged batch.
#[derive(Debug, Default)]
pub struct Merged {
    /// Records and lost-event marks in time order.
    pub items: Vec<Item>,
    /// Pages that did not decode whole, with their CPU; the records
    /// before the damage are kept.
    pub errors: Vec<(u32, PageError)>,
}

/// Decodes `pages` and orders everything by (timestamp, CPU), stably:
/// pages of one CPU must come in the order they were read, and items of
/// one CPU with the same timestamp keep that order. Errors are listed in
/// the order of the pages.
pub fn merge(pages: &[RawPage], layout: &PageLayout) -> Merged {
    let mut merged = Merged::default();
    for (index, page) in pages.iter().enumerate() {
        let sub = match SubBuffer::parse(&page.bytes, layout) {
            Ok(sub) => sub,
            Err(err) => {
                merged.errors.push((page.cpu, err));
                continue;
            }
        };
        if let Some(count) = sub.missed.lost() {
            merged.items.push(Item::Lost {
                ts: sub.timestamp,
                cpu: page.cpu,
                count,
            });
        }
        let base = page.bytes.as_ptr() as usize;
        for record in sub.records() {
            match record {
                Ok(record) => merged.items.push(Item::Record {
                    ts: record.timestamp,
                    cpu: page.cpu,
                    page: index,
                    start: record.data.as_ptr() as usize - base,
                    len: record.data.len(),
                }),
                Err(err) => {
                    merged.errors.push((page.cpu, err));
                    break;
                }
            }
        }
    }
    // Each CPU's items are one source of the merge, stably sorted by time
    // first (a lost-events mark or an absolute timestamp can step back):
    // with ties going to the lower CPU, the result is the batch stably
    // sorted by (timestamp, CPU).
    let mut by_cpu: std::collections::BTreeMap<u32, Vec<(u64, Item)>> = Default::default();
    for item in merged.items.drain(..) {
        by_cpu
            .entry(item.cpu())
            .or_default()
            .push((item.ts(), item));
    }
    let sources: Vec<Vec<(u64, Item)>> = by_cpu
        .into_values()
        .map(|mut items| {
            items.sort_by_key(|(ts, _)| *ts);
            items
        })
        .collect();
    merged.items = Merge::new(sources.into_iter().map(Vec::into_iter).collect()).collect();
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4 KiB sub-buffer at `ts` holding one 8-byte record per delta,
    /// with the missed-events flag and a stored count when `missed` is set.
    fn page(ts: u64, deltas: &[u32], missed: Option<u64>) -> Vec<u8> {
        let mut data = Vec::new();
        for (i, delta) in deltas.iter().enumerate() {
            data.extend_from_slice(&(2 | (delta << 5)).to_le_bytes());
            data.extend_from_slice(&(i as u64).to_le_bytes());
        }
        let mut commit = data.len() as u64;
        if missed.is_some() {
            commit |= (1 << 31) | (1 << 30);
        }
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&ts.to_le_bytes());
        bytes.extend_from_slice(&commit.to_le_bytes());
        bytes.extend_from_slice(&data);
        if let Some(count) = missed {
            bytes.extend_from_slice(&count.to_le_bytes());
        }
        bytes.resize(4096, 0);
        bytes
    }

    #[test]
    fn records_of_several_cpus_come_out_in_time_order() {
        let pages = [
            RawPage {
                cpu: 0,
                bytes: page(100, &[0, 50], None),
            },
            RawPage {
                cpu: 1,
                bytes: page(120, &[0, 5], None),
            },
        ];
        let merged = merge(&pages, &PageLayout::X86_64);
        assert!(merged.errors.is_empty(), "{:?}", merged.errors);
        let order: Vec<(u64, u32)> = merged
            .items
            .iter()
            .map(|i| match *i {
                Item::Record { ts, cpu, .. } => (ts, cpu),
                Item::Lost { .. } => panic!("no loss here"),
            })
            .collect();
        assert_eq!(order, [(100, 0), (120, 1), (125, 1), (150, 0)]);
    }

    #[test]
    fn a_page_after_lost_events_is_preceded_by_a_lost_mark() {
        let pages = [RawPage {
            cpu: 1,
            bytes: page(500, &[0], Some(1234)),
        }];
        let merged = merge(&pages, &PageLayout::X86_64);
        assert_eq!(
            merged.items[0],
            Item::Lost {
                ts: 500,
                cpu: 1,
                count: Some(1234)
            }
        );
        assert!(matches!(
            merged.items[1],
            Item::Record {
                ts: 500,
                cpu: 1,
                len: 8,
                ..
            }
        ));
    }

    #[test]
    fn a_damaged_page_is_reported_and_the_rest_kept() {
        let mut bad = page(10, &[0], None);
        bad[8] = 0xff; // commit far beyond the page
        bad[9] = 0xff;
        let pages = [
            RawPage { cpu: 0, bytes: bad },
            RawPage {
                cpu: 1,
                bytes: page(20, &[0], None),
            },
        ];
        let merged = merge(&pages, &PageLayout::X86_64);
        assert_eq!(merged.errors.len(), 1);
        assert_eq!(merged.items.len(), 1);
    }
}
