//! A shared last-in-first-out queue of directories to walk.
//!
//! Last in, first out keeps the walk close to depth first, so few directories are open at
//! once (memory stays proportional to the tree's depth times its width, not its size), and
//! sibling files are read close together.

use std::sync::{Condvar, Mutex};

pub(super) struct WorkStack<T> {
    state: Mutex<State<T>>,
    wake: Condvar,
}

struct State<T> {
    tasks: Vec<T>,
    /// Tasks taken and not yet done: they may push more.
    active: usize,
    /// No more tasks will come from outside the workers.
    closed: bool,
}

impl<T> WorkStack<T> {
    pub fn new() -> WorkStack<T> {
        WorkStack {
            state: Mutex::new(State {
                tasks: Vec::new(),
                active: 0,
                closed: false,
            }),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn push(&self, task: T) {
        self.lock().tasks.push(task);
        self.wake.notify_one();
    }

    /// After this, workers stop once the stack is empty and no task is running.
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
    }

    /// Runs tasks until the stack is closed and drained. Every worker calls this.
    pub fn work(&self, mut run: impl FnMut(T)) {
        let mut g = self.lock();
        loop {
            if let Some(task) = g.tasks.pop() {
                g.active += 1;
                drop(g);
                // Counted done even if `run` panics, so the other workers can still finish.
                let done = Done(self);
                run(task);
                drop(done);
                g = self.lock();
                continue;
            }
            if g.closed && g.active == 0 {
                return;
            }
            g = self.wake.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

struct Done<'a, T>(&'a WorkStack<T>);

impl<T> Drop for Done<'_, T> {
    fn drop(&mut self) {
        let mut g = self.0.lock();
        g.active -= 1;
        if g.active == 0 && g.tasks.is_empty() {
            self.0.wake.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn tasks_that_push_tasks_all_run_and_workers_stop() {
        let stack = WorkStack::new();
        let ran = AtomicUsize::new(0);
        stack.push(0u32);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    stack.work(|depth| {
                        ran.fetch_add(1, Ordering::SeqCst);
                        if depth < 10 {
                            stack.push(depth + 1);
                            stack.push(depth + 1);
                        }
                    })
                });
            }
            stack.close();
        });
        // A full binary tree of depth 10.
        assert_eq!(ran.load(Ordering::SeqCst), (1 << 11) - 1);
    }

    #[test]
    fn workers_wait_for_tasks_until_closed() {
        let stack = WorkStack::new();
        let ran = AtomicUsize::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                stack.work(|_: u8| {
                    ran.fetch_add(1, Ordering::SeqCst);
                })
            });
            std::thread::sleep(std::time::Duration::from_millis(20));
            stack.push(1);
            stack.push(2);
            stack.close();
        });
        assert_eq!(ran.load(Ordering::SeqCst), 2);
    }
}
