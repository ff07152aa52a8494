//! Tracking any `AsyncRead + AsyncWrite` stream: the connection closes at read EOF, a read or
//! write error, shutdown, or when the stream is dropped, whichever comes first.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::Connection;

pin_project_lite::pin_project! {
    /// A stream whose connection closes with the socket. See [`track`].
    pub struct TrackedIo<S> {
        #[pin]
        inner: S,
        conn: Connection,
        // The task that first polled this socket (explicit-spawn mode), 0 before.
        owner: u64,
    }

    impl<S> PinnedDrop for TrackedIo<S> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.conn.close_because("socket dropped");
            #[cfg(feature = "enabled")]
            owners::forget(*this.owner);
        }
    }
}

/// Opens a connection for `stream` (labelled `label`, with an optional peer address) and
/// closes it when the socket closes. Use [`TrackedIo::connection`] to run the handler in its
/// scope. With the `enabled` feature off this only wraps the stream.
pub fn track<S>(stream: S, label: &str, peer: Option<String>) -> TrackedIo<S> {
    TrackedIo::new(stream, Connection::open(label, peer))
}

impl<S> TrackedIo<S> {
    /// Tracks `stream` as `conn`'s socket.
    pub fn new(stream: S, conn: Connection) -> Self {
        TrackedIo {
            inner: stream,
            conn,
            owner: 0,
        }
    }

    /// The connection this socket belongs to.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped stream, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: AsyncRead> AsyncRead for TrackedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        #[cfg(feature = "enabled")]
        owners::note(this.owner, this.conn);
        let before = buf.filled().len();
        let wanted = buf.remaining() > 0;
        let out = this.inner.poll_read(cx, buf);
        match &out {
            Poll::Ready(Ok(())) if wanted && buf.filled().len() == before => {
                this.conn.close_because("read EOF")
            }
            Poll::Ready(Err(_)) => this.conn.close_because("read error"),
            _ => {}
        }
        out
    }
}

impl<S: AsyncWrite> AsyncWrite for TrackedIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let out = this.inner.poll_write(cx, buf);
        if let Poll::Ready(Err(_)) = &out {
            this.conn.close_because("write error");
        }
        out
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let out = this.inner.poll_write_vectored(cx, bufs);
        if let Poll::Ready(Err(_)) = &out {
            this.conn.close_because("write error");
        }
        out
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let out = this.inner.poll_flush(cx);
        if let Poll::Ready(Err(_)) = &out {
            this.conn.close_because("write error");
        }
        out
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let out = this.inner.poll_shutdown(cx);
        if out.is_ready() {
            this.conn.close_because("shutdown");
        }
        out
    }
}

// -- socket -> task, in explicit-spawn mode ----------------------------------------------
//
// Without hooks nothing tags the task that serves a tracked socket (axum's connection task),
// so a WebSocket upgrade inside it could not find the TCP connection it belongs to. The first
// task to read from the socket is remembered as its owner; `Connection::current` falls back
// to it.

#[cfg(feature = "enabled")]
pub(crate) mod owners {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::Connection;

    static OWNERS: Mutex<Option<HashMap<u64, u64>>> = Mutex::new(None);
    static LEN: AtomicUsize = AtomicUsize::new(0);

    fn with<R>(f: impl FnOnce(&mut HashMap<u64, u64>) -> R) -> R {
        let _g = crate::tag::untracked();
        let mut m = OWNERS.lock().unwrap_or_else(|p| p.into_inner());
        let r = f(m.get_or_insert_with(HashMap::new));
        LEN.store(m.as_ref().map_or(0, HashMap::len), Ordering::Relaxed);
        r
    }

    /// On a socket's first read: remember the reading task as its owner (explicit mode only).
    #[inline]
    pub(crate) fn note(owner: &mut u64, conn: &Connection) {
        if *owner != 0 {
            return;
        }
        let Some(id) = tokio::task::try_id().map(crate::tag::task_id_u64) else {
            *owner = u64::MAX; // not in a task: never look again
            return;
        };
        *owner = u64::MAX;
        // A task polled by a hooked runtime is tagged by the hooks; only others need this.
        if crate::tag::polling() != 0 || conn.tag() == 0 {
            return;
        }
        *owner = id;
        with(|m| m.insert(id, conn.tag()));
    }

    pub(crate) fn forget(owner: u64) {
        if owner != 0 && owner != u64::MAX {
            with(|m| m.remove(&owner));
        }
    }

    /// The tag of the tracked socket the current task serves, or 0.
    pub(crate) fn current() -> u64 {
        if LEN.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let Some(id) = tokio::task::try_id().map(crate::tag::task_id_u64) else {
            return 0;
        };
        with(|m| m.get(&id).copied().unwrap_or(0))
    }
}

// -- accept -> spawn hand-off -------------------------------------------------------------
//
// A server's accept loop spawns the connection's task right after `accept` returns, in the
// same poll. The listener wrapper leaves the new connection's tag here, keyed by the accepting
// task; the spawn hook hands it to the next task that task spawns on this thread.

#[cfg(feature = "enabled")]
mod handoff {
    use std::cell::Cell;

    thread_local! {
        static ACCEPTED: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }

    fn parent() -> u64 {
        tokio::task::try_id().map_or(0, crate::tag::task_id_u64)
    }

    /// Called by the listener wrapper as `accept` returns.
    pub(crate) fn set_accepted(tag: u64) {
        let p = parent();
        let _ = ACCEPTED.try_with(|c| c.set((p, tag)));
    }

    /// Called by the spawn hook when the spawning code is untagged.
    #[inline]
    pub(crate) fn take_accepted_for_spawn() -> u64 {
        if ACCEPTED.try_with(|c| c.get().1).unwrap_or(0) == 0 {
            return 0;
        }
        let p = parent();
        ACCEPTED
            .try_with(|c| {
                let (owner, tag) = c.get();
                if tag != 0 && owner == p {
                    c.set((0, 0));
                    tag
                } else {
                    0
                }
            })
            .unwrap_or(0)
    }
}

#[cfg(feature = "enabled")]
#[allow(unused_imports)]
pub(crate) use handoff::{set_accepted, take_accepted_for_spawn};
