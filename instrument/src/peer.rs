//! A connection's peer: text as a caller gave it, or a socket address that is formatted only
//! when something shows it. Formatting an address (`127.0.0.1:40312`) costs about 1,750
//! instructions (callgrind, `docs/benchmarks-history.md`, session 10), and a connection that no snapshot and no
//! subscriber ever shows needs no text.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// A peer as a wrapper hands it to `Connection::open`: turned into a [`Peer`] by the
/// collector's side of the open, under leakscope's untracked guard (what it allocates is
/// leakscope's, never the calling connection's).
#[derive(Debug)]
#[cfg_attr(not(feature = "enabled"), allow(dead_code))]
pub(crate) enum PeerIn {
    Text(String),
    Addr(SocketAddr),
}

/// A connection's peer, as its record keeps it: cheap to copy into a snapshot (an `Arc`).
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "enabled"), allow(dead_code))]
pub(crate) enum Peer {
    /// As given (`Connection::open`, `Connection::set_peer`).
    Text(Arc<str>),
    /// An address, and its text once something asked for it (shared by every copy).
    Addr(Arc<(SocketAddr, OnceLock<Arc<str>>)>),
}

#[cfg_attr(not(feature = "enabled"), allow(dead_code))]
impl Peer {
    /// Call under leakscope's untracked guard: it allocates.
    pub(crate) fn new(p: PeerIn) -> Peer {
        match p {
            PeerIn::Text(t) => Peer::Text(t.into()),
            PeerIn::Addr(a) => Peer::Addr(Arc::new((a, OnceLock::new()))),
        }
    }

    /// The peer as text: an address is formatted the first time, by whoever asks first (a
    /// snapshot's view, outside the collector's lock), then kept.
    pub(crate) fn text(&self) -> Arc<str> {
        match self {
            Peer::Text(t) => t.clone(),
            Peer::Addr(a) => {
                a.1.get_or_init(|| {
                    // leakscope's own memory, whoever asks.
                    #[cfg(feature = "enabled")]
                    let _g = crate::tag::untracked();
                    a.0.to_string().into()
                })
                .clone()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_formatted_once_and_reads_as_given_text_would() {
        let a: SocketAddr = "127.0.0.1:40312".parse().unwrap();
        let p = Peer::new(PeerIn::Addr(a));
        let copy = p.clone();
        assert!(
            matches!(&p, Peer::Addr(c) if c.1.get().is_none()),
            "not formatted yet"
        );
        let first = copy.text();
        assert_eq!(&*first, "127.0.0.1:40312");
        assert!(
            Arc::ptr_eq(&first, &p.text()),
            "kept and shared, not formatted again"
        );
        let v6: SocketAddr = "[::1]:8080".parse().unwrap();
        assert_eq!(&*Peer::new(PeerIn::Addr(v6)).text(), "[::1]:8080");
        assert_eq!(&*Peer::new(PeerIn::Text("peer-7".into())).text(), "peer-7");
    }
}
