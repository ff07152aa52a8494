//! `GET /`: counters, leak signatures and routes ([`super::verdicts`]), charts, the orphan
//! table and the filterable, paginated connection table.

use askama::Template;
use axum::response::Html;
use leakscope::{ConnState, ConnectionInfo, Snapshot};

use super::Ctx;
use super::verdicts::{self, Verdicts};
use crate::error::{DashError, DashResult, shown};
use crate::query::Params;
use crate::view::{self, ORPHAN_ROWS, OrphanRow};

/// Connections per page unless `per_page` says otherwise.
const DEFAULT_PER_PAGE: u64 = 50;
/// The largest `per_page`.
const MAX_PER_PAGE: u64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateFilter {
    All,
    Open,
    Closed,
    Leaking,
}

impl StateFilter {
    fn parse(v: Option<&str>) -> Result<Self, DashError> {
        Ok(match v {
            None | Some("") | Some("all") => StateFilter::All,
            Some("open") => StateFilter::Open,
            Some("closed") => StateFilter::Closed,
            Some("leaking") => StateFilter::Leaking,
            Some(other) => {
                return Err(DashError::bad_request(format!(
                    "query parameter state={}: expected open, closed, leaking or all",
                    shown(other)
                )));
            }
        })
    }

    /// The choices of the filter form, this one selected.
    fn options(self) -> Vec<StateOption> {
        ["all", "open", "closed", "leaking"]
            .into_iter()
            .map(|value| StateOption {
                value,
                selected: value == self.as_str(),
            })
            .collect()
    }

    fn as_str(self) -> &'static str {
        match self {
            StateFilter::All => "all",
            StateFilter::Open => "open",
            StateFilter::Closed => "closed",
            StateFilter::Leaking => "leaking",
        }
    }
}

struct Filter {
    state: StateFilter,
    label: String,
    page: u64,
    per_page: u64,
}

impl Filter {
    fn from_params(p: &Params) -> Result<Filter, DashError> {
        Ok(Filter {
            state: StateFilter::parse(p.get("state"))?,
            label: p.get("label").unwrap_or("").to_owned(),
            page: p.number("page", 1, 1, u64::from(u32::MAX))?,
            per_page: p.number("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)?,
        })
    }

    fn matches(&self, c: &ConnectionInfo) -> bool {
        let state = match self.state {
            StateFilter::All => true,
            StateFilter::Open => c.state == ConnState::Open,
            StateFilter::Closed => c.state == ConnState::Closed,
            StateFilter::Leaking => view::conn_state(c) == "leaking",
        };
        state && (self.label.is_empty() || c.label.contains(self.label.as_str()))
    }

    /// `?state=...&page=N...` for another page of the same filter.
    fn href(&self, page: u64, qa: &str) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if self.state != StateFilter::All {
            q.append_pair("state", self.state.as_str());
        }
        if !self.label.is_empty() {
            q.append_pair("label", &self.label);
        }
        q.append_pair("page", &page.to_string());
        if self.per_page != DEFAULT_PER_PAGE {
            q.append_pair("per_page", &self.per_page.to_string());
        }
        format!("?{}{qa}#connections", q.finish())
    }
}

struct Counter {
    key: &'static str,
    label: &'static str,
    value: String,
    /// `bytes` or `count`: how the live script formats updates.
    kind: &'static str,
    /// Shown in red when non-zero.
    alarm: bool,
    bad: bool,
}

struct ConnRow {
    id: u64,
    label: String,
    peer: String,
    /// `open`, `closed` or `leaking`: also the row's class.
    state: &'static str,
    opened: String,
    closed: String,
    close_reason: String,
    live_tasks: u64,
    orphan_tasks: u64,
    live_bytes: String,
    retained_bytes: String,
    /// `zombie: peer left N s ago, never read`.
    zombie: Option<String>,
    /// `not read for N s`.
    unread: Option<String>,
}

struct StateOption {
    value: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage<'a> {
    ctx: Ctx,
    mode: &'a str,
    mode_limits: &'a str,
    grace: String,
    heap_tracking: bool,
    warnings: &'a [String],
    counters: Vec<Counter>,
    v: Verdicts,
    orphans: Vec<OrphanRow>,
    orphans_listed: u64,
    orphans_more: u64,
    states: Vec<StateOption>,
    label: &'a str,
    per_page: u64,
    rows: Vec<ConnRow>,
    tracked: usize,
    matching: usize,
    first: usize,
    last: usize,
    page: u64,
    pages: u64,
    prev_href: Option<String>,
    next_href: Option<String>,
}

