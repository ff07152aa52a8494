//! The task timeline drawn as inline SVG: one bar per task from spawn to end (or now),
//! against the connection's open, close and end of grace.

use leakscope::{ConnectionInfo, TaskInfo, TaskState};

use crate::view;

const WIDTH: f64 = 1000.0;
/// Task names are written left of this.
const PLOT_X0: f64 = 250.0;
const PLOT_X1: f64 = 985.0;
/// Room above the rows: one line per mark label (opened, closed, grace over).
const TOP: u32 = 46;
const LABEL_LINE: u32 = 13;
const ROW: u32 = 22;
const BAR_H: u32 = 12;
const BOTTOM: u32 = 26;
const NAME_CHARS: usize = 34;

/// One task's bar.
pub(crate) struct Bar {
    pub task_id: u64,
    pub name: String,
    pub class: &'static str,
    pub title: String,
    pub x: String,
    pub w: String,
    pub y: u32,
    pub text_y: u32,
}

/// A vertical line with a label at the top.
pub(crate) struct Mark {
    pub x: String,
    pub class: &'static str,
    pub label: &'static str,
    /// `start` or `end`: which side of the line the label sits on.
    pub anchor: &'static str,
    pub label_x: String,
    /// Each mark has its own label line, so close marks never overlap.
    pub label_y: u32,
    /// Where the line starts (just under its label).
    pub line_y: u32,
}

/// A time tick on the axis.
pub(crate) struct Tick {
    pub x: String,
    pub label: String,
}

/// What the template draws.
pub(crate) struct Timeline {
    pub width: u32,
    pub height: u32,
    pub plot_x0: u32,
    pub plot_x1: u32,
    pub bar_h: u32,
    pub axis_y: u32,
    pub axis_text_y: u32,
    pub bars: Vec<Bar>,
    pub marks: Vec<Mark>,
    pub ticks: Vec<Tick>,
    /// Tasks not drawn (beyond the row limit).
    pub hidden: usize,
}

fn class_of(t: &TaskInfo) -> &'static str {
    if t.orphan {
        "orphan"
    } else if t.shared {
        "shared"
    } else if t.state == TaskState::Ended {
        "ended"
    } else if t.detached {
        "detached"
    } else {
        "alive"
    }
}

/// What a bar is called: the name given at spawn, else where it was spawned
/// (`src/heartbeat.rs:17:5`); names are `conn=<id> <name>`, the id is already on the page.
fn bar_label(t: &TaskInfo) -> String {
    match t.name.split_once(' ') {
        Some((_, name)) => short(name),
        None => {
            let loc = t.spawned_at.as_str();
            let start = loc.rmatch_indices('/').nth(1).map_or(0, |(i, _)| i + 1);
            short(&loc[start..])
        }
    }
}

fn short(name: &str) -> String {
    if name.chars().count() <= NAME_CHARS {
        name.to_owned()
    } else {
        let mut s: String = name.chars().take(NAME_CHARS - 1).collect();
        s.push('…');
        s
    }
}

/// Maps times in `t0..=t1` (Unix milliseconds) to x coordinates of the plot.
struct Scale {
    t0: u64,
    t1: u64,
}

impl Scale {
    fn x(&self, t: u64) -> f64 {
        let span = (self.t1 - self.t0) as f64;
        PLOT_X0 + (t.clamp(self.t0, self.t1) - self.t0) as f64 / span * (PLOT_X1 - PLOT_X0)
    }
}

/// An SVG coordinate.
fn fx(v: f64) -> String {
    format!("{v:.1}")
}

/// Task `t`'s bar in row `row`.
fn bar(scale: &Scale, row: usize, t: &TaskInfo, now_ms: u64) -> Bar {
    let end = t.ended_at_ms.unwrap_or(now_ms);
    let (x0, x1) = (scale.x(t.spawned_at_ms), scale.x(end));
    let y = TOP + row as u32 * ROW;
    Bar {
        task_id: t.id,
        name: bar_label(t),
        class: class_of(t),
        title: format!(
            "task {} {}: {}, lived {}, spawned at {}",
            t.id,
            t.name,
            view::task_state(t),
            view::lifetime(t, now_ms),
            t.spawned_at
        ),
        x: fx(x0),
        w: fx((x1 - x0).max(2.0)),
        y,
        text_y: y + BAR_H - 1,
    }
}

