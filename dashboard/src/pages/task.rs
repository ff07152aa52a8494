//! `GET|POST /task/{id}`: one task's facts and lifetime; the page's button (a `POST`, which
//! `access` accepts from the dashboard's own pages only) adds its await-point backtrace. A dump
//! pauses the runtime, so a link (`GET ?dump=1`, which an `<img>` on any site could fetch)
//! never takes one: it shows the page and says so.

use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Html;
use leakscope::{Snapshot, TaskInfo, TaskState};

use super::timeline::{self, Timeline};
use super::{Ctx, Fact, FixLink, fact, task_class};
use crate::dump::{self, DumpError};
use crate::error::{DashError, DashResult};
use crate::query::parse_id;
use crate::view;

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
    /// An orphan's likely pattern and its section of the fixes page.
    fix: Option<FixLink>,
    /// Whether the backtrace below named the pattern (else: parked or running since close).
    fix_from_dump: bool,
    tl: Option<Timeline>,
    dump_available: bool,
    /// Asked for with `GET ?dump=1`, which takes no dump.
    dump_by_link: bool,
    dump_text: Option<String>,
    dump_error: Option<String>,
}

fn facts(t: &TaskInfo, now: u64) -> Vec<Fact> {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    vec![
        fact("spawned at", t.spawned_at.clone()),
        fact("kind", t.kind.to_string()),
        fact("spawned", view::ago(now, Some(t.spawned_at_ms))),
        fact("ended", view::ago(now, t.ended_at_ms)),
        fact("ended by", t.ended_by.map_or("-", |b| b.as_str())),
        fact("lifetime", view::lifetime(t, now)),
        fact("outlived its socket by", view::outlived(t)),
        fact(
            "since the close",
            t.activity_text().unwrap_or_else(|| "-".to_owned()),
        ),
        fact("detached", yes_no(t.detached)),
        fact("orphan", yes_no(t.orphan)).bad_if(t.orphan),
        fact(
            "shared global",
            if t.shared {
                "yes: a global started lazily by this connection, not an orphan"
            } else {
                "no"
            },
        ),
    ]
}

/// What was asked of the page about a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    /// Nothing.
    Page,
    /// `GET ?dump=1`: the page, with a word on the button.
    Link,
    /// `POST`: the page with the backtrace.
    Dump,
}

fn render(
    ctx: Ctx,
    s: &Snapshot,
    t: &TaskInfo,
    dump: Option<Result<String, DumpError>>,
    asked: Asked,
) -> Result<(StatusCode, String), askama::Error> {
    let now = s.taken_at_ms;
    let conn = s.connection(t.conn_id);
    let (status, dump_text, dump_error) = match dump {
        None => (StatusCode::OK, None, None),
        Some(Ok(text)) => (StatusCode::OK, Some(text), None),
        Some(Err(e)) => (e.status(), None, Some(e.message())),
    };
    let hint = t.fix_hint(dump_text.as_deref());
    let fix_from_dump = hint.as_ref().is_some_and(|h| {
        dump_text.as_deref().and_then(leakscope::pattern_of_trace) == Some(h.pattern)
    });
    let fix = hint.as_ref().map(|h| FixLink::new(h, &ctx));
    let page = TaskPage {
        ctx,
        id: t.id,
        name: t.name.to_string(),
        conn_id: t.conn_id,
        conn_label: conn.map_or_else(|| "(evicted)".to_owned(), |c| c.label.to_string()),
        state: view::task_state(t),
        class: task_class(t),
        alive: t.state == TaskState::Alive,
        facts: facts(t, now),
        fix,
        fix_from_dump,
        tl: conn.map(|c| timeline::build(c, &[t], now, s.grace_ms, 1)),
        dump_available: dump::AVAILABLE,
        dump_by_link: asked == Asked::Link,
        dump_text,
        dump_error,
    };
    Ok((status, page.render()?))
}