fn counters(s: &Snapshot) -> Vec<Counter> {
    let t = &s.totals;
    let h = &s.heap;
    let c = |key, label, value: u64, alarm| Counter {
        key,
        label,
        value: view::count(value),
        kind: "count",
        alarm,
        bad: alarm && value > 0,
    };
    let b = |key, label, value: u64, alarm| Counter {
        key,
        label,
        value: view::bytes(value),
        kind: "bytes",
        alarm,
        bad: alarm && value > 0,
    };
    vec![
        c(
            "open_connections",
            "open connections",
            t.open_connections,
            false,
        ),
        c("live_tasks", "live tasks", t.live_tasks, false),
        c("orphan_tasks", "orphan tasks", t.orphan_tasks, true),
        b("live_bytes", "live bytes", h.connection_live_bytes, false),
        b("retained_bytes", "retained bytes", h.retained_bytes, true),
        c(
            "connections_leaking_memory",
            "connections leaking memory",
            t.connections_leaking_memory,
            true,
        ),
        c(
            "connections_opened",
            "connections opened",
            t.connections_opened,
            false,
        ),
        c(
            "connections_closed",
            "connections closed",
            t.connections_closed,
            false,
        ),
        c(
            "connections_leaking",
            "connections leaking",
            t.connections_leaking,
            true,
        ),
        c("routes_leaking", "routes leaking", t.routes_leaking, true),
        c("shared_tasks", "shared global tasks", t.shared_tasks, false),
        c("tasks_spawned", "tasks spawned", t.tasks_spawned, false),
    ]
}

fn conn_row(now: u64, c: &ConnectionInfo) -> ConnRow {
    ConnRow {
        id: c.id,
        label: c.label.to_string(),
        peer: c.peer.as_deref().unwrap_or("-").to_owned(),
        state: view::conn_state(c),
        opened: view::ago(now, Some(c.opened_at_ms)),
        closed: view::ago(now, c.closed_at_ms),
        close_reason: c.close_reason.as_deref().unwrap_or("-").to_owned(),
        live_tasks: c.live_tasks,
        orphan_tasks: c.orphan_tasks,
        live_bytes: view::bytes(c.live_bytes),
        retained_bytes: view::bytes(c.retained_bytes),
        zombie: view::zombie_text(now, c),
        unread: view::unread_text(c),
    }
}

fn render(ctx: Ctx, s: &Snapshot, f: &Filter) -> Result<String, askama::Error> {
    let (orphans, listed) = view::orphan_rows(s, ORPHAN_ROWS);
    let matching: Vec<&ConnectionInfo> = s.connections.iter().filter(|c| f.matches(c)).collect();
    let per_page = f.per_page as usize;
    let pages = matching.len().div_ceil(per_page).max(1) as u64;
    let start = (f.page as usize - 1).saturating_mul(per_page);
    let rows: Vec<ConnRow> = matching
        .iter()
        .skip(start)
        .take(per_page)
        .map(|c| conn_row(s.taken_at_ms, c))
        .collect();
    let page = OverviewPage {
        mode: s.mode.as_str(),
        mode_limits: &s.mode_limits,
        grace: view::duration_ms(s.grace_ms),
        heap_tracking: s.heap.tracking,
        warnings: &s.warnings,
        counters: counters(s),
        v: verdicts::build(s, &ctx),
        orphans_more: listed.saturating_sub(orphans.len() as u64),
        orphans,
        orphans_listed: listed,
        states: f.state.options(),
        label: &f.label,
        per_page: f.per_page,
        tracked: s.connections.len(),
        matching: matching.len(),
        first: if rows.is_empty() { 0 } else { start + 1 },
        last: start + rows.len(),
        page: f.page,
        pages,
        prev_href: (f.page > 1).then(|| f.href(f.page.min(pages + 1) - 1, &ctx.qa)),
        next_href: (f.page < pages).then(|| f.href(f.page + 1, &ctx.qa)),
        rows,
        ctx,
    };
    page.render()
}

/// `GET /?state=open|closed|leaking&label=...&page=N&per_page=M`.
pub(crate) async fn overview(ctx: Ctx) -> DashResult<Html<String>> {
    let p = ctx.params(&["state", "label", "page", "per_page"])?;
    let filter = Filter::from_params(&p)?;
    let html = render(ctx, &leakscope::snapshot(), &filter)?;
    Ok(Html(html))
}
