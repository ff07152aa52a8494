//! Connection scopes: [`Connection`], [`scope`] and the [`Scoped`] future.
//!
//! "Disabled" is a value: a `Connection` holds its live side or nothing, in every build, like
//! `tracing::Span::none()`. Whether the `enabled` feature is on is decided once, in
//! `backend::open` (`live.rs` or `off.rs`); nothing below looks at the feature.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::backend::{self, Inner};
use crate::peer::PeerIn;

/// A handle to one tracked connection. Cheap to clone.
///
/// Most code never builds one by hand: the axum wrappers, [`crate::io::track`] and [`scope`]
/// open and close connections. With the `enabled` feature off (or when the connection is not
/// tracked) it is an empty value and every method does nothing.
#[derive(Clone)]
pub struct Connection {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id())
            .finish()
    }
}

impl Connection {
    /// Opens a connection labelled `label` (a route, a listener name) with an optional peer.
    pub fn open(label: &str, peer: Option<String>) -> Connection {
        Connection {
            inner: backend::open(label, peer.map(PeerIn::Text)),
        }
    }

    /// [`Connection::open`] with the peer's address, formatted only if something shows it.
    #[cfg_attr(not(all(feature = "enabled", feature = "axum")), allow(dead_code))]
    pub(crate) fn open_addr(label: &str, peer: Option<std::net::SocketAddr>) -> Connection {
        Connection {
            inner: backend::open(label, peer.map(PeerIn::Addr)),
        }
    }

    /// The connection whose code runs on this thread right now (a handle that does not close
    /// it when dropped), if any.
    pub fn current() -> Option<Connection> {
        backend::current().map(|inner| Connection { inner: Some(inner) })
    }

    /// leakscope's id for this connection (`None` when disabled or not tracked).
    pub fn id(&self) -> Option<u64> {
        self.inner.as_deref().map(Inner::id)
    }

    /// Renames the connection (e.g. to the route once it is known).
    pub fn set_label(&self, label: &str) {
        if let Some(i) = &self.inner {
            i.set_label(label);
        }
    }

    /// Records the peer address.
    pub fn set_peer(&self, peer: String) {
        if let Some(i) = &self.inner {
            i.set_peer(peer);
        }
    }

    /// Stops tracking this connection and forgets it (for a tool's own traffic, such as the
    /// dashboard's requests behind a tracked listener). It is counted once, in
    /// `totals.connections_ignored`; allocations it still owns go to the untracked bucket.
    pub fn ignore(&self) {
        if let Some(i) = &self.inner {
            i.ignore();
        }
    }

    /// Marks the socket closed now. Idempotent: the first close wins.
    pub fn close(&self) {
        self.close_because("closed by the application");
    }

    /// Marks the socket closed with a reason shown in the dashboard.
    pub fn close_because(&self, reason: &'static str) {
        if let Some(i) = &self.inner {
            i.close(reason);
        }
    }

    /// Runs `fut` as this connection's code: tasks it spawns and bytes it allocates are the
    /// connection's. The connection stays open when `fut` ends.
    pub fn scope<F: Future>(&self, fut: F) -> Scoped<F> {
        Scoped {
            fut,
            conn: self.clone(),
            close_on_exit: false,
        }
    }

    /// Runs `f` synchronously as this connection's code.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.inner {
            Some(i) => i.run(f),
            None => f(),
        }
    }

    /// The connection's tag (none when not tracked).
    #[cfg(feature = "enabled")]
    pub(crate) fn tag(&self) -> crate::ids::Tag {
        self.inner
            .as_deref()
            .map_or(crate::ids::Tag::NONE, Inner::tag)
    }

    /// A wrapper that sees this connection's reads took its socket (`stream`: the socket
    /// itself, watched for zombies if it is a `tokio::net::TcpStream`).
    pub(crate) fn watch(&self, stream: Option<&dyn std::any::Any>) {
        if let Some(i) = &self.inner {
            i.watch(stream);
        }
    }

    /// Its socket was polled for reading (`pending`: a reader now waits on it).
    #[inline]
    pub(crate) fn note_read(&self, pending: bool) {
        if let Some(i) = &self.inner {
            i.note_read(pending);
        }
    }

    /// Its socket was read (see `tag::explicit`).
    #[inline]
    pub(crate) fn note_reader(&self) {
        if let Some(i) = &self.inner {
            i.note_reader();
        }
    }

    /// Its socket is gone.
    pub(crate) fn forget_reader(&self) {
        if let Some(i) = &self.inner {
            i.forget_reader();
        }
    }
}

/// Opens a connection labelled `label`, runs `fut` as its code, and closes the connection
/// when `fut` completes or is dropped. For servers without a wrapper of their own
/// (tokio-tungstenite, a raw protocol):
///
/// ```no_run
/// # async fn handle(_s: tokio::net::TcpStream) {}
/// # async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
/// loop {
///     let (stream, peer) = listener.accept().await?;
///     tokio::spawn(leakscope::scope("tcp", Some(peer.to_string()), handle(stream)));
/// }
/// # }
/// ```
pub fn scope<F: Future>(label: &str, peer: Option<String>, fut: F) -> Scoped<F> {
    Scoped {
        fut,
        conn: Connection::open(label, peer),
        close_on_exit: true,
    }
}

pin_project_lite::pin_project! {
    /// A future running as one connection's code. See [`Connection::scope`] and [`scope`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Scoped<F> {
        #[pin]
        fut: F,
        conn: Connection,
        close_on_exit: bool,
    }

    impl<F> PinnedDrop for Scoped<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.close_on_exit {
                this.conn.close_because("scope ended");
            }
        }
    }
}

impl<F> std::fmt::Debug for Scoped<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scoped").field("conn", &self.conn).finish()
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Some(inner) = this.conn.inner.as_deref() else {
            return this.fut.poll(cx);
        };
        let out = inner.poll(|| this.fut.poll(cx));
        if out.is_ready() && *this.close_on_exit {
            this.conn.close_because("scope ended");
        }
        out
    }
}
