//! A bounded in-memory cache shared between threads, for front ends that read the same blobs
//! (or trees) again and again: a FUSE mount serves a file in 128 KiB requests from blobs of
//! up to 8 MiB, and a directory's tree is needed for every lookup in it.
//!
//! Least recently used entries go first once the total weight would pass the capacity. A
//! value being loaded is loaded once: a second caller for the same id waits for the first
//! instead of reading, decrypting and hashing the blob again (read-ahead threads and the
//! reader they run ahead of ask for the same blob at nearly the same moment).

use crate::Id;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex};

/// A loaded value shared between the loader and its waiters; errors travel as text, since
/// one failure is reported to every waiter.
type Outcome<V> = Result<V, String>;

struct Pending<V> {
    done: Mutex<Option<Outcome<V>>>,
    cv: Condvar,
}

struct Inner<V> {
    entries: HashMap<Id, (V, usize, u64)>,
    /// Use tick → id, oldest first.
    order: BTreeMap<u64, Id>,
    tick: u64,
    used: usize,
    loading: HashMap<Id, Arc<Pending<V>>>,
}

/// Values by id, at most `capacity` bytes of them by the weights given on insertion.
pub struct BoundedCache<V: Clone> {
    capacity: usize,
    inner: Mutex<Inner<V>>,
}

impl<V: Clone> BoundedCache<V> {
    pub fn new(capacity: usize) -> Self {
        BoundedCache {
            capacity,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: BTreeMap::new(),
                tick: 0,
                used: 0,
                loading: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<V>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.lock().used
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn get(&self, id: &Id) -> Option<V> {
        let mut g = self.lock();
        Self::touch(&mut g, id)
    }

    /// Is the value here already, or being loaded?
    pub fn has_or_loading(&self, id: &Id) -> bool {
        let g = self.lock();
        g.entries.contains_key(id) || g.loading.contains_key(id)
    }

    fn touch(g: &mut Inner<V>, id: &Id) -> Option<V> {
        g.tick += 1;
        let tick = g.tick;
        let (v, _, t) = g.entries.get_mut(id)?;
        let old = std::mem::replace(t, tick);
        let v = v.clone();
        g.order.remove(&old);
        g.order.insert(tick, *id);
        Some(v)
    }

    /// Keeps `v` (unless it alone is heavier than the whole cache), evicting the least
    /// recently used entries to make room.
    pub fn insert(&self, id: Id, v: V, weight: usize) {
        let mut g = self.lock();
        self.insert_locked(&mut g, id, v, weight);
    }

    fn insert_locked(&self, g: &mut Inner<V>, id: Id, v: V, weight: usize) {
        if weight > self.capacity {
            return;
        }
        if let Some((_, w, t)) = g.entries.remove(&id) {
            g.used -= w;
            g.order.remove(&t);
        }
        while g.used + weight > self.capacity {
            let Some((_, old)) = g.order.pop_first() else {
                break;
            };
            if let Some((_, w, _)) = g.entries.remove(&old) {
                g.used -= w;
            }
        }
        g.tick += 1;
        let tick = g.tick;
        g.entries.insert(id, (v, weight, tick));
        g.order.insert(tick, id);
        g.used += weight;
    }

    /// The cached value, or the one `load` returns (kept, weighed by `weight`). Concurrent
    /// callers for one id share a single `load`.
    pub fn get_or_load(
        &self,
        id: &Id,
        weight: impl Fn(&V) -> usize,
        load: impl FnOnce() -> crate::Result<V>,
    ) -> crate::Result<V> {
        let pending = {
            let mut g = self.lock();
            if let Some(v) = Self::touch(&mut g, id) {
                return Ok(v);
            }
            if let Some(p) = g.loading.get(id) {
                let p = p.clone();
                drop(g);
                return Ok(Self::wait(&p)?);
            }
            let p = Arc::new(Pending {
                done: Mutex::new(None),
                cv: Condvar::new(),
            });
            g.loading.insert(*id, p.clone());
            p
        };
        // A panicking loader must not leave waiters blocked forever.
        struct Abandon<'a, V: Clone>(&'a BoundedCache<V>, Id, Option<Arc<Pending<V>>>);
        impl<V: Clone> Drop for Abandon<'_, V> {
            fn drop(&mut self) {
                if let Some(p) = self.2.take() {
                    self.0.lock().loading.remove(&self.1);
                    *p.done.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(Err("loader failed".into()));
                    p.cv.notify_all();
                }
            }
        }
        let mut guard = Abandon(self, *id, Some(pending.clone()));
        let res = load();
        guard.2 = None;
        {
            let mut g = self.lock();
            g.loading.remove(id);
            if let Ok(v) = &res {
                let w = weight(v);
                self.insert_locked(&mut g, *id, v.clone(), w);
            }
        }
        let shared = match &res {
            Ok(v) => Ok(v.clone()),
            Err(e) => Err(format!("{e:#}")),
        };
        *pending.done.lock().unwrap_or_else(|e| e.into_inner()) = Some(shared);
        pending.cv.notify_all();
        res
    }

    fn wait(p: &Pending<V>) -> anyhow::Result<V> {
        let mut done = p.done.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(r) = done.as_ref() {
                return r.clone().map_err(anyhow::Error::msg);
            }
            done = p.cv.wait(done).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Id {
        Id::hash(&[n])
    }

    #[test]
    fn evicts_least_recently_used_within_capacity() {
        let c = BoundedCache::<Arc<[u8]>>::new(10);
        c.insert(id(1), Arc::from(vec![1u8; 4]), 4);
        c.insert(id(2), Arc::from(vec![2u8; 4]), 4);
        assert!(c.get(&id(1)).is_some());
        c.insert(id(3), Arc::from(vec![3u8; 4]), 4);
        assert!(c.get(&id(2)).is_none(), "2 was least recently used");
        assert!(c.get(&id(1)).is_some() && c.get(&id(3)).is_some());
        assert_eq!(c.used(), 8);
        c.insert(id(4), Arc::from(vec![4u8; 11]), 11);
        assert!(c.get(&id(4)).is_none(), "heavier than the cache");
        assert_eq!(c.used(), 8);
    }

    #[test]
    fn concurrent_loads_of_one_id_load_once() {
        let c = Arc::new(BoundedCache::<Arc<[u8]>>::new(100));
        let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..8 {
                let (c, loads) = (c.clone(), loads.clone());
                s.spawn(move || {
                    let v = c
                        .get_or_load(
                            &id(7),
                            |v| v.len(),
                            || {
                                loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                std::thread::sleep(std::time::Duration::from_millis(50));
                                Ok(Arc::from(vec![7u8; 3]))
                            },
                        )
                        .expect("load");
                    assert_eq!(&v[..], &[7, 7, 7]);
                });
            }
        });
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
        let e = c
            .get_or_load(
                &id(8),
                |v| v.len(),
                || Err(anyhow::anyhow!("broken pack").into()),
            )
            .expect_err("error");
        assert!(e.to_string().contains("broken pack"));
        assert!(!c.has_or_loading(&id(8)));
    }
}
