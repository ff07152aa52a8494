//! The live side of a [`crate::Connection`] (feature `enabled`): its id and tag, its tracing
//! span, and the events it sends. `off.rs` is the same surface with the feature off.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::watch::{self, ReadWatch};
use crate::collector::{self, Applied, Event};
use crate::ids::{ConnId, Tag, TaskId};
use crate::peer::{Peer, PeerIn};
use crate::tag::{self, explicit, handoff};

pub(crate) struct Inner {
    id: ConnId,
    tag: Tag,
    closed: AtomicBool,
    /// Owners close the connection when their last handle drops; handles attached to a
    /// connection someone else opened do not.
    owner: bool,
    span: tracing::Span,
    /// The task that first read its socket (explicit-spawn mode), 0 before, `u64::MAX` once
    /// there is nothing to remember.
    reader: AtomicU64,
    /// Its socket's reads, as the wrappers see them (shared with the collector).
    reads: Arc<ReadWatch>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.owner && !self.closed.load(Ordering::Relaxed) {
            send(|| Event::Closed {
                id: self.id,
                reason: "every handle dropped",
            });
        }
    }
}

/// Sends an event built by `ev`, untracked: what the event allocates (a label, a peer) is
/// kept by the collector and must never count as the connection's retained bytes.
fn send(ev: impl FnOnce() -> Event) {
    let _g = tag::untracked();
    collector::get().send(ev());
}

fn inner(
    id: ConnId,
    tag: Tag,
    owner: bool,
    span: tracing::Span,
    reads: Arc<ReadWatch>,
) -> Arc<Inner> {
    Arc::new(Inner {
        id,
        tag,
        closed: AtomicBool::new(false),
        owner,
        span,
        reader: AtomicU64::new(0),
        reads,
    })
}

/// Opens a connection.
pub(crate) fn open(label: &str, peer: Option<PeerIn>) -> Option<Arc<Inner>> {
    let _g = tag::untracked();
    let reads = Arc::new(ReadWatch::default());
    let peer = peer.map(Peer::new);
    let shown = peer.clone();
    let opened = collector::get().send(Event::Opened {
        label: label.into(),
        peer,
        runtime: runtime_id(),
        reads: Some(reads.clone()),
    });
    let Applied::Opened { id, tag } = opened else {
        unreachable!("an open is answered with the new connection")
    };
    // The macro evaluates its fields only for a span some subscriber wants: an address is
    // formatted here only then (and kept for the snapshots, see `crate::peer`).
    let span = tracing::info_span!(
        target: "leakscope",
        "conn",
        conn.id = id.0,
        peer = &*shown.as_ref().map_or_else(|| Arc::from("-"), Peer::text),
        label = label
    );
    Some(inner(id, tag, true, span, reads))
}

/// The connection whose code runs here (a handle that does not close it when dropped).
pub(crate) fn current() -> Option<Arc<Inner>> {
    let mut t = tag::current();
    if t.is_none() {
        t = explicit::reader_tag();
    }
    if t.is_none() {
        return None;
    }
    let id = collector::get().conn_of_tag(t)?;
    let _g = tag::untracked();
    let span = tracing::info_span!(target: "leakscope", "conn", conn.id = id.0);
    // A handle to a connection someone else opened: its reads are that opener's to watch.
    Some(inner(id, t, false, span, Arc::default()))
}

impl Inner {
    pub(crate) fn id(&self) -> u64 {
        self.id.0
    }

    pub(crate) fn tag(&self) -> Tag {
        self.tag
    }

    pub(crate) fn set_label(&self, label: &str) {
        send(|| Event::Relabelled {
            id: self.id,
            label: label.into(),
        });
    }

    pub(crate) fn set_peer(&self, peer: String) {
        send(|| Event::PeerSet {
            id: self.id,
            peer: peer.into(),
        });
    }

    pub(crate) fn ignore(&self) {
        self.closed.store(true, Ordering::Relaxed);
        send(|| Event::Ignored { id: self.id });
    }

    /// The first close wins.
    pub(crate) fn close(&self, reason: &'static str) {
        if !self.closed.swap(true, Ordering::Relaxed) {
            send(|| Event::Closed {
                id: self.id,
                reason,
            });
        }
    }

    /// Whether it is closed (as far as this handle knows).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Its peer left and nobody read the socket since `since_ms` (the zombie watcher).
    pub(crate) fn close_zombie(&self, since_ms: u64) {
        if !self.closed.swap(true, Ordering::Relaxed) {
            send(|| Event::Zombie {
                id: self.id,
                since_ms,
                reason: "peer left, never read",
            });
        }
    }

    /// Its socket's reads.
    pub(crate) fn reads(&self) -> &ReadWatch {
        &self.reads
    }

    /// A wrapper that sees the socket's reads took it; `stream`, if it is a
    /// `tokio::net::TcpStream`, is watched for zombies.
    pub(crate) fn watch(self: &Arc<Self>, stream: Option<&dyn std::any::Any>) {
        if !self.owner {
            return;
        }
        self.reads.start();
        if let Some(s) = stream {
            watch::socket(self, s);
        }
    }

    /// The socket was polled for reading (`pending`: a reader now waits on it).
    #[inline]
    pub(crate) fn note_read(&self, pending: bool) {
        self.reads.polled(pending);
    }

    /// Runs `f` synchronously as this connection's code.
    pub(crate) fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let _g = tag::enter(self.tag);
        f()
    }

    /// Runs one poll of the connection's future as its code, inside its span.
    #[inline]
    pub(crate) fn poll<R>(&self, f: impl FnOnce() -> R) -> R {
        let _span = self.span.enter();
        // Polled as this connection's task by leakscope's hooks (the common case), or inside
        // an outer scope of it: the tag is set and a region is open already.
        if tag::current() == self.tag {
            return f();
        }
        check_hooks();
        // The tag guard is an allocator region: leaving the outermost one flushes.
        let _tag = tag::enter(self.tag);
        f()
    }

    /// On a read of its socket: remembers the reading task (explicit-spawn mode, once).
    #[inline]
    pub(crate) fn note_reader(&self) {
        if self.reader.load(Ordering::Relaxed) != 0 {
            return;
        }
        let task = TaskId::current();
        self.reader.store(u64::MAX, Ordering::Relaxed);
        // A task polled by a hooked runtime is tagged by the hooks; only others need this.
        if let Some(task) = task
            && handoff::polling().is_none()
            && !self.tag.is_none()
        {
            self.reader.store(task.0, Ordering::Relaxed);
            explicit::note_reader(task, self.tag);
        }
    }

    /// The socket is gone: forgets its reading task.
    pub(crate) fn forget_reader(&self) {
        let r = self.reader.swap(u64::MAX, Ordering::Relaxed);
        if r != 0 && r != u64::MAX {
            explicit::forget_reader(TaskId(r));
        }
    }
}

/// The id of the tokio runtime running this code, when tokio can tell (`--cfg tokio_unstable`).
pub(crate) fn runtime_id() -> Option<u64> {
    #[cfg(tokio_unstable)]
    {
        tokio::runtime::Handle::try_current()
            .ok()
            .map(|h| crate::ids::id_u64(&h.id()))
    }
    #[cfg(not(tokio_unstable))]
    None
}

/// Notices a scope polled where the hooks do not see it: inside a tokio task, the before-poll
/// hook has always announced the task being polled.
#[inline]
fn check_hooks() {
    #[cfg(tokio_unstable)]
    if let Some(id) = TaskId::current()
        && handoff::polling() != Some(id)
    {
        collector::get().mark_hooks_missing();
    }
}
