//! A connection's own log lines: per connection, a bounded ring of the last `tracing` events
//! its code emitted (recorded by [`crate::layer`]), kept as long as the collector keeps the
//! connection.
//!
//! The rings live beside the collector, not in it: recording an event takes one of 16 shard
//! locks and never the collector's lock (a snapshot's copy never delays a log line). A ring
//! exists only for a tag whose slot it still owns, checked under the shard lock; the collector
//! forgets a connection's ring after recycling its slot ([`forget`], called from
//! `State::remove`), so a late event of a forgotten connection (an orphan logging after its
//! connection was folded) finds its tag stale and is dropped: the rings are bounded by the
//! connections tracked, each by `events_per_connection` events of bounded text.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;

use tracing::field::{Field, Visit};

use crate::heap::slots;
use crate::ids::Tag;
use crate::snapshot::{ConnectionInfo, LogEvent};

const SHARDS: usize = 16;

/// A kept line: [`LogEvent`] without its per-line allocations (level and target are static;
/// the text buffers are reused, see [`SPARE`]).
struct Line {
    at_ms: u64,
    level: &'static str,
    target: &'static str,
    text: Text,
    task_id: Option<u64>,
}

impl Line {
    fn event(&self) -> LogEvent {
        LogEvent {
            at_ms: self.at_ms,
            level: self.level.to_owned(),
            target: self.target.to_owned(),
            message: self.text.message.clone(),
            fields: self.text.fields.clone(),
            task_id: self.task_id,
        }
    }
}

#[derive(Default)]
struct Ring {
    lines: VecDeque<Line>,
    dropped: u64,
}

type Shard = Mutex<Option<HashMap<Tag, Ring>>>;

static RINGS: [Shard; SHARDS] = [const { Mutex::new(None) }; SHARDS];

std::thread_local! {
    /// The text buffers of the line a ring dropped last on this thread, formatted into next:
    /// a full ring records a line without allocating. (Taken while in use: an event logged
    /// by a `Debug` impl during formatting gets fresh buffers.)
    static SPARE: std::cell::Cell<Option<Text>> = const { std::cell::Cell::new(None) };
}

fn shard(tag: Tag) -> std::sync::MutexGuard<'static, Option<HashMap<Tag, Ring>>> {
    RINGS[tag.slot() % SHARDS]
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Records `event` as connection `tag`'s, keeping the last `keep`. The caller (the layer) has
/// checked that `tag` is a connection's and `keep` is not 0, and runs untracked (the ring is
/// leakscope's memory, nobody's retained bytes).
pub(crate) fn record(tag: Tag, keep: usize, event: &tracing::Event<'_>, task_id: Option<u64>) {
    debug_assert!(keep > 0 && !tag.is_none());
    let meta = event.metadata();
    let mut text = SPARE.take().unwrap_or_default();
    text.message.clear();
    text.fields.clear();
    event.record(&mut text);
    let line = Line {
        at_ms: crate::clock::now_ms(),
        level: meta.level().as_str(),
        target: meta.target(),
        text,
        task_id,
    };
    let dropped = {
        let mut g = shard(tag);
        // Under the shard lock: `forget` runs after the slot moved on (see the module docs).
        if !slots::global().is_current(tag) {
            return;
        }
        let ring = g.get_or_insert_with(HashMap::new).entry(tag).or_default();
        let mut dropped = None;
        while ring.lines.len() >= keep {
            dropped = ring.lines.pop_front();
            ring.dropped += 1;
        }
        ring.lines.push_back(line);
        dropped
    };
    if let Some(old) = dropped {
        SPARE.set(Some(old.text));
    }
}

/// Forgets connection `tag`'s ring. Called after its slot was recycled.
pub(crate) fn forget(tag: Tag) {
    let mut g = shard(tag);
    if let Some(map) = g.as_mut() {
        map.remove(&tag);
    }
}

/// Fills `events` and `events_dropped` of `rows[i]` for each `(tag, i)` in `want`.
pub(crate) fn fill(rows: &mut [ConnectionInfo], want: impl IntoIterator<Item = (Tag, usize)>) {
    for (tag, i) in want {
        let g = shard(tag);
        if let (Some(ring), Some(row)) = (g.as_ref().and_then(|m| m.get(&tag)), rows.get_mut(i)) {
            row.events = ring.lines.iter().map(Line::event).collect();
            row.events_dropped = ring.dropped;
        }
    }
}

/// An event's message and other fields, each cut at [`LogEvent::MAX_TEXT`] bytes.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Text {
    fn push(&mut self, field: &Field, value: std::fmt::Arguments<'_>) {
        let out = if field.name() == "message" {
            &mut self.message
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            self.fields.push_str(field.name());
            self.fields.push('=');
            &mut self.fields
        };
        // Stops formatting past the cap: a huge value costs no more than a short one.
        let _ = Bounded(out).write_fmt(value);
        cut(out);
    }
}

/// A writer that refuses text past [`LogEvent::MAX_TEXT`] (+ one character to mark the cut).
struct Bounded<'a>(&'a mut String);

impl std::fmt::Write for Bounded<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = (LogEvent::MAX_TEXT + 4).saturating_sub(self.0.len());
        if s.len() <= room {
            self.0.push_str(s);
            return Ok(());
        }
        let mut at = room;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        self.0.push_str(&s[..at]);
        Err(std::fmt::Error)
    }
}

/// Cuts `s` at [`LogEvent::MAX_TEXT`] bytes (on a character boundary), marking the cut.
fn cut(s: &mut String) {
    if s.len() <= LogEvent::MAX_TEXT {
        return;
    }
    let mut at = LogEvent::MAX_TEXT;
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    s.truncate(at);
    s.push('…');
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.push(field, format_args!("{value}"));
        } else {
            self.push(field, format_args!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, format_args!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_on_a_character_boundary() {
        let mut s = "é".repeat(200);
        cut(&mut s);
        assert!(s.len() <= LogEvent::MAX_TEXT + '…'.len_utf8());
        assert!(s.ends_with('…'));
        let mut long = String::new();
        let _ = Bounded(&mut long).write_fmt(format_args!("{:?}", vec![0u8; 1 << 20]));
        assert!(
            long.len() <= LogEvent::MAX_TEXT + 4,
            "stopped formatting early"
        );
        let mut short = "short".to_owned();
        cut(&mut short);
        assert_eq!(short, "short");
    }
}
