//! Task events wait here instead of taking the collector's lock: the spawn and terminate hooks
//! of tagged tasks push and go on, and never wait for a snapshot's copy under the lock.
//!
//! Whoever takes the lock next applies them first, in the order they were pushed, each at the
//! time it was pushed (`Collector::lock`): an event sent directly (a close, a snapshot's tick)
//! is applied after every task event that happened before it, so the state sees the same order
//! as if every event had taken the lock. The queue's own lock is held only for a push or for
//! swapping two vectors, never while events are applied. A push past [`SOFT_CAP`] waiting
//! events applies them itself if the collector's lock is free (`try_lock`: never waiting for
//! it; the work stays on the thread whose caches hold the events), the clock thread applies
//! what is left every 10 ms, and past [`HARD_CAP`] a push waits for the lock: the queue is
//! bounded. Measured (callgrind, `hooks` bench): the same instructions per tagged task as
//! taking the lock for each event.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Waiting events past which a push drains, if the lock is free.
pub(super) const SOFT_CAP: usize = 256;
/// Waiting events past which a push waits for the lock and drains.
pub(super) const HARD_CAP: usize = 256 * 1024;

/// The capacity a drained vector keeps for the next burst.
const KEPT_CAPACITY: usize = 4096;

/// A FIFO of `(event, time)` with many producers; drained under the collector's lock. Its own
/// lock is held only for a push or a swap of two vectors, never while events are applied.
pub(super) struct Queue<T> {
    inbox: Mutex<Vec<(T, u64)>>,
    /// The drained vector, kept for its capacity (only the drain, under the collector's lock,
    /// touches it).
    spare: Mutex<Vec<(T, u64)>>,
    /// The inbox's length, written under its lock: a drain that reads 0 has nothing to miss.
    waiting: AtomicUsize,
}

impl<T> Queue<T> {
    pub(super) fn new() -> Self {
        Queue {
            inbox: Mutex::new(Vec::new()),
            spare: Mutex::new(Vec::new()),
            waiting: AtomicUsize::new(0),
        }
    }

    fn inbox(&self) -> MutexGuard<'_, Vec<(T, u64)>> {
        self.inbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `ev` at time `at`; returns how many events wait now.
    pub(super) fn push(&self, ev: T, at: u64) -> usize {
        // (Not through `push_unless`: its closures cost copies of the event, which is large.)
        let mut inbox = self.inbox();
        self.append(&mut inbox, ev, at)
    }

    /// Queues the event `make` builds, at time `at`, unless `folded` took it into the last
    /// waiting event (which it may change); returns how many events wait now. Only the last
    /// event may take it, so no other event's place changes relative to this one's.
    #[inline]
    pub(super) fn push_unless(
        &self,
        folded: impl FnOnce(&mut T) -> bool,
        make: impl FnOnce() -> T,
        at: u64,
    ) -> usize {
        let mut inbox = self.inbox();
        if let Some((last, _)) = inbox.last_mut()
            && folded(last)
        {
            return inbox.len();
        }
        self.append(&mut inbox, make(), at)
    }

    #[inline(always)]
    fn append(&self, inbox: &mut Vec<(T, u64)>, ev: T, at: u64) -> usize {
        if inbox.len() == inbox.capacity() {
            // The queue's growth is leakscope's memory, never the pushing connection's.
            let _g = crate::tag::untracked();
            inbox.reserve(1);
        }
        inbox.push((ev, at));
        let n = inbox.len();
        self.waiting.store(n, Ordering::SeqCst);
        n
    }

    /// Hands every waiting event, in order, to `apply` (which empties the batch). Call it
    /// holding the lock the events are for, so no two drains interleave.
    pub(super) fn drain(&self, apply: impl FnOnce(&mut Vec<(T, u64)>)) {
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut batch = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        {
            let mut inbox = self.inbox();
            std::mem::swap(&mut *inbox, &mut *batch);
            self.waiting.store(0, Ordering::SeqCst);
        }
        apply(&mut batch);
        batch.clear();
        // A burst's capacity is not kept (the queue's memory stays bounded when idle).
        batch.shrink_to(KEPT_CAPACITY);
    }

