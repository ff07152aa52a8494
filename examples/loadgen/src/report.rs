//! Formatting results.

use crate::load::LoadResult;

/// Milliseconds with two decimals from microseconds.
pub fn ms(us: f64) -> String {
    format!("{:.2}", us / 1000.0)
}

/// A human byte size (signed, for growth).
pub fn bytes(b: i64) -> String {
    let a = b.unsigned_abs() as f64;
    let sign = if b < 0 { "-" } else { "" };
    if a >= 1024.0 * 1024.0 {
        format!("{sign}{:.1} MiB", a / 1024.0 / 1024.0)
    } else if a >= 1024.0 {
        format!("{sign}{:.1} KiB", a / 1024.0)
    } else {
        format!("{sign}{a} B")
    }
}

/// `server RSS: before -> after (growth), peak`.
pub fn rss_line(before: u64, after: u64, peak: u64) -> String {
    format!(
        "server RSS: {} -> {} (growth {}), peak {}",
        bytes(before as i64),
        bytes(after as i64),
        bytes(after as i64 - before as i64),
        bytes(peak as i64)
    )
}

/// The one-run summary the `loadgen` command prints.
pub fn summary(r: &LoadResult) -> String {
    let h = &r.latency_us;
    format!(
        "round trips: {} in {:.1} s = {:.0} msg/s\n\
         latency ms: avg {} | p50 {} | p99 {} | max {}\n\
         connections: {} opened, {} closed with a close frame, {} dropped; {} errors",
        r.messages,
        r.elapsed.as_secs_f64(),
        r.throughput(),
        ms(h.mean()),
        ms(h.value_at_quantile(0.5) as f64),
        ms(h.value_at_quantile(0.99) as f64),
        ms(h.max() as f64),
        r.connects,
        r.closes.0,
        r.closes.1,
        r.errors
    )
}

/// The median of some values (NaN for none).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `median [min–max]` with `digits` decimals (`-` for no values).
pub fn spread(v: &[f64], digits: usize) -> String {
    if v.is_empty() {
        return "-".to_owned();
    }
    let (lo, hi) = v
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), x| (l.min(*x), h.max(*x)));
    format!(
        "{:.digits$} [{lo:.digits$}–{hi:.digits$}]",
        median(v.to_vec())
    )
}

/// Whether a URL's host is on this machine (the only place load may go).
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url.strip_prefix("ws://").unwrap_or("");
    let host = rest.split('/').next().unwrap_or("");
    let host = if host.starts_with('[') {
        host.split(']').next().unwrap_or("").trim_start_matches('[')
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_accepted() {
        assert!(is_loopback_url("ws://127.0.0.1:3000/ws"));
        assert!(is_loopback_url("ws://localhost:3000/"));
        assert!(is_loopback_url("ws://[::1]:3000/ws"));
        assert!(is_loopback_url("ws://127.8.9.10:1/"));
        assert!(!is_loopback_url("ws://10.0.0.1:3000/ws"));
        assert!(!is_loopback_url("ws://example.com/ws"));
        assert!(!is_loopback_url("http://127.0.0.1/"));
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }

    #[test]
    fn spreads_give_the_median_and_the_range() {
        assert_eq!(spread(&[1.04, 0.98, 1.10], 3), "1.040 [0.980–1.100]");
        assert_eq!(spread(&[2.0], 1), "2.0 [2.0–2.0]");
        assert_eq!(spread(&[], 3), "-");
    }
}
