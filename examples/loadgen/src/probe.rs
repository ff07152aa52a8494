//! Looking at the server: RSS from /proc, leakscope's snapshot over plain HTTP/1.1.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Resident set size of `pid` in bytes (Linux `/proc/<pid>/status` `VmRSS`), and its peak
/// (`VmHWM`).
pub fn rss(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU time `pid` has used so far, user and system, in seconds (Linux `/proc/<pid>/stat`).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    cpu_seconds_of(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// [`cpu_seconds`] from the text of `/proc/<pid>/stat`. Its fields are counted after the
/// command's name, which is in parentheses and may itself hold spaces and parentheses;
/// `utime` and `stime` (fields 14 and 15) are in clock ticks of 1/100 s (Linux's `USER_HZ`
/// as `/proc` reports it).
pub fn cpu_seconds_of(stat: &str) -> Option<f64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// `GET path` on `addr` with `Connection: close`; returns the body of a 200 response.
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let io = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), io)
        .await
        .map_err(|_| format!("GET {path}: no answer within 10 s"))?
        .map_err(|e| format!("GET {path}: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or(format!("GET {path}: malformed response"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("GET {path}: {}", head.lines().next().unwrap_or("")));
    }
    Ok(body.to_owned())
}

/// What leakscope's snapshot says at the end of a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Leaks {
    /// Tagged tasks alive.
    pub live_tasks: u64,
    /// Orphan tasks.
    pub orphan_tasks: u64,
    /// Retained bytes of closed connections.
    pub retained_bytes: u64,
    /// Connections opened.
    pub connections: u64,
}

/// Reads `/api/snapshot` under `prefix` (e.g. `/_leakscope`).
pub async fn leaks(addr: SocketAddr, prefix: &str) -> Result<Leaks, String> {
    let body = http_get(addr, &format!("{prefix}/api/snapshot")).await?;
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("snapshot: {e}"))?;
    let n = |p: &str| {
        v.pointer(p)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    Ok(Leaks {
        live_tasks: n("/totals/live_tasks"),
        orphan_tasks: n("/totals/orphan_tasks"),
        retained_bytes: n("/heap/retained_bytes"),
        connections: n("/totals/connections_opened"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_the_commands_name() {
        // A name with a space and a parenthesis; utime 250 and stime 50 ticks.
        let stat = "4242 (echo (a) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(cpu_seconds_of(stat), Some(3.0));
        assert_eq!(cpu_seconds_of("4242 (short) S 1"), None);
        assert_eq!(cpu_seconds_of("no parenthesis"), None);
    }

    #[test]
    fn this_process_cpu_time_grows_while_it_works() {
        let me = std::process::id();
        let start = cpu_seconds(me).expect("/proc/<pid>/stat");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut x = 0u64;
        // Work until the kernel's tick-granular count moves (a 10 ms tick), or give up.
        while cpu_seconds(me).expect("/proc/<pid>/stat") <= start {
            assert!(
                std::time::Instant::now() < deadline,
                "no CPU time counted in 30 s"
            );
            for i in 0..100_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
        }
    }
}