    /// How many events wait (a hint: read without the lock).
    pub(super) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    /// The model: every operation applied in program order. The queue: pushes wait, a direct
    /// operation drains first (as `Collector::lock` does), a final drain (a snapshot) ends.
    fn through_queue(ops: &[(bool, u32)]) -> Vec<(u32, u64)> {
        let q = Queue::new();
        let applied = Mutex::new(Vec::new());
        for (i, &(queued, v)) in ops.iter().enumerate() {
            let at = i as u64;
            if queued {
                q.push(v, at);
            } else {
                let mut log = applied.lock().unwrap();
                q.drain(|b| log.extend(b.drain(..)));
                log.push((v, at));
            }
        }
        let mut log = applied.lock().unwrap();
        q.drain(|b| log.extend(b.drain(..)));
        assert_eq!(q.waiting(), 0);
        std::mem::take(&mut *log)
    }

    proptest! {
        #[test]
        fn applies_in_program_order_each_at_its_time(
            ops in proptest::collection::vec((any::<bool>(), any::<u32>()), 0..200)
        ) {
            let model: Vec<(u32, u64)> =
                ops.iter().enumerate().map(|(i, &(_, v))| (v, i as u64)).collect();
            prop_assert_eq!(through_queue(&ops), model);
        }
    }

    /// (task, kind) pairs: 0 a start, 1 an end, 2 a start with its end folded in. An end
    /// folds into its task's start when that is the last waiting.
    fn fold(last: &mut (u32, u8), ev: (u32, u8)) -> bool {
        let folds = ev.1 == 1 && *last == (ev.0, 0);
        if folds {
            last.1 = 2;
        }
        folds
    }

    proptest! {
        /// Folding loses no event and moves none: expanded, the applied events are the pushed
        /// ones in program order, and only an end right after its own start was folded.
        #[test]
        fn a_fold_keeps_every_event_in_its_place(
            ops in proptest::collection::vec((0u32..4, any::<bool>(), any::<bool>()), 0..200)
        ) {
            let q = Queue::new();
            let mut applied = Vec::new();
            let mut pushed = Vec::new();
            for &(task, end, drain) in &ops {
                let ev = (task, u8::from(end));
                pushed.push(ev);
                q.push_unless(|last| fold(last, ev), || ev, 0);
                if drain {
                    q.drain(|b| applied.extend(b.drain(..).map(|(e, _)| e)));
                }
            }
            q.drain(|b| applied.extend(b.drain(..).map(|(e, _)| e)));
            let mut expanded = Vec::new();
            for &(task, kind) in &applied {
                if kind == 2 {
                    expanded.extend([(task, 0), (task, 1)]);
                } else {
                    expanded.push((task, kind));
                }
            }
            prop_assert_eq!(expanded, pushed);
        }
    }

    /// Many producers: each producer's events in its order, none lost, and an event pushed
    /// before a direct operation (happens-before through a channel) is applied before it.
    #[test]
    fn producers_keep_their_order_and_a_direct_event_comes_after_what_preceded_it() {
        const PRODUCERS: u32 = 4;
        const EACH: u32 = 20_000;
        let q = Arc::new(Queue::new());
        let lock = Arc::new(Mutex::new(Vec::<(u32, u32)>::new()));
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let threads: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let (q, lock, done_tx) = (q.clone(), lock.clone(), done_tx.clone());
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        if q.push((p, i), 0) > SOFT_CAP
                            && let Ok(mut log) = lock.try_lock()
                        {
                            q.drain(|b| log.extend(b.drain(..).map(|(e, _)| e)));
                        }
                    }
                    // Told after its last push: the direct event below must see all of them.
                    done_tx.send(p).unwrap();
                })
            })
            .collect();
        for _ in 0..PRODUCERS {
            let p = done_rx.recv().unwrap();
            let mut log = lock.lock().unwrap();
            q.drain(|b| log.extend(b.drain(..).map(|(e, _)| e)));
            log.push((p, u32::MAX)); // the direct event
        }
        for t in threads {
            t.join().unwrap();
        }
        let log = lock.lock().unwrap();
        assert_eq!(log.len() as u32, PRODUCERS * (EACH + 1));
        for p in 0..PRODUCERS {
            let mine: Vec<u32> = log.iter().filter(|e| e.0 == p).map(|e| e.1).collect();
            let expected: Vec<u32> = (0..EACH).chain([u32::MAX]).collect();
            assert_eq!(
                mine, expected,
                "producer {p}: in order, the direct event last"
            );
        }
    }
}
