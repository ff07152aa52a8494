//! `GET /api/events`: a Server-Sent Events stream with one compact JSON summary per second
//! (event name `summary`): totals, heap, the first orphan rows, the newest chart point and a
//! hash of the orphan rows so a client re-renders the table only when it changed. The sampler
//! builds each summary ([`crate::summary`]); a stream only forwards the latest one.
//!
//! Streams end when the router's shutdown token is cancelled (see
//! [`crate::router_with_shutdown`]); without one they end when the client goes away.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt, future};

use crate::error::DashResult;
use crate::query::Params;
use crate::sampler;
use crate::state::Shared;

/// The latest summary, then each new one. A stream that sees no sample for two seconds
/// restarts the sampler (its runtime may have shut down while this one lives on).
fn summaries() -> impl Stream<Item = Arc<str>> {
    let rx = sampler::subscribe();
    futures_util::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first {
            loop {
                match tokio::time::timeout(2 * sampler::INTERVAL, rx.changed()).await {
                    Ok(Ok(())) => break,
                    Ok(Err(_)) => return None,
                    Err(_) => sampler::ensure_running(),
                }
            }
        }
        let latest = rx.borrow_and_update().clone();
        Some((latest, (rx, false)))
    })
    .filter_map(future::ready)
}

fn stream(shared: &Shared) -> impl Stream<Item = Result<Event, Infallible>> + use<> {
    let stop = shared.shutdown.clone();
    let until = async move {
        match stop {
            Some(t) => t.cancelled_owned().await,
            None => std::future::pending().await,
        }
    };
    summaries()
        .map(|json| Ok(Event::default().event("summary").data(&*json)))
        .take_until(until)
}

/// `GET /api/events`.
pub(crate) async fn events(
    State(shared): State<Arc<Shared>>,
    RawQuery(q): RawQuery,
) -> DashResult<Response> {
    Params::parse(q.as_deref(), &[])?;
    sampler::ensure_running();
    let mut res = Sse::new(stream(&shared))
        .keep_alive(KeepAlive::default())
        .into_response();
    // Reverse proxies must not buffer the stream.
    res.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}
