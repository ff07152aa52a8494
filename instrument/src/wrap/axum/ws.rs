//! The tracked WebSocket upgrade and socket (feature `enabled`).

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::ws::{self, DefaultOnFailedUpgrade, Message, OnFailedUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath};
use axum::http::{HeaderValue, request::Parts};
use axum::response::Response;
use futures_util::{Sink, Stream, stream::FusedStream};

use crate::{Connection, tag};

/// Drop-in for axum's `WebSocketUpgrade`: [`on_upgrade`](Self::on_upgrade) opens the
/// connection's scope *before* axum spawns its upgrade task, so that task (which builds the
/// socket and its 128 KiB read buffer before your handler runs) is the connection's too.
/// The label is the matched route; the peer comes from `ConnectInfo<SocketAddr>` when present.
#[derive(Debug)]
pub struct WebSocketUpgrade<F = DefaultOnFailedUpgrade> {
    inner: ws::WebSocketUpgrade<F>,
    label: String,
    /// Formatted only if something shows it: a snapshot, a subscriber's span (`crate::peer`).
    peer: Option<std::net::SocketAddr>,
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade<DefaultOnFailedUpgrade> {
    type Rejection = <ws::WebSocketUpgrade as FromRequestParts<S>>::Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let inner = ws::WebSocketUpgrade::from_request_parts(parts, state).await?;
        let label = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
        let peer = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0);
        Ok(WebSocketUpgrade { inner, label, peer })
    }
}

impl<F> WebSocketUpgrade<F> {
    /// See axum's `WebSocketUpgrade::read_buffer_size`.
    pub fn read_buffer_size(self, size: usize) -> Self {
        self.map(|u| u.read_buffer_size(size))
    }
    /// See axum's `WebSocketUpgrade::write_buffer_size`.
    pub fn write_buffer_size(self, size: usize) -> Self {
        self.map(|u| u.write_buffer_size(size))
    }
    /// See axum's `WebSocketUpgrade::max_write_buffer_size`.
    pub fn max_write_buffer_size(self, max: usize) -> Self {
        self.map(|u| u.max_write_buffer_size(max))
    }
    /// See axum's `WebSocketUpgrade::max_message_size`.
    pub fn max_message_size(self, max: usize) -> Self {
        self.map(|u| u.max_message_size(max))
    }
    /// See axum's `WebSocketUpgrade::max_frame_size`.
    pub fn max_frame_size(self, max: usize) -> Self {
        self.map(|u| u.max_frame_size(max))
    }
    /// See axum's `WebSocketUpgrade::protocols`.
    pub fn protocols<I>(self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<std::borrow::Cow<'static, str>>,
    {
        self.map(|u| u.protocols(protocols))
    }
    /// See axum's `WebSocketUpgrade::selected_protocol`.
    pub fn selected_protocol(&self) -> Option<&HeaderValue> {
        self.inner.selected_protocol()
    }
    /// See axum's `WebSocketUpgrade::on_failed_upgrade`.
    pub fn on_failed_upgrade<C: OnFailedUpgrade>(self, callback: C) -> WebSocketUpgrade<C> {
        WebSocketUpgrade {
            inner: self.inner.on_failed_upgrade(callback),
            label: self.label,
            peer: self.peer,
        }
    }

    fn map(mut self, f: impl FnOnce(ws::WebSocketUpgrade<F>) -> ws::WebSocketUpgrade<F>) -> Self {
        self.inner = f(self.inner);
        self
    }

    /// Finishes the upgrade and runs `callback` with the socket, as the connection's code.
    #[must_use = "to set up the WebSocket connection, this response must be returned"]
    pub fn on_upgrade<C, Fut>(self, callback: C) -> Response
    where
        C: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
        F: OnFailedUpgrade,
    {
        // Behind the tracked listener this request already runs as its TCP connection: reuse
        // it, so one TCP connection stays one connection.
        let conn = match Connection::current() {
            Some(conn) => {
                conn.set_label(&self.label);
                conn
            }
            None => Connection::open_addr(&self.label, self.peer),
        };
        let for_socket = conn.clone();
        let _tag = tag::enter(conn.tag());
        // axum calls tokio::spawn in here: the spawn hook sees this connection's tag.
        self.inner.on_upgrade(move |socket| {
            // Its reads are watched here unless the tracked listener's socket watches them.
            for_socket.watch(None);
            let socket = WebSocket {
                inner: socket,
                conn: for_socket,
            };
            conn.scope(callback(socket))
        })
    }
}

/// Drop-in for axum's `WebSocket` (Stream + Sink, `split()` works). The connection closes
/// when a close frame is sent or received, the stream ends or errors, or the socket (every
/// half of it) is dropped, whichever comes first.
#[derive(Debug)]
pub struct WebSocket {
    inner: ws::WebSocket,
    conn: Connection,
}

impl WebSocket {
    /// Receives the next message (`None` once the stream ended).
    pub async fn recv(&mut self) -> Option<Result<Message, axum::Error>> {
        futures_util::StreamExt::next(self).await
    }

    /// Sends a message.
    pub async fn send(&mut self, msg: Message) -> Result<(), axum::Error> {
        futures_util::SinkExt::send(self, msg).await
    }

    /// The selected subprotocol, if any.
    pub fn protocol(&self) -> Option<&HeaderValue> {
        self.inner.protocol()
    }

    /// The connection this socket belongs to.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

impl Drop for WebSocket {
    fn drop(&mut self) {
        self.conn.close_because("socket dropped");
    }
}

impl Stream for WebSocket {
    type Item = Result<Message, axum::Error>;

    #[inline]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let out = Pin::new(&mut self.inner).poll_next(cx);
        self.conn.note_read(out.is_pending());
        match &out {
            Poll::Ready(Some(Ok(Message::Close(_)))) => {
                self.conn.close_because("close frame received")
            }
            Poll::Ready(Some(Err(_))) => self.conn.close_because("read error"),
            Poll::Ready(None) => self.conn.close_because("stream ended"),
            _ => {}
        }
        out
    }
}

impl FusedStream for WebSocket {
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

impl Sink<Message> for WebSocket {
    type Error = axum::Error;

    #[inline]
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let out = Pin::new(&mut self.inner).poll_ready(cx);
        if let Poll::Ready(Err(_)) = &out {
            self.conn.close_because("write error");
        }
        out
    }

    #[inline]
    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        let closing = matches!(item, Message::Close(_));
        let out = Pin::new(&mut self.inner).start_send(item);
        if closing || out.is_err() {
            self.conn.close_because(if closing {
                "close frame sent"
            } else {
                "write error"
            });
        }
        out
    }

    #[inline]
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // tungstenite buffers in `start_send`: a peer that is gone often shows up only here.
        let out = Pin::new(&mut self.inner).poll_flush(cx);
        if let Poll::Ready(Err(_)) = &out {
            self.conn.close_because("write error");
        }
        out
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let out = Pin::new(&mut self.inner).poll_close(cx);
        if out.is_ready() {
            self.conn.close_because("closed");
        }
        out
    }
}
