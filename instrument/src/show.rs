//! Step 4, **show**: the public read side. Every question goes to a [`Source`]: the collector
//! with the `enabled` feature, or [`Off`], which answers "disabled", without it. The feature is
//! looked at once, in [`source`].

use crate::config::Config;
use crate::snapshot::{Mode, ProfileOf, Snapshot};

/// What the public functions ask.
pub(crate) trait Source {
    fn mode(&self) -> Mode;
    fn snapshot(&self) -> Snapshot;
    fn summary(&self, orphan_limit: usize) -> Snapshot;
    fn connections(&self) -> Snapshot;
    fn connection(&self, id: u64) -> Option<Snapshot>;
    fn task(&self, id: u64) -> Option<Snapshot>;
    fn config(&self) -> Config;
    fn heap_profile(&self, of: &ProfileOf) -> Option<Vec<u8>>;
}

/// The answers with the feature off.
#[cfg_attr(feature = "enabled", allow(dead_code))]
pub(crate) struct Off;

#[cfg_attr(feature = "enabled", allow(dead_code))]
impl Off {
    fn empty() -> Snapshot {
        Snapshot::empty(Mode::Disabled, Config::DEFAULT_GRACE.as_millis() as u64)
    }
}

impl Source for Off {
    fn mode(&self) -> Mode {
        Mode::Disabled
    }
    fn snapshot(&self) -> Snapshot {
        Off::empty()
    }
    fn summary(&self, _orphan_limit: usize) -> Snapshot {
        Off::empty()
    }
    fn connections(&self) -> Snapshot {
        Off::empty()
    }
    fn connection(&self, _id: u64) -> Option<Snapshot> {
        None
    }
    fn task(&self, _id: u64) -> Option<Snapshot> {
        None
    }
    fn config(&self) -> Config {
        Config::default()
    }
    fn heap_profile(&self, _of: &ProfileOf) -> Option<Vec<u8>> {
        None
    }
}

#[cfg(feature = "enabled")]
impl Source for crate::collector::Collector {
    fn mode(&self) -> Mode {
        self.mode()
    }
    fn snapshot(&self) -> Snapshot {
        self.snapshot()
    }
    fn summary(&self, orphan_limit: usize) -> Snapshot {
        self.summary(orphan_limit)
    }
    fn connections(&self) -> Snapshot {
        self.connections()
    }
    fn connection(&self, id: u64) -> Option<Snapshot> {
        self.connection(id)
    }
    fn task(&self, id: u64) -> Option<Snapshot> {
        self.task(id)
    }
    fn config(&self) -> Config {
        self.config.clone()
    }
    fn heap_profile(&self, of: &ProfileOf) -> Option<Vec<u8>> {
        self.heap_profile(of)
    }
}

/// The collector, or [`Off`].
pub(crate) fn source() -> &'static dyn Source {
    #[cfg(feature = "enabled")]
    {
        crate::collector::get()
    }
    #[cfg(not(feature = "enabled"))]
    {
        &Off
    }
}
