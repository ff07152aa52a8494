//! The one seam into the collector: every change of its state is an [`Event`], applied by
//! [`State::apply`](super::State::apply). Wrappers, hooks and spawn helpers only produce
//! events; nothing else mutates the state.

use std::sync::Arc;

use crate::ids::{ConnId, Site, Tag, TaskId};
use crate::peer::Peer;
use crate::snapshot::EndedBy;
use crate::wrap::watch::ReadWatch;

/// What `leakscope::spawn` tells the spawn hook about the task it is about to spawn.
#[derive(Debug, Default, Clone)]
pub(crate) struct SpawnInfo {
    pub name: Option<Arc<str>>,
    pub detached: bool,
    pub blocking: bool,
    /// Spawned through leakscope's wrapper, which sees exactly how the task ends.
    pub wrapped: bool,
    /// Announced with [`Event::TaskAnnounced`] before its first poll (explicit-spawn mode).
    pub was_pending: bool,
}

/// A change of the collector's state.
#[derive(Debug)]
pub(crate) enum Event {
    /// A connection opened; answered with [`Applied::Opened`].
    Opened {
        label: Arc<str>,
        peer: Option<Peer>,
        /// The tokio runtime whose code opened it, when known (`Verify` marks).
        runtime: Option<u64>,
        /// Its socket's reads, as the wrappers will see them.
        reads: Option<Arc<ReadWatch>>,
    },
    /// Its socket closed (the first close wins).
    Closed { id: ConnId, reason: &'static str },
    /// Its peer left (FIN or RST) at `since_ms` and nobody has read the socket since: closed
    /// from then, marked as a zombie (the first close wins).
    Zombie {
        id: ConnId,
        since_ms: u64,
        reason: &'static str,
    },
    /// Renamed (the route, once known).
    Relabelled { id: ConnId, label: Arc<str> },
    /// Its peer address became known.
    PeerSet { id: ConnId, peer: Arc<str> },
    /// The tool's own traffic: forget its details, count it once as ignored.
    Ignored { id: ConnId },
    /// An explicit-spawn task of `tag` was created (`delta` 1) or dropped before its first poll
    /// (`delta` -1); it registers itself with [`Event::TaskSpawned`] on its first poll.
    TaskAnnounced { tag: Tag, delta: i64 },
    /// A task of `tag` was spawned. `ended`: how and when it ended, when its end came while
    /// this event still waited last in the task events' queue and was folded into it
    /// ([`Event::fold_end`]); applied exactly as this event and its [`Event::TaskEnded`] at
    /// that time would be.
    TaskSpawned {
        tag: Tag,
        task: TaskId,
        location: Site,
        info: SpawnInfo,
        ended: Option<(EndedBy, u64)>,
    },
    /// A task ended.
    TaskEnded { task: TaskId, ended_by: EndedBy },
    /// Something the user should know (deduplicated, bounded).
    Warned(String),
    /// Time passed: apply the grace, retention and capacity rules.
    Tick,
}

impl Event {
    /// Folds the end of `task` (`ended_by`, at time `at`) into `self` if `self` is that task's
    /// [`Event::TaskSpawned`]; whether it did.
    #[inline]
    pub(crate) fn fold_end(&mut self, task: TaskId, ended_by: EndedBy, at: u64) -> bool {
        match self {
            Event::TaskSpawned {
                task: spawned,
                ended: ended @ None,
                ..
            } if *spawned == task => {
                *ended = Some((ended_by, at));
                true
            }
            _ => false,
        }
    }
}

/// What applying an event answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    /// The new connection's id and tag (`Tag::NONE`: not tracked, every slot is in use).
    Opened { id: ConnId, tag: Tag },
    /// Nothing to answer.
    Done,
}
