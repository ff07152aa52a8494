//! The middleware around every handler, apart from access control (`auth`): forget the
//! dashboard's own connection, run the handler untracked, start the sampler.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use crate::sampler;

/// Behind leakscope's tracked listener the dashboard's own requests (and live streams) would
/// show up as connections of the app: forget them. Runs before [`untracked`], which would hide
/// the connection.
pub(crate) async fn ignore_own_connection(req: Request, next: Next) -> Response {
    if let Some(conn) = leakscope::Connection::current() {
        conn.ignore();
    }
    next.run(req).await
}

/// Runs the rest of the request (extractors, handler) untracked: what the dashboard allocates
/// and spawns while answering belongs to no connection. The only place handlers are made
/// untracked.
pub(crate) async fn untracked(req: Request, next: Next) -> Response {
    Untracked {
        inner: next.run(req),
    }
    .await
}

pin_project_lite::pin_project! {
    /// A future whose every poll runs inside [`leakscope::untracked`]. A guard held across an
    /// `.await` would not do: the current connection is per thread, and a task may move
    /// between threads (and other tasks run on this one) between two polls.
    struct Untracked<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for Untracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let inner = self.project().inner;
        leakscope::untracked(|| inner.poll(cx))
    }
}

/// Starts the sampler on the first (authorised) request.
pub(crate) async fn start_sampler(req: Request, next: Next) -> Response {
    sampler::ensure_running();
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use leakscope::Connection;

    use super::Untracked;

    #[test]
    fn every_poll_of_the_handler_is_untracked() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let conn = Connection::open("dashboard-middleware-test", None);
        rt.block_on(conn.scope(async {
            assert!(Connection::current().is_some(), "the scope sets the tag");
            Untracked {
                inner: async {
                    assert!(Connection::current().is_none());
                    tokio::task::yield_now().await;
                    assert!(Connection::current().is_none(), "after an await too");
                },
            }
            .await;
            assert!(Connection::current().is_some(), "the tag is restored");
        }));
        conn.close();
    }
}
