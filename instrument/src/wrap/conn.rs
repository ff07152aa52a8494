//! Connection scopes: [`Connection`], [`scope`] and the [`Scoped`] future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

#[cfg(feature = "enabled")]
use std::sync::Arc;
#[cfg(feature = "enabled")]
use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(feature = "enabled")]
use crate::{collector, tag};

/// A handle to one tracked connection. Cheap to clone.
///
/// Most code never builds one by hand: the axum wrappers, [`crate::wrap::io::track`] and [`scope`]
/// open and close connections. With the `enabled` feature off it is an empty value and every
/// method does nothing.
#[derive(Clone)]
pub struct Connection {
    #[cfg(feature = "enabled")]
    inner: Option<Arc<Inner>>,
}

#[cfg(feature = "enabled")]
struct Inner {
    id: u64,
    tag: u64,
    closed: AtomicBool,
    /// Owners close the connection when their last handle drops; handles attached to a
    /// connection someone else opened do not.
    owner: bool,
    span: tracing::Span,
}

#[cfg(feature = "enabled")]
impl Drop for Inner {
    fn drop(&mut self) {
        if self.owner && !self.closed.load(Ordering::Relaxed) {
            collector::get().send(collector::Event::Closed {
                id: self.id,
                reason: "every handle dropped",
            });
        }
    }
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
        #[cfg(feature = "enabled")]
        {
            let _g = tag::untracked();
            let opened = collector::get().send(collector::Event::Opened {
                label: label.into(),
                peer: peer.as_deref().map(Into::into),
                runtime: runtime_id(),
            });
            let collector::Applied::Opened { id, tag } = opened else {
                unreachable!("an open is answered with the new connection")
            };
            let span = tracing::info_span!(
                target: "leakscope",
                "conn",
                conn.id = id,
                peer = peer.as_deref().unwrap_or("-"),
                label = label
            );
            Connection {
                inner: Some(Arc::new(Inner {
                    id,
                    tag,
                    closed: AtomicBool::new(false),
                    owner: true,
                    span,
                })),
            }
        }
        #[cfg(not(feature = "enabled"))]
        {
            let _ = (label, peer);
            Connection {}
        }
    }

    /// The connection whose code runs on this thread right now (a handle that does not close
    /// it when dropped), if any.
    pub fn current() -> Option<Connection> {
        #[cfg(feature = "enabled")]
        {
            let mut t = tag::current();
            if t == tag::UNTAGGED {
                t = crate::wrap::io::owners::current();
            }
            if t == tag::UNTAGGED {
                return None;
            }
            let id = collector::get().conn_of_tag(t)?;
            let _g = tag::untracked();
            Some(Connection {
                inner: Some(Arc::new(Inner {
                    id,
                    tag: t,
                    closed: AtomicBool::new(false),
                    owner: false,
                    span: tracing::info_span!(target: "leakscope", "conn", conn.id = id),
                })),
            })
        }
        #[cfg(not(feature = "enabled"))]
        None
    }

    /// leakscope's id for this connection (`None` when disabled or not tracked).
    pub fn id(&self) -> Option<u64> {
        #[cfg(feature = "enabled")]
        {
            self.inner.as_ref().map(|i| i.id)
        }
        #[cfg(not(feature = "enabled"))]
        None
    }

    /// Renames the connection (e.g. to the route once it is known).
    pub fn set_label(&self, label: &str) {
        #[cfg(feature = "enabled")]
        if let Some(i) = &self.inner {
            collector::get().send(collector::Event::Relabelled {
                id: i.id,
                label: label.into(),
            });
        }
        #[cfg(not(feature = "enabled"))]
        let _ = label;
    }

    /// Records the peer address.
    pub fn set_peer(&self, peer: String) {
        #[cfg(feature = "enabled")]
        if let Some(i) = &self.inner {
            collector::get().send(collector::Event::PeerSet {
                id: i.id,
                peer: peer.into(),
            });
        }
        #[cfg(not(feature = "enabled"))]
        let _ = peer;
    }

    /// Stops tracking this connection and forgets it, as if it had never been opened (for a
    /// tool's own traffic, such as the dashboard's requests behind a tracked listener).
    /// Allocations it still owns go to the untracked bucket.
    pub fn ignore(&self) {
        #[cfg(feature = "enabled")]
        if let Some(i) = &self.inner {
            i.closed.store(true, Ordering::Relaxed);
            collector::get().send(collector::Event::Ignored { id: i.id });
        }
    }

    /// Marks the socket closed now. Idempotent: the first close wins.
    pub fn close(&self) {
        self.close_because("closed by the application");
    }

    /// Marks the socket closed with a reason shown in the dashboard.
    pub fn close_because(&self, reason: &'static str) {
        #[cfg(feature = "enabled")]
        if let Some(i) = &self.inner {
            if !i.closed.swap(true, Ordering::Relaxed) {
                collector::get().send(collector::Event::Closed { id: i.id, reason });
            }
        }
        #[cfg(not(feature = "enabled"))]
        let _ = reason;
    }

    /// Runs `fut` as this connection's code: tasks it spawns and bytes it allocates are the
    /// connection's. The connection stays open when `fut` ends.
    pub fn scope<F: Future>(&self, fut: F) -> Scoped<F> {
        Scoped {
            fut,
            state: ScopeState {
                #[cfg(feature = "enabled")]
                conn: self.clone(),
                #[cfg(feature = "enabled")]
                close_on_exit: false,
            },
        }
    }

    /// Runs `f` synchronously as this connection's code.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(feature = "enabled")]
        {
            let _g = self.inner.as_ref().map(|i| tag::enter(i.tag));
            f()
        }
        #[cfg(not(feature = "enabled"))]
        f()
    }

    #[cfg(feature = "enabled")]
    pub(crate) fn tag(&self) -> u64 {
        self.inner.as_ref().map_or(tag::UNTAGGED, |i| i.tag)
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
    let conn = Connection::open(label, peer);
    #[cfg(feature = "enabled")]
    {
        Scoped {
            fut,
            state: ScopeState {
                conn,
                close_on_exit: true,
            },
        }
    }
    #[cfg(not(feature = "enabled"))]
    {
        let _ = conn;
        Scoped {
            fut,
            state: ScopeState {},
        }
    }
}

