//! Sockets nobody reads (feature `enabled`).
//!
//! **Reads.** Every wrapper that sees a connection's reads ([`crate::io::track`], the
//! `serve` listener wrapper, the axum `WebSocket`) keeps a [`ReadWatch`]: when its socket was
//! last polled for reading and whether a reader is waiting on it now. A waiting reader is woken
//! by the peer's FIN or RST and sees it; a connection with live tasks and no reader waiting for
//! [`Config::unread_hint`](crate::Config) gets a "not read for N s" hint in the snapshot.
//!
//! **Zombies.** Where leakscope holds the TCP socket itself (the listener wrapper, `io::track`
//! of a `tokio::net::TcpStream`), a watcher thread reads the kernel's view of each watched
//! socket from `/proc/net/tcp{,6}` (matched by the socket's inode): `CLOSE_WAIT` (the peer sent
//! FIN) or absent (the peer reset it), seen on two scans [`CONFIRM`] apart with no read
//! poll in between, makes the connection a *zombie*: closed for
//! the orphan rule from the first of the two scans, with reason "peer left, never read". This
//! reads no byte of the socket, so it never takes the application's read readiness or waker.
//! The cost is one scan of the host's TCP table every `Config::zombie_scan` (250 ms) while
//! any socket is watched (measured in docs/benchmarks.md). Elsewhere than Linux the watcher is off and says so.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use super::live::Inner;
use crate::clock;

/// How long a peer's close must stay unread before the connection is a zombie.
pub(crate) const CONFIRM: Duration = Duration::from_millis(400);

/// When a connection's socket was last polled for reading, and whether a reader waits on it.
#[derive(Debug, Default)]
pub(crate) struct ReadWatch {
    /// Some wrapper sees this socket's reads (otherwise nothing below means anything).
    visible: AtomicBool,
    /// Read polls so far.
    polls: AtomicU64,
    /// The last read poll (coarse ms), or when watching started.
    last_ms: AtomicU64,
    /// The last read poll returned `Pending`: a reader is parked on the socket.
    waiting: AtomicBool,
}

/// What a snapshot reads of a [`ReadWatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reads {
    pub last_ms: u64,
    pub waiting: bool,
}

impl ReadWatch {
    /// A wrapper that sees reads took the socket: watching starts now.
    pub(crate) fn start(&self) {
        if !self.visible.swap(true, Ordering::Relaxed) {
            self.last_ms.store(clock::coarse_ms(), Ordering::Relaxed);
        }
    }

    /// The socket was polled for reading; `pending`: the reader now waits for data.
    #[inline]
    pub(crate) fn polled(&self, pending: bool) {
        // One poller at a time per socket (`&mut` access): no read-modify-write needed.
        self.polls
            .store(self.polls.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.last_ms.store(clock::coarse_ms(), Ordering::Relaxed);
        self.waiting.store(pending, Ordering::Relaxed);
    }

    /// `None` when no wrapper sees this socket's reads.
    pub(crate) fn get(&self) -> Option<Reads> {
        self.visible.load(Ordering::Relaxed).then(|| Reads {
            last_ms: self.last_ms.load(Ordering::Relaxed),
            waiting: self.waiting.load(Ordering::Relaxed),
        })
    }
}

/// A socket the watcher looks at.
struct Watched {
    conn: Weak<Inner>,
    inode: u64,
    /// Listed in `/proc/net/tcp6` (else `/proc/net/tcp`).
    v6: bool,
    /// (read polls, coarse ms) when its peer's close was first seen unread.
    suspect: Option<(u64, u64)>,
}

static WATCHED: Mutex<Vec<Watched>> = Mutex::new(Vec::new());
static WATCHER: OnceLock<Result<(), String>> = OnceLock::new();

/// Watches `stream` (a `tokio::net::TcpStream`; anything else is not watched) as `conn`'s
/// socket, and sets TCP keepalive on it if configured.
pub(crate) fn socket(conn: &Arc<Inner>, stream: &dyn Any) {
    let Some(tcp) = stream.downcast_ref::<tokio::net::TcpStream>() else {
        return;
    };
    let cfg = &crate::collector::get().config;
    if let Some(idle) = cfg.tcp_keepalive {
        let ka = socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(idle);
        if let Err(e) = socket2::SockRef::from(tcp).set_tcp_keepalive(&ka) {
            warn_once(format!("TCP keepalive could not be set: {e}"));
        }
    }
    if cfg.zombie_scan.is_zero() {
        return;
    }
    let Some(inode) = inode_of(tcp) else {
        warn_once(
            "zombie sockets are not detected here (no /proc/self/fd): connections whose peer \
             left get the \"not read for N s\" hint only"
                .to_owned(),
        );
        return;
    };
    if let Err(e) = WATCHER.get_or_init(start) {
        warn_once(format!("zombie watcher not started: {e}"));
        return;
    }
    // An IPv4-mapped address is an IPv6 socket: it is listed in tcp6.
    let v6 = tcp.local_addr().is_ok_and(|a| a.is_ipv6());
    lock().push(Watched {
        conn: Arc::downgrade(conn),
        inode,
        v6,
        suspect: None,
    });
}

fn warn_once(msg: String) {
    crate::collector::get().warn(msg);
}

fn lock() -> std::sync::MutexGuard<'static, Vec<Watched>> {
    WATCHED.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(target_os = "linux")]
