//! A tracked `axum::serve` listener: each accepted connection is tracked from accept, so the
//! HTTP connection task and everything it spawns belong to it.

use axum::serve::Listener;

/// Wraps a listener for `axum::serve`. Every accepted socket opens a connection (label
/// `"http"`, peer from the accept); in `hooks` mode the connection task axum spawns for it is
/// the connection's, and a [`WebSocketUpgrade`](super::WebSocketUpgrade) on that connection
/// reuses it (one TCP connection, one entry). The connection closes with the socket.
///
/// axum's `ConnectInfo<SocketAddr>` is implemented only for its own listener types, so this
/// wrapper alone gives none (the peer address is recorded in the snapshot). axum's `tap_io`
/// adapter gives it back, for handlers and for leakscope's dashboard, which serves loopback
/// peers only when no token is configured:
///
/// ```no_run
/// use axum::serve::ListenerExt;
/// # async fn run(app: axum::Router) {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
/// let listener = leakscope::axum::track_listener(listener).tap_io(|_| ());
/// let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
/// axum::serve(listener, app).await.unwrap();
/// # }
/// ```
pub fn track_listener<L>(listener: L) -> impl Listener<Addr = L::Addr>
where
    L: Listener,
    L::Addr: std::fmt::Debug,
{
    #[cfg(feature = "enabled")]
    {
        imp::TrackedListener { inner: listener }
    }
    #[cfg(not(feature = "enabled"))]
    listener
}

#[cfg(feature = "enabled")]
mod imp {
    use axum::serve::Listener;

    use crate::Connection;
    use crate::wrap::io::TrackedIo;

    pub(super) struct TrackedListener<L> {
        pub(super) inner: L,
    }

    impl<L> Listener for TrackedListener<L>
    where
        L: Listener,
        L::Addr: std::fmt::Debug,
    {
        type Io = TrackedIo<L::Io>;
        type Addr = L::Addr;

        async fn accept(&mut self) -> (Self::Io, Self::Addr) {
            let (io, addr) = self.inner.accept().await;
            let conn = Connection::open("http", Some(format!("{addr:?}")));
            crate::tag::handoff::set_accepted(conn.tag());
            (TrackedIo::watched(io, conn), addr)
        }

        fn local_addr(&self) -> std::io::Result<Self::Addr> {
            self.inner.local_addr()
        }
    }
}