/// The connection's opened, closed and grace-over lines, each label on its own line.
fn marks(scale: &Scale, conn: &ConnectionInfo, grace_ms: u64) -> Vec<Mark> {
    let mut marks = Vec::new();
    let mut mark_at = |t: u64, class, label: &'static str| {
        let xm = scale.x(t);
        let line = marks.len() as u32;
        // Flip the label to the left of its line near the right edge.
        let fits = xm + 8.0 + label.len() as f64 * 7.0 < PLOT_X1;
        marks.push(Mark {
            x: fx(xm),
            class,
            label,
            anchor: if fits { "start" } else { "end" },
            label_x: fx(if fits { xm + 4.0 } else { xm - 4.0 }),
            label_y: 11 + line * LABEL_LINE,
            line_y: 3 + line * LABEL_LINE,
        });
    };
    mark_at(conn.opened_at_ms, "opened", "opened");
    if let Some(closed) = conn.closed_at_ms {
        mark_at(closed, "closed", "socket closed");
        let grace_end = closed + grace_ms;
        if grace_end < scale.t1 {
            mark_at(grace_end, "grace", "grace over");
        }
    }
    marks
}

/// The tick `back` milliseconds before now.
fn tick(scale: &Scale, back: u64) -> Tick {
    Tick {
        x: fx(scale.x(scale.t1 - back)),
        label: if back == 0 {
            "now".to_owned()
        } else {
            format!("−{}", view::duration_ms(back))
        },
    }
}

/// Lays out `tasks` (already in display order) of `conn`, at most `max_rows` of them.
pub(crate) fn build(
    conn: &ConnectionInfo,
    tasks: &[&TaskInfo],
    now_ms: u64,
    grace_ms: u64,
    max_rows: usize,
) -> Timeline {
    let shown = &tasks[..tasks.len().min(max_rows)];
    let t0 = shown
        .iter()
        .map(|t| t.spawned_at_ms)
        .chain(std::iter::once(conn.opened_at_ms))
        .min()
        .unwrap_or(now_ms);
    let scale = Scale {
        t0,
        t1: now_ms.max(t0 + 1),
    };
    let bars: Vec<Bar> = (shown.iter().enumerate())
        .map(|(row, t)| bar(&scale, row, t, now_ms))
        .collect();
    let axis_y = TOP + bars.len().max(1) as u32 * ROW;
    Timeline {
        width: WIDTH as u32,
        height: axis_y + BOTTOM,
        plot_x0: PLOT_X0 as u32,
        plot_x1: PLOT_X1 as u32,
        bar_h: BAR_H,
        axis_y,
        axis_text_y: axis_y + 17,
        bars,
        marks: marks(&scale, conn, grace_ms),
        ticks: ticks(scale.t1 - scale.t0)
            .map(|b| tick(&scale, b))
            .collect(),
        hidden: tasks.len() - shown.len(),
    }
}

/// Offsets back from now (milliseconds) for at most 6 ticks at a round step.
fn ticks(span_ms: u64) -> impl Iterator<Item = u64> {
    const STEPS: [u64; 17] = [
        1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 300_000,
        600_000,
    ];
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span_ms / s <= 5)
        .unwrap_or_else(|| (span_ms / 5).max(1));
    (0..=span_ms / step).map(move |k| k * step)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bars_are_named_by_spawn_name_or_location() {
        let snap = crate::testing::snapshot(serde_json::json!({
            "tasks": [
                {"id": 1, "conn_id": 7, "name": "conn=7 forwarder", "spawned_at": "src/a.rs:1:2",
                 "state": "alive", "ended_by": null, "spawned_at_ms": 0, "ended_at_ms": null,
                 "orphan": false, "outlived_close_ms": null, "detached": false, "kind": "async"},
                {"id": 2, "conn_id": 7, "name": "conn=7",
                 "spawned_at": "examples/leaky-chat/src/heartbeat.rs:17:5",
                 "state": "alive", "ended_by": null, "spawned_at_ms": 0, "ended_at_ms": null,
                 "orphan": false, "outlived_close_ms": null, "detached": false, "kind": "async"}
            ]
        }));
        assert_eq!(super::bar_label(&snap.tasks[0]), "forwarder");
        assert_eq!(super::bar_label(&snap.tasks[1]), "src/heartbeat.rs:17:5");
    }

    #[test]
    fn ticks_are_round_and_few() {
        let t: Vec<u64> = super::ticks(5_500).collect();
        assert_eq!(t, vec![0, 1_000, 2_000, 3_000, 4_000, 5_000]);
        let t: Vec<u64> = super::ticks(43_200).collect();
        assert_eq!(t, vec![0, 10_000, 20_000, 30_000, 40_000]);
        assert!(super::ticks(86_400_000).count() <= 6);
        assert_eq!(super::ticks(0).collect::<Vec<_>>(), vec![0]);
    }
}
