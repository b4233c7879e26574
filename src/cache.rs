//! The bounded compile cache both backends keep their kernels in.
//!
//! - **Bounded, LRU**: at most `capacity` entries ([`DEFAULT_CAPACITY`], or the
//!   `FUSEBOX_KERNEL_CACHE` environment variable read when a backend opens, or
//!   `set_cache_capacity` on a backend); inserting past it evicts the least recently used entry
//!   and counts an eviction. A kernel still in use by a caller stays alive through its `Arc`;
//!   eviction only drops the cache's reference.
//! - **Compile once**: concurrent requests for the same key wait for the one compilation in
//!   flight (a [`OnceLock`] per entry) instead of compiling it again, so `compilations` counts
//!   distinct kernels even under contention.
//! - **Failures are not cached**: an entry whose compilation failed is removed, so a transient
//!   failure (a lost device) is retried by the next request.
//!
//! Entries are found by a 64-bit hash and then compared with `==` on the full key, so a hash
//! collision can never return the wrong kernel.
use crate::error::Result;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Kernels a backend keeps compiled by default.
pub const DEFAULT_CAPACITY: usize = 1024;

/// The capacity a new backend starts with: `FUSEBOX_KERNEL_CACHE` if it holds a positive
/// integer, else [`DEFAULT_CAPACITY`].
pub fn default_capacity() -> usize {
    std::env::var("FUSEBOX_KERNEL_CACHE")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_CAPACITY)
}

/// What a cache has done (counters only grow).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounters {
    /// Compilations run (each distinct key once while it stays cached).
    pub compilations: u64,
    /// Requests answered by an entry already present or being compiled by another thread.
    pub hits: u64,
    /// Entries dropped to stay within the capacity.
    pub evictions: u64,
}

type Cell<V> = Arc<OnceLock<Result<V>>>;

struct Slot<K, V> {
    key: K,
    cell: Cell<V>,
    last_used: u64,
}

struct Inner<K, V> {
    slots: HashMap<u64, Vec<Slot<K, V>>>,
    len: usize,
    capacity: usize,
    /// Logical clock for recency.
    tick: u64,
    counters: CacheCounters,
}

/// A bounded map from kernels to their compilations (see the module docs).
pub struct KernelCache<K, V> {
    inner: Mutex<Inner<K, V>>,
}

