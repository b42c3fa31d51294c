//! One k-way merge by time: records of several sources, each already in
//! time order (the CPUs of a ring buffer read live, or the CPUs of every
//! buffer of a trace.dat), put in one time order as `trace-cmd report`
//! does. Each source is an iterator of `(timestamp, item)`; ties go to
//! the source given first. Memory is one item per source: sources may
//! decode lazily, as they are reached.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::binary_heap::PeekMut;

/// The items of `sources` in order of (timestamp, source index).
#[derive(Debug)]
pub struct Merge<S, T> {
    sources: Vec<S>,
    /// Each source's next item, taken from it and not yet handed out.
    heads: Vec<Option<T>>,
    /// (timestamp, source) of every source that has a head.
    heap: BinaryHeap<Reverse<(u64, usize)>>,
}

impl<S, T> Merge<S, T>
where
    S: Iterator<Item = (u64, T)>,
{
    /// A merge of `sources`; the first item of each is taken now.
    pub fn new(mut sources: Vec<S>) -> Merge<S, T> {
        let mut heads = Vec::with_capacity(sources.len());
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (index, source) in sources.iter_mut().enumerate() {
            let head = source.next().map(|(ts, item)| {
                heap.push(Reverse((ts, index)));
                item
            });
            heads.push(head);
        }
        Merge {
            sources,
            heads,
            heap,
        }
    }

    /// The sources, in the order given.
    pub fn sources(&self) -> &[S] {
        &self.sources
    }
}

impl<S, T> Iterator for Merge<S, T>
where
    S: Iterator<Item = (u64, T)>,
{
    type Item = T;

    fn next(&mut self) -> Option<T> {
        let mut top = self.heap.peek_mut()?;
        let Reverse((_, index)) = *top;
        let item = self.heads[index].take();
        match self.sources[index].next() {
            // The source stays in the heap under its next timestamp: one
            // sift instead of a pop and a push.
            Some((ts, next)) => {
                self.heads[index] = Some(next);
                *top = Reverse((ts, index));
            }
            None => {
                PeekMut::pop(top);
            }
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_merged_by_time_and_ties_go_to_the_first_source() {
        let a = vec![(1, "a1"), (5, "a5"), (5, "a5'"), (9, "a9")];
        let b = vec![(0, "b0"), (5, "b5"), (10, "b10")];
        let c: Vec<(u64, &str)> = Vec::new();
        let merged: Vec<&str> =
            Merge::new(vec![a.into_iter(), b.into_iter(), c.into_iter()]).collect();
        assert_eq!(merged, ["b0", "a1", "a5", "a5'", "b5", "a9", "b10"]);
    }

    #[test]
    fn a_source_is_read_only_as_far_as_the_merge_has_gone() {
        let pulled = std::cell::Cell::new(0);
        let counted = (0..100u64).map(|ts| {
            pulled.set(pulled.get() + 1);
            (ts * 2, ts)
        });
        let other = (0..100u64).map(|ts| (ts * 2 + 1, ts));
        let mut merge = Merge::new(vec![
            Box::new(counted) as Box<dyn Iterator<Item = (u64, u64)>>,
            Box::new(other),
        ]);
        assert_eq!(pulled.get(), 1);
        for _ in 0..10 {
            merge.next();
        }
        // Ten items out: five of each source, and the sixth of the first
        // taken as its head.
        assert_eq!(pulled.get(), 6);
    }
}
