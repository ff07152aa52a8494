//! `GET /conn/{id}` and `GET|POST /task/{id}` (with `?dump=1`: the await-point backtrace).

use askama::Template;
use axum::Extension;
use axum::extract::{OriginalUri, Path, RawQuery};
use axum::http::{StatusCode, Uri};
use axum::response::Html;
use leakscope::{ConnState, ConnectionInfo, Snapshot, TaskInfo, TaskState};

use super::Ctx;
use super::timeline::{self, Timeline};
use crate::auth::TokenQuery;
use crate::dump::{self, DumpError};
use crate::error::{DashError, DashResult};
use crate::query::{Params, parse_id};
use crate::view;

/// Bars drawn on a connection's timeline; rows in its task table.
const MAX_TASK_ROWS: usize = 500;

/// A label and a value, for the fact lists.
struct Fact {
    name: &'static str,
    value: String,
    class: &'static str,
}

fn fact(name: &'static str, value: impl Into<String>) -> Fact {
    Fact {
        name,
        value: value.into(),
        class: "",
    }
}

fn when(now: u64, at: Option<u64>) -> String {
    match at {
        Some(_) => view::ago(now, at),
        None => "-".to_owned(),
    }
}

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

fn state_text(t: &TaskInfo) -> String {
    match (t.orphan, t.state, t.ended_by) {
        (true, _, _) => "orphan".to_owned(),
        (false, TaskState::Ended, Some(by)) => format!("ended: {}", by.as_str()),
        (false, TaskState::Ended, None) => "ended".to_owned(),
        (false, _, _) if t.detached => "alive (detached)".to_owned(),
        _ => "alive".to_owned(),
    }
}

fn lifetime(t: &TaskInfo, now: u64) -> String {
    let end = t.ended_at_ms.unwrap_or(now);
    view::duration_ms(end.saturating_sub(t.spawned_at_ms))
}

#[derive(Template)]
#[template(path = "conn.html")]
struct ConnPage {
    ctx: Ctx,
    id: u64,
    label: String,
    state: &'static str,
    facts: Vec<Fact>,
    bytes: Vec<Fact>,
    heap_tracking: bool,
    tl: Timeline,
    tasks: Vec<TaskRow>,
    tasks_total: usize,
}

fn conn_page(ctx: Ctx, s: &Snapshot, c: &ConnectionInfo) -> Result<String, askama::Error> {
    let now = s.taken_at_ms;
    let mut tasks: Vec<&TaskInfo> = s.tasks_of(c.id).collect();
    tasks.sort_by_key(|t| (t.spawned_at_ms, t.id));
    let open_for = c.closed_at_ms.unwrap_or(now).saturating_sub(c.opened_at_ms);
    let mut orphans = fact("orphan tasks", view::count(c.orphan_tasks));
    if c.orphan_tasks > 0 {
        orphans.class = "bad";
    }
    let facts = vec![
        fact("label", c.label.clone()),
        fact("peer", c.peer.clone().unwrap_or_else(|| "-".to_owned())),
        fact("opened", view::ago(now, Some(c.opened_at_ms))),
        fact("closed", when(now, c.closed_at_ms)),
        fact(
            "close reason",
            c.close_reason.clone().unwrap_or_else(|| "-".to_owned()),
        ),
        fact("socket open for", view::duration_ms(open_for)),
        fact("live tasks", view::count(c.live_tasks)),
        orphans,
        fact("tasks spawned", view::count(c.tasks_spawned)),
    ];
    let mut retained = fact("retained", view::bytes(c.retained_bytes));
    if c.leaking_memory {
        retained.class = "bad";
    }
    let bytes = vec![
        fact("allocated", view::bytes(c.allocated_bytes)),
        fact("freed", view::bytes(c.freed_bytes)),
        fact("live", view::bytes(c.live_bytes)),
        retained,
        fact("live blocks", view::count(c.live_blocks)),
    ];
    let rows = tasks
        .iter()
        .take(MAX_TASK_ROWS)
        .map(|t| TaskRow {
            id: t.id,
            name: t.name.clone(),
            class: if t.orphan { "orphan" } else { "" },
            state: state_text(t),
            kind: t.kind.to_string(),
            spawned_at: view::location(&t.spawned_at),
            spawned: format!(
                "+{}",
                view::duration_ms(t.spawned_at_ms.saturating_sub(c.opened_at_ms))
            ),
            lifetime: lifetime(t, now),
            outlived: t
                .outlived_close_ms
                .map_or("-".to_owned(), view::duration_ms),
        })
        .collect();
    ConnPage {
        ctx,
        id: c.id,
        label: c.label.clone(),
        state: match (c.state, c.orphan_tasks > 0 || c.leaking_memory) {
            (ConnState::Open, _) => "open",
            (ConnState::Closed, true) => "leaking",
            (ConnState::Closed, false) => "closed",
        },
        facts,
        bytes,
        heap_tracking: s.heap.tracking,
        tl: timeline::build(c, &tasks, now, s.grace_ms, MAX_TASK_ROWS),
        tasks: rows,
        tasks_total: tasks.len(),
    }
    .render()
}

