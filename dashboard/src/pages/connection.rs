//! `GET /conn/{id}`: one connection's facts and bytes, where its live bytes were allocated (and
//! its heap profile), its tasks on a timeline and in a table, its own log lines.

use askama::Template;
use axum::extract::Path;
use axum::response::Html;
use leakscope::{AllocationSite, ConnectionInfo, HeapTotals, LogEvent, Snapshot, TaskInfo};

use super::timeline::{self, Timeline};
use super::{Ctx, Fact, fact, task_class};
use crate::error::{DashError, DashResult};
use crate::query::parse_id;
use crate::view;

/// Bars drawn on a connection's timeline; rows in its task table.
const MAX_TASK_ROWS: usize = 500;

struct TaskRow {
    id: u64,
    name: String,
    class: &'static str,
    state: String,
    kind: String,
    spawned_at: String,
    spawned: String,
    lifetime: String,
    outlived: String,
}

/// One of the connection's own log lines.
struct LogRow {
    at: String,
    /// `after-close` for a line emitted after its socket closed.
    class: &'static str,
    level: String,
    target: String,
    message: String,
    fields: String,
    task: Option<u64>,
}

/// Where some of the connection's live bytes were allocated.
struct SiteRow {
    site: String,
    function: String,
    bytes: String,
    samples: String,
}

#[derive(Template)]
#[template(path = "conn.html")]
struct ConnPage {
    ctx: Ctx,
    id: u64,
    label: String,
    state: &'static str,
    /// `zombie: peer left N s ago, never read`.
    zombie: Option<String>,
    /// `not read for N s`.
    unread: Option<String>,
    facts: Vec<Fact>,
    bytes: Vec<Fact>,
    heap_tracking: bool,
    sites: Vec<SiteRow>,
    /// Why `sites` is empty, or how they were estimated.
    sites_note: String,
    tl: Timeline,
    tasks: Vec<TaskRow>,
    tasks_total: usize,
    logs: Vec<LogRow>,
    logs_dropped: u64,
}

fn facts(c: &ConnectionInfo, now: u64) -> Vec<Fact> {
    let open_for = c.closed_at_ms.unwrap_or(now).saturating_sub(c.opened_at_ms);
    vec![
        fact("label", c.label.as_str()),
        fact("peer", c.peer.as_deref().unwrap_or("-")),
        fact("opened", view::ago(now, Some(c.opened_at_ms))),
        fact("closed", view::ago(now, c.closed_at_ms)),
        fact("close reason", c.close_reason.as_deref().unwrap_or("-")),
        fact("socket open for", view::duration_ms(open_for)),
        fact("last read", view::ago(now, c.last_read_ms)),
        fact("live tasks", view::count(c.live_tasks)),
        fact("orphan tasks", view::count(c.orphan_tasks)).bad_if(c.orphan_tasks > 0),
        fact("tasks spawned", view::count(c.tasks_spawned)),
    ]
}

fn bytes(c: &ConnectionInfo) -> Vec<Fact> {
    vec![
        fact("allocated", view::bytes(c.allocated_bytes)),
        fact("freed", view::bytes(c.freed_bytes)),
        fact("live", view::bytes(c.live_bytes)),
        fact("retained", view::bytes(c.retained_bytes)).bad_if(c.leaking_memory),
        fact("live blocks", view::count(c.live_blocks)),
    ]
}

fn site_row(a: &AllocationSite) -> SiteRow {
    SiteRow {
        site: view::location(&a.site),
        function: a.function.clone(),
        bytes: view::bytes(a.bytes),
        samples: view::count(a.samples),
    }
}

/// What the allocation sites are, or why there are none.
fn sites_note(h: &HeapTotals, empty: bool) -> String {
    if !h.tracking {
        "Heap tracking is off: install leakscope::TrackingAlloc as the global allocator.".into()
    } else if h.sample_bytes == 0 {
        "Allocation sampling is off (LEAKSCOPE_SAMPLE_BYTES=0).".into()
    } else if empty {
        "No sampled allocation of this connection is live.".into()
    } else {
        format!(
            "Estimated from sampled allocations (one per {} allocated, on average).",
            view::bytes(h.sample_bytes)
        )
    }
}

fn task_row(c: &ConnectionInfo, t: &TaskInfo, now: u64) -> TaskRow {
    TaskRow {
        id: t.id,
        name: t.name.to_string(),
        class: task_class(t),
        state: view::task_state(t),
        kind: t.kind.to_string(),
        spawned_at: view::location(&t.spawned_at),
        spawned: format!(
            "+{}",
            view::duration_ms(t.spawned_at_ms.saturating_sub(c.opened_at_ms))
        ),
        lifetime: view::lifetime(t, now),
        outlived: view::outlived(t),
    }
}

fn log_row(c: &ConnectionInfo, e: &LogEvent) -> LogRow {
    let after_close = c.closed_at_ms.is_some_and(|at| e.at_ms > at);
    LogRow {
        at: format!(
            "+{}",
            view::duration_ms(e.at_ms.saturating_sub(c.opened_at_ms))
        ),
        class: if after_close { "after-close" } else { "" },
        level: e.level.clone(),
        target: e.target.clone(),
        message: e.message.clone(),
        fields: e.fields.clone(),
        task: e.task_id,
    }
}

fn render(ctx: Ctx, s: &Snapshot, c: &ConnectionInfo) -> Result<String, askama::Error> {
    let now = s.taken_at_ms;
    let mut tasks: Vec<&TaskInfo> = s.tasks_of(c.id).collect();
    tasks.sort_by_key(|t| (t.spawned_at_ms, t.id));
    ConnPage {
        ctx,
        id: c.id,
        label: c.label.to_string(),
        state: view::conn_state(c),
        zombie: view::zombie_text(now, c),
        unread: view::unread_text(c),
        facts: facts(c, now),
        bytes: bytes(c),
        heap_tracking: s.heap.tracking,
        sites: c.allocation_sites.iter().map(site_row).collect(),
        sites_note: sites_note(&s.heap, c.allocation_sites.is_empty()),
        tl: timeline::build(c, &tasks, now, s.grace_ms, MAX_TASK_ROWS),
        tasks: tasks
            .iter()
            .take(MAX_TASK_ROWS)
            .map(|t| task_row(c, t, now))
            .collect(),
        tasks_total: tasks.len(),
        logs: c.events.iter().map(|e| log_row(c, e)).collect(),
        logs_dropped: c.events_dropped,
    }
    .render()
}

/// `GET /conn/{id}`.
pub(crate) async fn connection(Path(raw): Path<String>, ctx: Ctx) -> DashResult<Html<String>> {
    ctx.params(&[])?;
    let id = parse_id("conn", &raw)?;
    let s = leakscope::connection_snapshot(id);
    match s.as_ref().and_then(|s| Some((s, s.connection(id)?))) {
        Some((s, c)) => Ok(Html(render(ctx, s, c)?)),
        None => Err(DashError::not_found(format!(
            "connection {id} is not tracked: it never existed, or it closed cleanly and was \
             evicted after the retention period"
        ))),
    }
}
