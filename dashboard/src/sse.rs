//! `GET /api/events`: a Server-Sent Events stream with one compact JSON summary per second
//! (event name `summary`): totals, heap, the first orphan rows, the newest chart point and a
//! hash of the orphan rows so a client re-renders the table only when it changed.
//!
//! Streams end when the router's shutdown token is cancelled (see
//! [`crate::router_with_shutdown`]); without one they end when the client goes away.

use std::convert::Infallible;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt, future};
use leakscope::{HeapTotals, Snapshot, Totals};
use serde::Serialize;

use crate::error::DashResult;
use crate::history::{self, Point};
use crate::query::Params;
use crate::state::Shared;
use crate::view::{ORPHAN_ROWS, OrphanRow, orphan_rows};

/// The live summary.
#[derive(Serialize)]
struct Summary<'a> {
    /// When the snapshot was taken (Unix milliseconds).
    t: u64,
    /// Changes when the orphan rows (apart from their ages) or their count change.
    hash: String,
    mode: &'static str,
    mode_limits: &'a str,
    grace_ms: u64,
    totals: &'a Totals,
    heap: &'a HeapTotals,
    orphans: Vec<OrphanRow>,
    /// Orphan tasks with details in the snapshot (the rows are the first of them).
    orphans_listed: u64,
    point: Point,
    warnings: &'a [String],
}

/// The summary of one snapshot, as one line of JSON.
pub(crate) fn summary_json(s: &Snapshot, point: Point) -> Result<String, serde_json::Error> {
    let (orphans, listed) = orphan_rows(s, ORPHAN_ROWS);
    let mut h = DefaultHasher::new();
    listed.hash(&mut h);
    for r in &orphans {
        (
            r.task_id,
            r.conn_id,
            &r.label,
            &r.peer,
            &r.name,
            &r.spawned_at,
        )
            .hash(&mut h);
    }
    serde_json::to_string(&Summary {
        t: s.taken_at_ms,
        hash: format!("{:016x}", h.finish()),
        mode: s.mode.as_str(),
        mode_limits: &s.mode_limits,
        grace_ms: s.grace_ms,
        totals: &s.totals,
        heap: &s.heap,
        orphans,
        orphans_listed: listed,
        point,
        warnings: &s.warnings,
    })
}

/// The latest summary, then each new one. A stream that sees no sample for two seconds
/// restarts the sampler (its runtime may have shut down while this one lives on).
fn summaries() -> impl Stream<Item = Arc<str>> {
    let rx = history::subscribe();
    futures_util::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first {
            loop {
                match tokio::time::timeout(2 * history::INTERVAL, rx.changed()).await {
                    Ok(Ok(())) => break,
                    Ok(Err(_)) => return None,
                    Err(_) => history::ensure_running(),
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
    history::ensure_running();
    let mut res = Sse::new(stream(&shared))
        .keep_alive(KeepAlive::default())
        .into_response();
    // Reverse proxies must not buffer the stream.
    res.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}
