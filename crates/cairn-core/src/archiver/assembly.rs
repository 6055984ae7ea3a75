//! Directories assemble bottom-up as their entries arrive.
//!
//! The walk hands every entry of a directory a [`Slot`]. Entries arrive in any order and on
//! any thread: at once (unchanged files, links), from a reader (changed files), or from the
//! directory's own subdirectories finishing. Whichever thread fills the last slot stores the
//! directory's tree and passes its node up into the slot of the directory above. Nothing ever
//! waits for a directory, so walkers and readers never idle at directory boundaries and any
//! number of walkers can work on one tree.
//!
//! A slot that is dropped unfilled (an error, an interrupted backup, a panicking thread)
//! counts as an entry left out, so a directory always completes and the root always arrives.

use crate::format::tree::Node;
use crate::packer::lock;
use crate::Id;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A directory whose entries have all arrived.
pub(super) struct DirDone {
    pub node: Node,
    pub path: PathBuf,
    /// The directory's tree in the parent snapshot, if it was read.
    pub parent_tree: Option<Id>,
    /// Entries that were kept, in no particular order.
    pub entries: Vec<Node>,
}

/// Stores a finished directory's tree; returns its node with `subtree` set, or None to
/// leave the directory out.
pub(super) trait FinishDir: Sync {
    fn finish_dir(&self, dir: DirDone) -> Option<Node>;
}

struct DirState<'c> {
    finisher: &'c dyn FinishDir,
    /// Slots handed out and not yet filled, plus one held by the walker while it lists.
    remaining: AtomicUsize,
    inner: Mutex<DirInner<'c>>,
}

struct DirInner<'c> {
    node: Option<Node>,
    path: PathBuf,
    parent_tree: Option<Id>,
    entries: Vec<Option<Node>>,
    up: Option<Slot<'c>>,
}

enum To<'c> {
    Entry(Arc<DirState<'c>>, usize),
    Channel(Sender<Option<Node>>),
}

/// Where one node goes once it is known. Filled exactly once: by [`Slot::deliver`], or with
/// "left out" when dropped.
pub(super) struct Slot<'c> {
    to: Option<To<'c>>,
}

impl<'c> Slot<'c> {
    /// A slot whose node is received on the returned channel (for the snapshot's top level).
    pub fn channel() -> (Slot<'c>, Receiver<Option<Node>>) {
        let (tx, rx) = bounded(1);
        (
            Slot {
                to: Some(To::Channel(tx)),
            },
            rx,
        )
    }

    pub fn deliver(mut self, node: Option<Node>) {
        if let Some(to) = self.to.take() {
            arrive(to, node);
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some(to) = self.to.take() {
            arrive(to, None);
        }
    }
}

/// Fills a slot; finishing directories upwards as long as each was the last one missing.
/// A loop rather than recursion: a deep tree must not deepen the stack.
fn arrive(mut to: To<'_>, mut node: Option<Node>) {
    loop {
        let dir = match to {
            To::Channel(tx) => {
                let _ = tx.send(node);
                return;
            }
            To::Entry(dir, index) => {
                if let Some(n) = node.take() {
                    lock(&dir.inner).entries[index] = Some(n);
                }
                if dir.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
                    return;
                }
                dir
            }
        };
        let (done, up) = {
            let mut g = lock(&dir.inner);
            let entries = std::mem::take(&mut g.entries)
                .into_iter()
                .flatten()
                .collect();
            let up = g.up.take();
            let done = g.node.take().map(|node| DirDone {
                node,
                path: std::mem::take(&mut g.path),
                parent_tree: g.parent_tree,
                entries,
            });
            (done, up)
        };
        node = done.and_then(|d| dir.finisher.finish_dir(d));
        match up.and_then(|mut s| s.to.take()) {
            Some(next) => to = next,
            None => return,
        }
    }
}

/// A directory being listed: hands out one slot per entry.
pub(super) struct Dir<'c> {
    state: Arc<DirState<'c>>,
}

