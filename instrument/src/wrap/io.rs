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
    }

    impl<S> PinnedDrop for TrackedIo<S> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.conn.close_because("socket dropped");
            this.conn.forget_reader();
        }
    }
}

/// Opens a connection for `stream` (labelled `label`, with an optional peer address) and
/// closes it when the socket closes. Use [`TrackedIo::connection`] to run the handler in its
/// scope. With the `enabled` feature off this only wraps the stream.
///
/// A `tokio::net::TcpStream` is also watched for a peer that left while nobody reads the
/// socket (a *zombie*, see the README), and gets TCP keepalive if configured.
pub fn track<S: 'static>(stream: S, label: &str, peer: Option<String>) -> TrackedIo<S> {
    TrackedIo::watched(stream, Connection::open(label, peer))
}

impl<S> TrackedIo<S> {
    /// Tracks `stream` as `conn`'s socket (its reads are watched; the socket itself is not
    /// looked at: see [`track`]).
    pub fn new(stream: S, conn: Connection) -> Self {
        conn.watch(None);
        TrackedIo {
            inner: stream,
            conn,
        }
    }

    /// [`TrackedIo::new`], watching the socket itself for zombies when it is a TCP stream.
    pub(crate) fn watched(stream: S, conn: Connection) -> Self
    where
        S: 'static,
    {
        conn.watch(Some(&stream));
        TrackedIo {
            inner: stream,
            conn,
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
        this.conn.note_reader();
        let before = buf.filled().len();
        let wanted = buf.remaining() > 0;
        let out = this.inner.poll_read(cx, buf);
        this.conn.note_read(out.is_pending());
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