/// `GET /conn/{id}`.
pub(crate) async fn connection(
    Path(raw): Path<String>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    RawQuery(q): RawQuery,
    token: Option<Extension<TokenQuery>>,
) -> DashResult<Html<String>> {
    Params::parse(q.as_deref(), &[])?;
    let id = parse_id("conn", &raw)?;
    let ctx = Ctx::new(&original, &uri, token.as_deref());
    let s = leakscope::connection_snapshot(id);
    match s.as_ref().and_then(|s| Some((s, s.connection(id)?))) {
        Some((s, c)) => Ok(Html(conn_page(ctx, s, c)?)),
        None => Err(DashError::not_found(format!(
            "connection {id} is not tracked: it never existed, or it closed cleanly and was \
             evicted after the retention period"
        ))),
    }
}

#[derive(Template)]
#[template(path = "task.html")]
struct TaskPage {
    ctx: Ctx,
    id: u64,
    name: String,
    conn_id: u64,
    conn_label: String,
    state: String,
    class: &'static str,
    alive: bool,
    facts: Vec<Fact>,
    tl: Option<Timeline>,
    dump_available: bool,
    dump_text: Option<String>,
    dump_error: Option<String>,
}

fn task_page(
    ctx: Ctx,
    s: &Snapshot,
    t: &TaskInfo,
    dump: Option<Result<String, DumpError>>,
) -> Result<(StatusCode, String), askama::Error> {
    let now = s.taken_at_ms;
    let conn = s.connection(t.conn_id);
    let mut orphan = fact("orphan", if t.orphan { "yes" } else { "no" });
    if t.orphan {
        orphan.class = "bad";
    }
    let facts = vec![
        fact("spawned at", t.spawned_at.clone()),
        fact("kind", t.kind.to_string()),
        fact("spawned", view::ago(now, Some(t.spawned_at_ms))),
        fact("ended", when(now, t.ended_at_ms)),
        fact(
            "ended by",
            t.ended_by.map_or("-", |b| b.as_str()).to_owned(),
        ),
        fact("lifetime", lifetime(t, now)),
        fact(
            "outlived its socket by",
            t.outlived_close_ms
                .map_or("-".to_owned(), view::duration_ms),
        ),
        fact("detached", if t.detached { "yes" } else { "no" }),
        orphan,
    ];
    let (status, dump_text, dump_error) = match dump {
        None => (StatusCode::OK, None, None),
        Some(Ok(text)) => (StatusCode::OK, Some(text), None),
        Some(Err(e)) => (e.status(), None, Some(e.message())),
    };
    let page = TaskPage {
        ctx,
        id: t.id,
        name: t.name.clone(),
        conn_id: t.conn_id,
        conn_label: conn.map_or_else(|| "(evicted)".to_owned(), |c| c.label.clone()),
        state: state_text(t),
        class: if t.orphan { "orphan" } else { "" },
        alive: t.state == TaskState::Alive,
        facts,
        tl: conn.map(|c| timeline::build(c, &[t], now, s.grace_ms, 1)),
        dump_available: dump::AVAILABLE,
        dump_text,
        dump_error,
    };
    Ok((status, page.render()?))
}

async fn task_response(
    raw: String,
    original: Uri,
    uri: Uri,
    token: Option<Extension<TokenQuery>>,
    want_dump: bool,
) -> DashResult<(StatusCode, Html<String>)> {
    let id = parse_id("task", &raw)?;
    let ctx = Ctx::new(&original, &uri, token.as_deref());
    let missing = || {
        DashError::not_found(format!(
            "task {id} is not tracked: it never belonged to a connection, or it ended and its \
             details were dropped"
        ))
    };
    let alive = {
        let s = leakscope::task_snapshot(id).ok_or_else(missing)?;
        let t = s.tasks.iter().find(|t| t.id == id).ok_or_else(missing)?;
        t.state == TaskState::Alive
    };
    let dump = match (want_dump, alive) {
        (false, _) => None,
        (true, false) if dump::AVAILABLE => Some(Err(DumpError::NotAlive)),
        (true, _) => Some(dump::backtrace(id).await),
    };
    // A fresh snapshot: the dump may have taken a while.
    let s = leakscope::task_snapshot(id).ok_or_else(missing)?;
    let t = s.tasks.iter().find(|t| t.id == id).ok_or_else(missing)?;
    let (status, html) = task_page(ctx, &s, t, dump)?;
    Ok((status, Html(html)))
}

/// `GET /task/{id}`, or with `?dump=1` the page with the task's await-point backtrace.
pub(crate) async fn task(
    Path(raw): Path<String>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    RawQuery(q): RawQuery,
    token: Option<Extension<TokenQuery>>,
) -> DashResult<(StatusCode, Html<String>)> {
    let p = Params::parse(q.as_deref(), &["dump"])?;
    let want_dump = p.flag("dump")?;
    task_response(raw, original, uri, token, want_dump).await
}

/// `POST /task/{id}`: the task page with its await-point backtrace (the page's button).
pub(crate) async fn task_dump(
    Path(raw): Path<String>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    RawQuery(q): RawQuery,
    token: Option<Extension<TokenQuery>>,
) -> DashResult<(StatusCode, Html<String>)> {
    Params::parse(q.as_deref(), &["dump"])?;
    task_response(raw, original, uri, token, true).await
}
