//! A connection's peer: text as a caller gave it, or a socket address that is formatted only
//! when something shows it. Formatting an address (`127.0.0.1:40312`) costs about 1,700
//! instructions, more than the rest of opening a connection's record (callgrind,
//! `docs/benchmarks.md`), and most connections of a busy server are never looked at one by one.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// A connection's peer address.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "enabled"), allow(dead_code))]
pub(crate) enum Peer {
    /// As given (`Connection::open`, `Connection::set_peer`).
    Text(Arc<str>),
    /// An address, and its text once something asked for it.
    Addr(SocketAddr, OnceLock<Arc<str>>),
}

#[cfg_attr(not(feature = "enabled"), allow(dead_code))]
impl Peer {
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn addr(a: SocketAddr) -> Peer {
        Peer::Addr(a, OnceLock::new())
    }

    /// The peer as text: an address is formatted the first time, then kept.
    pub(crate) fn text(&self) -> Arc<str> {
        match self {
            Peer::Text(t) => t.clone(),
            Peer::Addr(a, text) => text
                .get_or_init(|| {
                    // leakscope's own memory, whoever asks.
                    #[cfg(feature = "enabled")]
                    let _g = crate::tag::untracked();
                    a.to_string().into()
                })
                .clone(),
        }
    }
}

impl From<String> for Peer {
    fn from(s: String) -> Peer {
        Peer::Text(s.into())
    }
}

/// For a `tracing` span's field: written only if a subscriber records it.
impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Text(t) => f.write_str(t),
            Peer::Addr(a, _) => a.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_formatted_once_and_reads_as_given_text_would() {
        let a: SocketAddr = "127.0.0.1:40312".parse().unwrap();
        let p = Peer::addr(a);
        assert!(
            matches!(&p, Peer::Addr(_, t) if t.get().is_none()),
            "not formatted yet"
        );
        assert_eq!(p.to_string(), "127.0.0.1:40312");
        let first = p.text();
        assert_eq!(&*first, "127.0.0.1:40312");
        assert!(Arc::ptr_eq(&first, &p.text()), "kept, not formatted again");
        let v6: SocketAddr = "[::1]:8080".parse().unwrap();
        assert_eq!(&*Peer::addr(v6).text(), "[::1]:8080");
        assert_eq!(&*Peer::from("peer-7".to_owned()).text(), "peer-7");
    }
}
