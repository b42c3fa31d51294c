//! A bounded least-recently-used cache of decompressed pages, keyed by
//! page frame number. A hit moves nothing but two indices; a miss past the
//! capacity reuses the buffer of the least recently used page, so a warm
//! cache allocates nothing.

use std::collections::HashMap;

const NONE: usize = usize::MAX;

struct Slot {
    pfn: u64,
    prev: usize,
    next: usize,
    data: Box<[u8]>,
}

/// An LRU cache of at most `capacity` pages of `page_size` bytes.
pub(crate) struct PageCache {
    page_size: usize,
    capacity: usize,
    slots: Vec<Slot>,
    index: HashMap<u64, usize>,
    /// Most recently used.
    head: usize,
    /// Least recently used.
    tail: usize,
    hits: u64,
    misses: u64,
}

impl PageCache {
    pub(crate) fn new(page_size: usize, capacity: usize) -> PageCache {
        PageCache {
            page_size,
            capacity: capacity.max(1),
            slots: Vec::new(),
            index: HashMap::new(),
            head: NONE,
            tail: NONE,
            hits: 0,
            misses: 0,
        }
    }

    /// The cached page `pfn`, now the most recently used.
    #[cfg(test)]
    fn get(&mut self, pfn: u64) -> Option<&[u8]> {
        let Some(&i) = self.index.get(&pfn) else {
            self.misses += 1;
            return None;
        };
        self.hits += 1;
        self.unlink(i);
        self.push_front(i);
        Some(&self.slots[i].data)
    }

    /// The cached page `pfn`, or the page that `fill` makes of a free or
    /// evicted buffer, then cached.
    pub(crate) fn get_or_insert<E>(
        &mut self,
        pfn: u64,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Result<&[u8], E> {
        if let Some(&i) = self.index.get(&pfn) {
            self.hits += 1;
            self.unlink(i);
            self.push_front(i);
            return Ok(&self.slots[i].data);
        }
        self.misses += 1;
        self.insert(pfn, fill)
    }

    /// Makes room for page `pfn`, fills it with `fill` and caches it when
    /// `fill` succeeds. Returns the cached page.
    fn insert<E>(
        &mut self,
        pfn: u64,
        fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Result<&[u8], E> {
        let i = if self.slots.len() < self.capacity {
            self.slots.push(Slot {
                pfn,
                prev: NONE,
                next: NONE,
                data: vec![0; self.page_size].into_boxed_slice(),
            });
            self.slots.len() - 1
        } else {
            let i = self.tail;
            self.unlink(i);
            self.index.remove(&self.slots[i].pfn);
            i
        };
        if let Err(e) = fill(&mut self.slots[i].data) {
            // The slot stays free: the least recently used end.
            self.slots[i].pfn = u64::MAX;
            self.push_back(i);
            return Err(e);
        }
        self.slots[i].pfn = pfn;
        self.index.insert(pfn, i);
        self.push_front(i);
        Ok(&self.slots[i].data)
    }

    /// (hits, misses) so far.
    pub(crate) fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = (self.slots[i].prev, self.slots[i].next);
        match prev {
            NONE => self.head = next,
            p => self.slots[p].next = next,
        }
        match next {
            NONE => self.tail = prev,
            n => self.slots[n].prev = prev,
        }
        self.slots[i].prev = NONE;
        self.slots[i].next = NONE;
    }

    fn push_front(&mut self, i: usize) {
        self.slots[i].next = self.head;
        self.slots[i].prev = NONE;
        if self.head != NONE {
            self.slots[self.head].prev = i;
        }
        self.head = i;
        if self.tail == NONE {
            self.tail = i;
        }
    }

    fn push_back(&mut self, i: usize) {
        self.slots[i].prev = self.tail;
        self.slots[i].next = NONE;
        if self.tail != NONE {
            self.slots[self.tail].next = i;
        }
        self.tail = i;
        if self.head == NONE {
            self.head = i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(v: u8) -> impl FnOnce(&mut [u8]) -> Result<(), ()> {
        move |page| {
            page.fill(v);
            Ok(())
        }
    }

    #[test]
    fn evicts_the_least_recently_used_page() {
        let mut cache = PageCache::new(4, 3);
        for pfn in 0..3 {
            cache.insert(pfn, fill(pfn as u8)).unwrap();
        }
        assert_eq!(cache.get(0), Some(&[0u8; 4][..]));
        cache.insert(3, fill(3)).unwrap();
        assert!(cache.get(1).is_none(), "1 was the least recently used");
        assert_eq!(cache.get(0), Some(&[0u8; 4][..]));
        assert_eq!(cache.get(2), Some(&[2u8; 4][..]));
        assert_eq!(cache.get(3), Some(&[3u8; 4][..]));
        assert_eq!(cache.slots.len(), 3);
        assert_eq!(cache.stats(), (4, 1));
    }

    #[test]
    fn a_failed_fill_caches_nothing_and_frees_its_slot() {
        let mut cache = PageCache::new(4, 2);
        cache.insert(1, fill(1)).unwrap();
        cache.insert(2, fill(2)).unwrap();
        assert!(cache.insert(3, |_| Err("bad")).is_err());
        assert!(cache.get(3).is_none());
        assert!(cache.get(1).is_none(), "1 made room");
        assert_eq!(cache.get(2), Some(&[2u8; 4][..]));
        cache.insert(4, fill(4)).unwrap();
        assert_eq!(
            cache.get(2),
            Some(&[2u8; 4][..]),
            "the failed slot was reused first"
        );
        assert_eq!(cache.get(4), Some(&[4u8; 4][..]));
        let mut one = PageCache::new(4, 0);
        one.insert(9, fill(9)).unwrap();
        one.insert(8, fill(8)).unwrap();
        assert!(one.get(9).is_none());
        assert_eq!(one.get(8), Some(&[8u8; 4][..]));
    }
}