impl<'c> Dir<'c> {
    /// Starts a directory of `entries` entries whose node goes to `up` once complete. The
    /// returned guard stands for the listing itself: the directory cannot complete before it
    /// is delivered or dropped.
    pub fn new(
        finisher: &'c dyn FinishDir,
        node: Node,
        path: PathBuf,
        parent_tree: Option<Id>,
        entries: usize,
        up: Slot<'c>,
    ) -> (Dir<'c>, Slot<'c>) {
        let state = Arc::new(DirState {
            finisher,
            remaining: AtomicUsize::new(1),
            inner: Mutex::new(DirInner {
                node: Some(node),
                path,
                parent_tree,
                // One more than the entries: the listing guard's slot, always empty.
                entries: (0..=entries).map(|_| None).collect(),
                up: Some(up),
            }),
        });
        let guard = Slot {
            to: Some(To::Entry(state.clone(), entries)),
        };
        (Dir { state }, guard)
    }

    /// The slot for entry `index` (< the `entries` given to [`Dir::new`]).
    pub fn slot(&self, index: usize) -> Slot<'c> {
        self.state.remaining.fetch_add(1, Ordering::AcqRel);
        Slot {
            to: Some(To::Entry(self.state.clone(), index)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tree::NodeType;
    use std::sync::atomic::AtomicU64;

    /// Counts finished directories and names each after how many entries it got.
    struct Count(AtomicU64);
    impl FinishDir for Count {
        fn finish_dir(&self, mut d: DirDone) -> Option<Node> {
            self.0.fetch_add(1, Ordering::SeqCst);
            d.node.size = d.entries.len() as u64;
            Some(d.node)
        }
    }

    fn node(name: &str) -> Node {
        Node::new(name.as_bytes().to_vec(), NodeType::File)
    }

    #[test]
    fn completes_when_the_last_entry_arrives_in_any_order() {
        let fin = Count(AtomicU64::new(0));
        let (up, rx) = Slot::channel();
        let (dir, guard) = Dir::new(&fin, node("d"), PathBuf::from("/d"), None, 3, up);
        let (a, b, c) = (dir.slot(0), dir.slot(1), dir.slot(2));
        drop(dir);
        c.deliver(Some(node("c")));
        guard.deliver(None);
        a.deliver(Some(node("a")));
        assert!(
            rx.try_recv().is_err(),
            "finished before every entry arrived"
        );
        drop(b); // left out
        let got = rx.try_recv().expect("directory finished").expect("kept");
        assert_eq!(got.size, 2);
        assert_eq!(fin.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn nested_directories_finish_bottom_up_across_threads() {
        let fin = Count(AtomicU64::new(0));
        let (up, rx) = Slot::channel();
        let (root, guard) = Dir::new(&fin, node("root"), PathBuf::new(), None, 8, up);
        std::thread::scope(|s| {
            for i in 0..8 {
                let slot = root.slot(i);
                let fin = &fin;
                s.spawn(move || {
                    let (sub, g) = Dir::new(fin, node("sub"), PathBuf::new(), None, 100, slot);
                    for j in 0..100 {
                        sub.slot(j).deliver(Some(node("f")));
                    }
                    drop(g);
                });
            }
        });
        drop(root);
        assert!(rx.try_recv().is_err());
        drop(guard);
        let got = rx.recv().expect("root").expect("kept");
        assert_eq!(got.size, 8);
        assert_eq!(fin.0.load(Ordering::SeqCst), 9);
    }

    #[test]
    fn a_dropped_directory_still_reports_upwards() {
        let fin = Count(AtomicU64::new(0));
        let (up, rx) = Slot::channel();
        let (dir, guard) = Dir::new(&fin, node("d"), PathBuf::new(), None, 2, up);
        let s0 = dir.slot(0);
        drop((dir, guard));
        drop(s0);
        // Every slot left out: the directory itself still completes, empty.
        assert_eq!(rx.recv().expect("arrived").expect("kept").size, 0);
    }
}
