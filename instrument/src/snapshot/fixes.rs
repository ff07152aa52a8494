//! Why a red row is red and how to fix it: the likely leak pattern from what leakscope knows
//! (parked or still running since the close, blocking or async, bytes or tasks, and the await
//! point's leaf when a task dump names it), with the section of `docs/fixes.md` that shows a
//! tested before/after fix.

use serde::{Deserialize, Serialize};

#[cfg(feature = "enabled")]
use super::{Signature, SignatureKind, Verdict};
use super::{TaskInfo, TaskKind};

/// A leak pattern, each with a section in `docs/fixes.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FixPattern {
    /// Parked since the close on something the task dump does not name yet.
    Parked,
    /// Parked on a broadcast or mpsc receive whose senders outlive the connection.
    ChannelReceive,
    /// Parked on a oneshot or a `Notify` nobody will complete.
    OneshotOrNotify,
    /// Still running: a loop woken by a timer (interval, sleep) or by a channel that keeps
    /// delivering.
    TickingLoop,
    /// Waiting on a `JoinSet` kept past the connection.
    JoinSet,
    /// A blocking task parked on a blocking channel.
    BlockingChannel,
    /// Bytes kept past the close (a map entry, a cache).
    MapEntry,
}

impl FixPattern {
    /// Every pattern, each with its section in `docs/fixes.md`.
    pub const ALL: [FixPattern; 7] = [
        FixPattern::Parked,
        FixPattern::ChannelReceive,
        FixPattern::OneshotOrNotify,
        FixPattern::TickingLoop,
        FixPattern::JoinSet,
        FixPattern::BlockingChannel,
        FixPattern::MapEntry,
    ];

    /// The section of `docs/fixes.md` (its anchor).
    pub fn anchor(self) -> &'static str {
        match self {
            FixPattern::Parked => "parked-since-close",
            FixPattern::ChannelReceive => "parked-on-a-channel-receive",
            FixPattern::OneshotOrNotify => "parked-on-a-oneshot-or-notify",
            FixPattern::TickingLoop => "a-loop-that-keeps-ticking",
            FixPattern::JoinSet => "a-joinset-that-outlives-the-connection",
            FixPattern::BlockingChannel => "a-blocking-task-on-a-channel",
            FixPattern::MapEntry => "bytes-kept-in-a-map",
        }
    }

    /// One sentence: what the leak is and the fix.
    pub fn summary(self) -> &'static str {
        match self {
            FixPattern::Parked => {
                "parked since the close, waiting on something that will never come: abort it when \
                 the connection closes, or select! on a close signal (the task dump names what \
                 it waits on)"
            }
            FixPattern::ChannelReceive => {
                "parked on a channel receive whose senders outlive the connection: abort it when \
                 the connection closes (keep its JoinHandle in a guard), or select! on a close \
                 signal"
            }
            FixPattern::OneshotOrNotify => {
                "parked on a oneshot or Notify that nobody completes: select! on a close signal \
                 (a CancellationToken) beside it"
            }
            FixPattern::TickingLoop => {
                "still running after the close, woken by a timer or by a channel that keeps \
                 delivering: stop it with a CancellationToken (tokio-util) cancelled when the \
                 connection closes, or abort it then"
            }
            FixPattern::JoinSet => {
                "a JoinSet (or set of handles) kept past the connection: abort_all on close, or \
                 let the connection own it so dropping it aborts its tasks"
            }
            FixPattern::BlockingChannel => {
                "a blocking task parked on a channel: drop the Sender when the connection closes, \
                 so recv returns and the task ends"
            }
            FixPattern::MapEntry => {
                "bytes kept after the close (a map entry, a cache): remove the entry when the \
                 connection closes (a drop guard)"
            }
        }
    }
}

/// The likely pattern of a leak and where its fix is described.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FixHint {
    /// The pattern (`"parked"`, `"channel-receive"`, `"ticking-loop"`, ...).
    pub pattern: FixPattern,
    /// What it is and the fix, in one sentence.
    pub summary: String,
    /// `docs/fixes.md#<section>`.
    pub doc: String,
}

impl From<FixPattern> for FixHint {
    fn from(p: FixPattern) -> Self {
        FixHint {
            pattern: p,
            summary: p.summary().to_owned(),
            doc: format!("docs/fixes.md#{}", p.anchor()),
        }
    }
}