fn find(s: &Snapshot, id: u64) -> Option<&TaskInfo> {
    s.tasks.iter().find(|t| t.id == id)
}

/// The task page, with the status of its dump when one was asked for.
type TaskResponse = DashResult<(StatusCode, Html<String>)>;

async fn respond(raw: String, ctx: Ctx, asked: Asked) -> TaskResponse {
    let id = parse_id("task", &raw)?;
    let missing = || {
        DashError::not_found(format!(
            "task {id} is not tracked: it never belonged to a connection, or it ended and its \
             details were dropped"
        ))
    };
    let alive = {
        let s = leakscope::task_snapshot(id).ok_or_else(missing)?;
        find(&s, id).ok_or_else(missing)?.state == TaskState::Alive
    };
    let dump = match (asked, alive) {
        (Asked::Page | Asked::Link, _) => None,
        (Asked::Dump, false) if dump::AVAILABLE => Some(Err(DumpError::NotAlive)),
        (Asked::Dump, _) => Some(dump::backtrace(id).await),
    };
    // A fresh snapshot: the dump may have taken a while.
    let s = leakscope::task_snapshot(id).ok_or_else(missing)?;
    let t = find(&s, id).ok_or_else(missing)?;
    let (status, html) = render(ctx, &s, t, dump, asked)?;
    Ok((status, Html(html)))
}

/// `GET /task/{id}`. With `?dump=1` (an old link) the same page, which says that only its
/// button takes a backtrace.
pub(crate) async fn task(Path(raw): Path<String>, ctx: Ctx) -> TaskResponse {
    let by_link = ctx.params(&["dump"])?.flag("dump")?;
    let asked = if by_link { Asked::Link } else { Asked::Page };
    respond(raw, ctx, asked).await
}

/// `POST /task/{id}`: the task page with its await-point backtrace (the page's button; the
/// same-origin check is `access`'s).
pub(crate) async fn task_dump(Path(raw): Path<String>, ctx: Ctx) -> TaskResponse {
    ctx.params(&["dump"])?;
    respond(raw, ctx, Asked::Dump).await
}

#[cfg(test)]
mod tests {
    use axum::http::Uri;

    use super::{Asked, Ctx, render};

    /// An orphan parked since its connection's close.
    fn orphan() -> leakscope::Snapshot {
        crate::testing::snapshot(serde_json::json!({
            "taken_at_ms": 10_000,
            "tasks": [{
                "id": 9, "conn_id": 1, "name": "conn=1 forwarder", "spawned_at": "src/chat.rs:40:9",
                "state": "alive", "ended_by": null, "ended_by_exact": null,
                "spawned_at_ms": 1_000, "ended_at_ms": null, "orphan": true,
                "outlived_close_ms": 6_000, "detached": false, "kind": "async",
                "polls": 3, "polls_since_close": 0, "last_poll_ms": 2_000
            }]
        }))
    }

    #[test]
    fn an_orphan_names_its_fix_refined_by_its_backtrace() {
        let s = orphan();
        let uri: Uri = "/task/9".parse().unwrap();
        let page = |dump: Option<&str>| {
            let ctx = Ctx::new(&uri, &uri, None);
            let dump = dump.map(|d| Ok(d.to_owned()));
            render(ctx, &s, &s.tasks[0], dump, Asked::Dump).unwrap().1
        };
        let html = page(None);
        assert!(
            html.contains(r#"href="../fixes#parked-since-close""#),
            "{html}"
        );
        assert!(html.contains("From what leakscope counts"), "{html}");
        let html = page(Some(
            "╼ forwarder\n  └╼ tokio::sync::broadcast::Receiver<T>::recv::{{closure}}",
        ));
        assert!(
            html.contains(r#"href="../fixes#parked-on-a-channel-receive""#),
            "{html}"
        );
        assert!(html.contains("From the await point the backtrace below names."));
        assert!(
            html.contains("broadcast::Receiver&#60;T&#62;"),
            "the dump, escaped"
        );
    }
}