fn inode_of(tcp: &tokio::net::TcpStream) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", tcp.as_raw_fd())).ok()?;
    let s = link.to_str()?;
    s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

#[cfg(not(target_os = "linux"))]
fn inode_of(_tcp: &tokio::net::TcpStream) -> Option<u64> {
    None
}

fn start() -> Result<(), String> {
    std::thread::Builder::new()
        .name("leakscope-zombies".into())
        .spawn(|| {
            let mut buf = Vec::new();
            let every = crate::collector::get().config.zombie_scan;
            loop {
                std::thread::sleep(every);
                let _g = crate::tag::untracked();
                scan(&mut buf);
            }
        })
        .map(drop)
        .map_err(|e| e.to_string())
}

/// One pass: forgets closed connections, reads the kernel's table, judges the rest.
fn scan(buf: &mut Vec<u8>) {
    let (v4, v6) = {
        let w = lock();
        (w.iter().any(|w| !w.v6), w.iter().any(|w| w.v6))
    };
    if !(v4 || v6) {
        return;
    }
    let Some(states) = kernel_states(buf, v4, v6) else {
        return;
    };
    let now = clock::coarse_ms();
    let mut zombies = Vec::new();
    lock().retain_mut(|w| {
        let Some(conn) = w.conn.upgrade().filter(|c| !c.is_closed()) else {
            return false;
        };
        // A reader parked on the socket is woken by the FIN or RST and polls within
        // `CONFIRM`; a poll since the close was first seen means someone reads. (Whether a
        // reader "waits" is not asked: a reader whose last poll was pending may be gone.)
        let polls = conn.reads().polls.load(Ordering::Relaxed);
        let peer_left = !matches!(states.get(&w.inode), Some(s) if !peer_gone(*s));
        if !peer_left {
            w.suspect = None;
            return true;
        }
        match w.suspect {
            Some((p, since)) if p == polls => {
                if now.saturating_sub(since) >= CONFIRM.as_millis() as u64 {
                    zombies.push((conn, since));
                    return false;
                }
            }
            _ => w.suspect = Some((polls, now)),
        }
        true
    });
    // Outside the lock: closing sends an event to the collector.
    for (conn, since) in zombies {
        conn.close_zombie(since);
    }
}

/// TCP states (`include/net/tcp_states.h`) in which the peer has gone: `CLOSE_WAIT` (its FIN
/// arrived) and `CLOSE` (reset). A reset socket usually leaves the table altogether.
fn peer_gone(state: u8) -> bool {
    matches!(state, 0x08 | 0x07)
}

/// inode -> TCP state of every socket of the host (IPv4 and IPv6); `None` if the table could
/// not be read (then nothing is judged: an unreadable table is not a reset). `buf` is reused
/// from scan to scan; large reads make the kernel resume its walk of the table less often.
fn kernel_states(buf: &mut Vec<u8>, v4: bool, v6: bool) -> Option<HashMap<u64, u8>> {
    use std::io::Read;
    let mut out = HashMap::new();
    let mut read = false;
    // Each file walks the whole (shared) table: read only the families watched.
    let paths = [("/proc/net/tcp", v4), ("/proc/net/tcp6", v6)];
    for path in paths.iter().filter(|p| p.1).map(|p| p.0) {
        buf.clear();
        buf.reserve(1 << 20);
        let ok = std::fs::File::open(path).and_then(|mut f| f.read_to_end(buf));
        if ok.is_ok() {
            parse_table(&String::from_utf8_lossy(buf), &mut out);
            read = true;
        }
    }
    read.then_some(out)
}

/// Parses `/proc/net/tcp` text: the 4th column is the state (hex), the 10th the inode.
fn parse_table(text: &str, out: &mut HashMap<u64, u8>) {
    for line in text.lines().skip(1) {
        let mut cols = line.split_whitespace();
        let state = cols.nth(3).and_then(|s| u8::from_str_radix(s, 16).ok());
        let inode = cols.nth(5).and_then(|s| s.parse::<u64>().ok());
        if let (Some(state), Some(inode)) = (state, inode)
            && inode != 0
        {
            out.insert(inode, state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_table_is_parsed_by_column() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:1F90 0100007F:C350 08 00000000:00000000 00:00000000 00000000     0        0 424242 1 0000000000000000 20 4 30 10 -1\n  garbage\n";
        let mut m = HashMap::new();
        parse_table(text, &mut m);
        assert_eq!(m.get(&31337), Some(&0x0A));
        assert_eq!(m.get(&424242), Some(&0x08));
        assert_eq!(m.len(), 2);
        assert!(peer_gone(0x08) && peer_gone(0x07) && !peer_gone(0x01));
    }
}