pin_project_lite::pin_project! {
    /// A future running as one connection's code. See [`Connection::scope`] and [`scope`].
    pub struct Scoped<F> {
        #[pin]
        fut: F,
        state: ScopeState,
    }

    impl<F> PinnedDrop for Scoped<F> {
        fn drop(this: Pin<&mut Self>) {
            #[cfg(feature = "enabled")]
            {
                let st = this.project().state;
                if st.close_on_exit {
                    st.conn.close_because("scope ended");
                }
            }
            #[cfg(not(feature = "enabled"))]
            let _ = this;
        }
    }
}

struct ScopeState {
    #[cfg(feature = "enabled")]
    conn: Connection,
    #[cfg(feature = "enabled")]
    close_on_exit: bool,
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        #[cfg(feature = "enabled")]
        {
            let Some(inner) = this.state.conn.inner.as_ref() else {
                return this.fut.poll(cx);
            };
            check_hooks();
            let _span = inner.span.enter();
            let _tag = tag::enter(inner.tag);
            // The tag guard is an allocator region: leaving the outermost one flushes.
            let out = this.fut.poll(cx);
            if out.is_ready() && this.state.close_on_exit {
                this.state.conn.close_because("scope ended");
            }
            out
        }
        #[cfg(not(feature = "enabled"))]
        this.fut.poll(cx)
    }
}

/// The id of the tokio runtime running this code, when tokio can tell (`--cfg tokio_unstable`).
#[cfg(feature = "enabled")]
pub(crate) fn runtime_id() -> Option<u64> {
    #[cfg(tokio_unstable)]
    {
        tokio::runtime::Handle::try_current()
            .ok()
            .map(|h| tag::id_u64(&h.id()))
    }
    #[cfg(not(tokio_unstable))]
    None
}

/// Notices a runtime without leakscope's poll hooks: inside a tokio task, the before-poll hook
/// has always announced the task being polled.
#[cfg(feature = "enabled")]
#[inline]
fn check_hooks() {
    #[cfg(tokio_unstable)]
    {
        let c = collector::get();
        if let Some(id) = tokio::task::try_id() {
            if tag::polling() != tag::task_id_u64(id) {
                c.mark_hooks_missing();
            }
        }
    }
}