impl<K: PartialEq + Clone, V: Clone> KernelCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        KernelCache {
            inner: Mutex::new(Inner {
                slots: HashMap::new(),
                len: 0,
                capacity: capacity.max(1),
                tick: 0,
                counters: CacheCounters::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K, V>> {
        // Every update under the lock leaves the map consistent (one push, one removal, counter
        // increments), so a lock poisoned by a panicking thread is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached value for `key` (whose hash is `hash`), or `compile()`'s, computed once even
    /// when several threads ask at the same time. Returns the value and whether it was a hit.
    pub fn get_or_compile(
        &self,
        hash: u64,
        key: &K,
        compile: impl FnOnce() -> Result<V>,
    ) -> Result<(V, bool)> {
        let cell = {
            let mut g = self.lock();
            g.tick += 1;
            let tick = g.tick;
            let found = g
                .slots
                .get_mut(&hash)
                .and_then(|v| v.iter_mut().find(|s| s.key == *key))
                .map(|s| {
                    s.last_used = tick;
                    s.cell.clone()
                });
            match found {
                Some(cell) => cell,
                None => {
                    let cell: Cell<V> = Arc::new(OnceLock::new());
                    g.insert(hash, key.clone(), cell.clone(), tick);
                    cell
                }
            }
        };
        // Compile outside the lock; other threads asking for this key block here until done.
        let mut compiled_here = false;
        let result = cell
            .get_or_init(|| {
                compiled_here = true;
                compile()
            })
            .clone();
        let mut g = self.lock();
        if compiled_here {
            g.counters.compilations += 1;
        } else {
            g.counters.hits += 1;
        }
        if result.is_err() && compiled_here {
            g.remove_cell(hash, &cell);
        }
        result.map(|v| (v, !compiled_here))
    }

    /// Whether `key` has a finished compilation in the cache (without touching its recency).
    pub fn contains(&self, hash: u64, key: &K) -> bool {
        self.lock().slots.get(&hash).is_some_and(|v| {
            v.iter()
                .any(|s| s.key == *key && matches!(s.cell.get(), Some(Ok(_))))
        })
    }

    /// Change the bound, evicting least recently used entries down to it (at least 1).
    pub fn set_capacity(&self, capacity: usize) {
        let mut g = self.lock();
        g.capacity = capacity.max(1);
        while g.len > g.capacity {
            g.evict_lru();
        }
    }

    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// Entries currently cached.
    pub fn len(&self) -> usize {
        self.lock().len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn counters(&self) -> CacheCounters {
        self.lock().counters
    }
}

impl<K, V> Inner<K, V> {
    fn insert(&mut self, hash: u64, key: K, cell: Cell<V>, tick: u64) {
        while self.len >= self.capacity {
            self.evict_lru();
        }
        self.slots.entry(hash).or_default().push(Slot {
            key,
            cell,
            last_used: tick,
        });
        self.len += 1;
    }

    /// Drop the least recently used entry (a linear scan: the capacity is small next to the
    /// cost of the compilation that triggers it).
    fn evict_lru(&mut self) {
        let oldest = self
            .slots
            .iter()
            .flat_map(|(h, v)| v.iter().enumerate().map(move |(i, s)| (s.last_used, *h, i)))
            .min();
        let Some((_, hash, i)) = oldest else {
            self.len = 0;
            return;
        };
        if let Some(v) = self.slots.get_mut(&hash) {
            v.swap_remove(i);
            if v.is_empty() {
                self.slots.remove(&hash);
            }
        }
        self.len = self.len.saturating_sub(1);
        self.counters.evictions += 1;
    }

    fn remove_cell(&mut self, hash: u64, cell: &Cell<V>) {
        if let Some(v) = self.slots.get_mut(&hash) {
            if let Some(i) = v.iter().position(|s| Arc::ptr_eq(&s.cell, cell)) {
                v.swap_remove(i);
                self.len = self.len.saturating_sub(1);
            }
            if v.is_empty() {
                self.slots.remove(&hash);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn evicts_least_recently_used() {
        let c: KernelCache<u32, u32> = KernelCache::new(2);
        let get = |k: u32| c.get_or_compile(k as u64 % 2, &k, || Ok(k * 10)).unwrap();
        assert_eq!(get(1), (10, false));
        assert_eq!(get(2), (20, false));
        assert_eq!(get(1), (10, true)); // 1 is now more recent than 2
        assert_eq!(get(3), (30, false)); // evicts 2
        assert_eq!(c.len(), 2);
        assert_eq!(get(1), (10, true));
        assert_eq!(get(2), (20, false)); // was evicted: compiled again, evicts 3
        assert_eq!(
            c.counters(),
            CacheCounters {
                compilations: 4,
                hits: 2,
                evictions: 2
            }
        );
        c.set_capacity(1);
        assert_eq!(c.len(), 1);
        assert_eq!(get(2), (20, true));
        assert_eq!(c.counters().evictions, 3);
    }

    #[test]
    fn hash_collisions_compare_keys() {
        let c: KernelCache<&str, &str> = KernelCache::new(8);
        assert_eq!(c.get_or_compile(7, &"a", || Ok("A")).unwrap(), ("A", false));
        assert_eq!(c.get_or_compile(7, &"b", || Ok("B")).unwrap(), ("B", false));
        assert_eq!(c.get_or_compile(7, &"a", || Ok("X")).unwrap(), ("A", true));
    }

    #[test]
    fn failures_are_not_cached() {
        let c: KernelCache<u8, u8> = KernelCache::new(8);
        let r = c.get_or_compile(0, &0, || {
            Err(Error::Compile {
                message: "transient".into(),
            })
        });
        assert!(r.is_err());
        assert_eq!(c.len(), 0);
        assert_eq!(c.get_or_compile(0, &0, || Ok(5)).unwrap(), (5, false));
    }

    #[test]
    fn concurrent_requests_compile_once() {
        let c: Arc<KernelCache<u8, u8>> = Arc::new(KernelCache::new(8));
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (c, runs) = (c.clone(), runs.clone());
                std::thread::spawn(move || {
                    c.get_or_compile(1, &1, || {
                        runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        Ok(9)
                    })
                    .unwrap()
                    .0
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), 9);
        }
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(c.counters().compilations, 1);
        assert_eq!(c.counters().hits, 7);
    }
}