/// The pattern a task dump's trace names, from its innermost known await point (the trace
/// runs from the task's root down to the leaf it waits on: the last match wins).
pub fn pattern_of_trace(trace: &str) -> Option<FixPattern> {
    const LEAVES: [(&str, FixPattern); 10] = [
        ("broadcast::Receiver", FixPattern::ChannelReceive),
        ("mpsc::bounded::Receiver", FixPattern::ChannelReceive),
        ("mpsc::unbounded::Unbounded", FixPattern::ChannelReceive),
        ("mpsc::chan::Rx", FixPattern::ChannelReceive),
        ("watch::Receiver", FixPattern::ChannelReceive),
        ("oneshot::Receiver", FixPattern::OneshotOrNotify),
        ("Notify", FixPattern::OneshotOrNotify),
        ("JoinSet", FixPattern::JoinSet),
        ("time::interval", FixPattern::TickingLoop),
        ("time::sleep", FixPattern::TickingLoop),
    ];
    LEAVES
        .iter()
        .filter_map(|(needle, p)| trace.rfind(needle).map(|at| (at, *p)))
        .max_by_key(|(at, _)| *at)
        .map(|(_, p)| p)
}

impl TaskInfo {
    /// The likely leak pattern of an orphan (`None` for other tasks), refined by the await
    /// point a task dump names (`trace`) when there is one.
    pub fn fix_hint(&self, trace: Option<&str>) -> Option<FixHint> {
        if !self.orphan {
            return None;
        }
        if self.kind == TaskKind::Blocking {
            return Some(FixPattern::BlockingChannel.into());
        }
        if let Some(p) = trace.and_then(pattern_of_trace) {
            return Some(p.into());
        }
        match self.polls_since_close {
            Some(n) if n > 0 => Some(FixPattern::TickingLoop.into()),
            _ => Some(FixPattern::Parked.into()),
        }
    }
}

/// Fills each leaking signature's `fix` from its kind and, for tasks, from its orphans in
/// `tasks`: blocking, still running (any of them polled since the close), or parked. Bytes kept
/// on a route whose tasks leak too are most likely those tasks' state (the fix is theirs);
/// otherwise they sit in a structure that outlives the connection (a map).
#[cfg(feature = "enabled")]
pub(crate) fn fill(signatures: &mut [Signature], tasks: &[TaskInfo]) {
    let leak = |s: &Signature| s.verdict == Verdict::Leak;
    for s in signatures
        .iter_mut()
        .filter(|s| leak(s) && s.kind == SignatureKind::Task)
    {
        let mine = tasks.iter().filter(|t| t.orphan && t.spawned_at == s.site);
        let (mut blocking, mut running) = (false, false);
        for t in mine {
            blocking |= t.kind == TaskKind::Blocking;
            running |= t.polls_since_close.is_some_and(|n| n > 0);
        }
        s.fix = Some(if blocking {
            FixPattern::BlockingChannel.into()
        } else if running {
            FixPattern::TickingLoop.into()
        } else {
            FixPattern::Parked.into()
        });
    }
    let task_fix = |label: &str, sigs: &[Signature]| {
        sigs.iter()
            .find(|t| t.kind == SignatureKind::Task && t.label == label && t.fix.is_some())
            .and_then(|t| t.fix.clone())
    };
    for i in 0..signatures.len() {
        let s = &signatures[i];
        if leak(s) && s.kind == SignatureKind::Bytes {
            let fix = task_fix(&s.label, signatures).unwrap_or_else(|| FixPattern::MapEntry.into());
            signatures[i].fix = Some(fix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_innermost_known_await_point_names_the_pattern() {
        let trace = "╼ forwarder at src/chat.rs:40\n  └╼ tokio::sync::broadcast::Receiver<T>::recv::{{closure}}\n     └╼ <tokio::sync::broadcast::Recv<T> as Future>::poll";
        assert_eq!(pattern_of_trace(trace), Some(FixPattern::ChannelReceive));
        let tick = "╼ heartbeat\n  └╼ tokio::time::interval::Interval::tick::{{closure}}";
        assert_eq!(pattern_of_trace(tick), Some(FixPattern::TickingLoop));
        assert_eq!(pattern_of_trace("╼ something else"), None);
        let hint: FixHint = FixPattern::JoinSet.into();
        assert_eq!(
            hint.doc,
            "docs/fixes.md#a-joinset-that-outlives-the-connection"
        );
    }
}
