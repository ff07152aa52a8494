//! The `enabled` feature is off: a [`crate::Connection`] never has a live side. Same surface as
//! `live.rs`; nothing here can run.

use std::sync::Arc;

use crate::peer::PeerIn;

/// Uninhabited: no value exists, so every method below is unreachable.
pub(crate) enum Inner {}

pub(crate) fn open(_label: &str, _peer: Option<PeerIn>) -> Option<Arc<Inner>> {
    None
}

pub(crate) fn current() -> Option<Arc<Inner>> {
    None
}

impl Inner {
    pub(crate) fn id(&self) -> u64 {
        match *self {}
    }
    pub(crate) fn set_label(&self, _label: &str) {
        match *self {}
    }
    pub(crate) fn set_peer(&self, _peer: String) {
        match *self {}
    }
    pub(crate) fn ignore(&self) {
        match *self {}
    }
    pub(crate) fn close(&self, _reason: &'static str) {
        match *self {}
    }
    pub(crate) fn run<R>(&self, _f: impl FnOnce() -> R) -> R {
        match *self {}
    }
    pub(crate) fn poll<R>(&self, _f: impl FnOnce() -> R) -> R {
        match *self {}
    }
    pub(crate) fn watch(self: &Arc<Self>, _stream: Option<&dyn std::any::Any>) {
        match **self {}
    }
    pub(crate) fn note_read(&self, _pending: bool) {
        match *self {}
    }
    pub(crate) fn note_reader(&self) {
        match *self {}
    }
    pub(crate) fn forget_reader(&self) {
        match *self {}
    }
}
