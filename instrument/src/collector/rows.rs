//! The rows' shared parts and their order, made outside the lock: each spawn location's
//! strings (once for the process) and each connection's task names (once per snapshot) are
//! shared by the rows that have them ([`SharedStr`]); the rows are ordered by id where that is
//! their whole key, by a radix sort on their keys otherwise.

use std::cmp::Reverse;
use std::fmt::Write;
use std::sync::{Arc, Mutex, PoisonError};

use crate::ids::Site;
use crate::snapshot::SharedStr;

/// A snapshot's index of the spawn locations' strings (`file:line:col` and the short
/// `file:line` of unnamed tasks' names, made once for the process: [`site_strings`]), and each
/// connection's task names, made once per connection and name: rows share them.
#[derive(Default)]
pub(super) struct Names {
    /// By spawn site (file pointer, line, column), hashed with one multiply per word.
    index: super::records::HashMap<(usize, u32, u32), u32>,
    /// By index: a site's `file:line:col`, and the `file:line` of unnamed tasks' names.
    pub(super) strings: Vec<(SharedStr, SharedStr)>,
    /// `conn=<id> <suffix>` by connection and the suffix's address and length (a location's
    /// short string, or the `Arc` of a name given at spawn: all alive while the rows are built,
    /// so a non-empty address names one string; the length keeps an empty name, whose address
    /// may be where another block starts, apart).
    names: super::records::HashMap<(u64, usize, usize), SharedStr>,
    /// Where a name is written before it is shared.
    buf: String,
    /// The last site and name looked up: rows come in runs of one connection's tasks (the
    /// copy and the order both follow ids), which these answer without hashing.
    last_site: Option<((usize, u32, u32), u32)>,
    last_name: Option<((u64, usize, usize), SharedStr)>,
}

impl Names {
    /// Room for the names of `connections` connections, one site each, without regrowing.
    pub(super) fn with_capacity(connections: usize) -> Names {
        Names {
            names: super::records::HashMap::with_capacity_and_hasher(
                connections,
                Default::default(),
            ),
            ..Names::default()
        }
    }

    pub(super) fn index(&mut self, l: Site) -> u32 {
        let key = l.key();
        match self.last_site {
            Some((k, i)) if k == key => return i,
            _ => {}
        }
        let i = self.index_of(l);
        self.last_site = Some((key, i));
        i
    }

    fn index_of(&mut self, l: Site) -> u32 {
        let next = self.strings.len() as u32;
        let i = *self.index.entry(l.key()).or_insert(next);
        if i == next {
            self.strings.push(site_strings(l));
        }
        i
    }

    /// `conn=<id> <name>`, or, unnamed (a plain tokio::spawn), `conn=<id> <file>:<line>`.
    pub(super) fn name(
        &mut self,
        conn_id: u64,
        location: u32,
        given: Option<&Arc<str>>,
    ) -> SharedStr {
        let suffix: &str = match given {
            Some(n) => n,
            None => &self.strings[location as usize].1,
        };
        let key = (conn_id, suffix.as_ptr() as usize, suffix.len());
        match &self.last_name {
            Some((k, n)) if *k == key => return n.clone(),
            _ => {}
        }
        let name = match self.names.get(&key) {
            Some(n) => n.clone(),
            None => {
                // Written into a buffer kept for the snapshot, then copied once into the
                // shared string (a `String` per name would be a second allocation and a free).
                let buf = &mut self.buf;
                buf.clear();
                buf.push_str("conn=");
                push_decimal(buf, conn_id);
                buf.push(' ');
                buf.push_str(suffix);
                let name = SharedStr::from(buf.as_str());
                self.names.insert(key, name.clone());
                name
            }
        };
        self.last_name = Some((key, name.clone()));
        name
    }
}

/// The most spawn sites whose strings are kept for the life of the process.
const MAX_SITES: usize = 16_384;

/// Each spawn site's strings, made once for the life of the process: the rows' clones of a
/// static string count nothing (a counted one is an atomic increment per row, and a decrement
/// when the row is dropped). Sites are places in the program's code, so there are as many as
/// it has spawn calls; past [`MAX_SITES`] (leakscope's bound on this memory) a site's strings
/// are counted ones, made per snapshot.
static SITES: Mutex<Option<SiteStrings>> = Mutex::new(None);

type SiteStrings = super::records::HashMap<(usize, u32, u32), (&'static str, &'static str)>;

/// `file:line:col` and `file:line` of a site.
fn site_strings(l: Site) -> (SharedStr, SharedStr) {
    let mut sites = SITES.lock().unwrap_or_else(PoisonError::into_inner);
    let sites = sites.get_or_insert_with(SiteStrings::default);
    if let Some(&(long, short)) = sites.get(&l.key()) {
        return (SharedStr::from_static(long), SharedStr::from_static(short));
    }
    let file = l.file().rsplit(['/', '\\']).next().unwrap_or("");
    let mut short = String::with_capacity(file.len() + 6);
    let _ = write!(short, "{file}:{}", l.line());
    let long = l.to_string();
    if sites.len() >= MAX_SITES {
        return (long.into(), short.into());
    }
    let long: &'static str = Box::leak(long.into_boxed_str());
    let short: &'static str = Box::leak(short.into_boxed_str());
    sites.insert(l.key(), (long, short));
    (SharedStr::from_static(long), SharedStr::from_static(short))
}

/// The task list's order, largest first: orphans first, then the longest outlived, then the
/// newest (outlived times beyond 2^63 ms sort as equal).
pub(super) fn order_key(orphan: bool, outlived: Option<u64>, id: u64) -> [u64; 2] {
    let outlived = outlived.map_or(0, |v| v.min((1 << 62) - 1) + 1);
    [(u64::from(orphan) << 63) | outlived, id]
}

/// Appends `n` in decimal without the formatting machinery.
fn push_decimal(s: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // ASCII digits: pushed as chars, without validating them as UTF-8 again.
    s.extend(buf[i..].iter().map(|&b| char::from(b)));
}

/// Rows shorter than this are sorted by comparisons.
const RADIX_FROM: usize = 512;

/// Sorts `v` by key, largest first. Rows whose key's first word is 0 (neither an orphan nor
/// outliving its connection: most rows) come after all others and are ordered by id alone;
/// the snapshot's copy holds them nearly in id order already (the alive tasks as the task map
/// iterates them, by id: `records.rs`; then each connection's ended ring, oldest first), runs
/// that a merge sort finds and joins in linear passes. The others are sorted by
/// [`radix_desc`].
pub(super) fn sort_desc(v: &mut Vec<([u64; 2], u32)>) {
    if v.len() < RADIX_FROM {
        v.sort_unstable_by_key(|&(k, _)| Reverse(k));
        return;
    }
    let mut by_id = Vec::with_capacity(v.len());
    v.retain(|row| {
        let keep = row.0[0] != 0;
        if !keep {
            by_id.push(*row);
        }
        keep
    });
    radix_desc(v);
    by_id.sort_by_key(|&(k, _)| Reverse(k[1]));
    v.extend_from_slice(&by_id);
}

/// Sorts `v` by key, largest first. Past [`RADIX_FROM`] rows, a stable LSD radix sort on the
/// keys' 16 bytes that skips the bytes every key shares (in a snapshot most are: the ids'
/// high bytes, the outlived times' high bytes), a few linear passes instead of the
/// comparison sort's 17 per row (36 million instructions for 100,000 rows).
fn radix_desc(v: &mut Vec<([u64; 2], u32)>) {
    if v.len() < RADIX_FROM {
        v.sort_unstable_by_key(|&(k, _)| Reverse(k));
        return;
    }
    // byte(k, 0) is the least significant; a bucket is 255 - byte, so larger keys come first.
    let byte = |k: &[u64; 2], d: usize| -> usize {
        let word = if d < 8 { k[1] } else { k[0] };
        255 - ((word >> (8 * (d % 8))) & 0xff) as usize
    };
    let mut counts = vec![[0usize; 256]; 16];
    for (k, _) in v.iter() {
        for (d, c) in counts.iter_mut().enumerate() {
            c[byte(k, d)] += 1;
        }
    }
    let mut other = v.clone();
    let (mut src, mut dst) = (v, &mut other);
    let mut swapped = false;
    for (d, c) in counts.iter().enumerate() {
        if c.contains(&src.len()) {
            continue; // every key has the same byte here
        }
        let mut at = [0usize; 256];
        let mut sum = 0;
        for (b, &n) in c.iter().enumerate() {
            at[b] = sum;
            sum += n;
        }
        for row in src.iter() {
            let b = byte(&row.0, d);
            dst[at[b]] = *row;
            at[b] += 1;
        }
        std::mem::swap(&mut src, &mut dst);
        swapped = !swapped;
    }
    if swapped {
        // The sorted rows are in `other`: move them back.
        dst.copy_from_slice(src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decimals_and_order_keys() {
        for n in [0, 7, 10, 99, 12_345, u64::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, n);
            assert_eq!(s, n.to_string());
        }
        let k = |o, out, id| order_key(o, out, id);
        assert!(k(true, None, 1) > k(false, Some(5), 9));
        assert!(k(false, Some(0), 1) > k(false, None, 9));
        assert!(k(false, Some(6), 1) > k(false, Some(5), 9));
        assert!(k(false, Some(5), 9) > k(false, Some(5), 8));
        assert!(k(true, Some(u64::MAX), 1) > k(true, Some(u64::MAX - 1), 0));
    }

    #[test]
    fn rows_share_their_strings_per_site_and_per_connection_and_name() {
        let mut names = Names::default();
        let a = names.index(Site::new("src/chat/forward.rs", 42, 9));
        let b = names.index(Site::new("src/chat/heartbeat.rs", 7, 5));
        assert_eq!(names.index(Site::new("src/chat/forward.rs", 42, 9)), a);
        assert_ne!(a, b);
        assert_eq!(names.strings[a as usize].0, "src/chat/forward.rs:42:9");
        assert_eq!(names.strings[a as usize].1, "forward.rs:42");
        // A site's strings are made once for the process: the next snapshot's are the same.
        let mut next = Names::default();
        let a2 = next.index(Site::new("src/chat/forward.rs", 42, 9));
        assert!(std::ptr::eq(
            next.strings[a2 as usize].0.as_str(),
            names.strings[a as usize].0.as_str()
        ));

        let first = names.name(7, a, None);
        let again = names.name(7, a, None);
        assert_eq!(first, "conn=7 forward.rs:42");
        assert!(
            std::ptr::eq(first.as_str(), again.as_str()),
            "one string per connection and site"
        );
        assert_eq!(names.name(8, a, None), "conn=8 forward.rs:42");
        assert_eq!(names.name(7, b, None), "conn=7 heartbeat.rs:7");

        // A name given at spawn wins over the site; equal text in two `Arc`s is still right.
        let given: Arc<str> = Arc::from("forwarder");
        let other: Arc<str> = Arc::from("forwarder");
        assert_eq!(names.name(7, a, Some(&given)), "conn=7 forwarder");
        assert_eq!(names.name(7, a, Some(&other)), "conn=7 forwarder");
        assert_eq!(names.name(9, a, Some(&given)), "conn=9 forwarder");
        assert_eq!(names.name(7, a, None), "conn=7 forward.rs:42");
        let empty: Arc<str> = Arc::from("");
        assert_eq!(names.name(7, a, Some(&empty)), "conn=7 ");
        assert_eq!(names.name(7, a, None), "conn=7 forward.rs:42");
    }

    fn by_comparisons(v: &[([u64; 2], u32)]) -> Vec<[u64; 2]> {
        let mut w = v.to_vec();
        w.sort_unstable_by_key(|&(k, _)| Reverse(k));
        w.into_iter().map(|(k, _)| k).collect()
    }

    fn same_rows(a: &[([u64; 2], u32)], b: &[([u64; 2], u32)]) -> bool {
        let (mut a, mut b) = (a.to_vec(), b.to_vec());
        a.sort_unstable();
        b.sort_unstable();
        a == b
    }

    /// `v`'s keys as `sort_desc` orders them, as the comparison sort does, and whether the
    /// sorted rows are `v`'s rows.
    fn radix_against_comparisons(v: &[([u64; 2], u32)]) -> (Vec<[u64; 2]>, Vec<[u64; 2]>, bool) {
        let mut sorted = v.to_vec();
        sort_desc(&mut sorted);
        let keys = sorted.iter().map(|&(k, _)| k).collect();
        (keys, by_comparisons(v), same_rows(&sorted, v))
    }

    proptest! {
        #[test]
        fn the_radix_sort_orders_like_the_comparison_sort(
            rows in proptest::collection::vec(
                (any::<bool>(), 0u64..3, any::<u64>(), 0u64..300, any::<u32>()),
                0..1500,
            ),
            wide in any::<bool>(),
        ) {
            // Keys like a snapshot's (few distinct times, near ids) or anything at all.
            let v: Vec<([u64; 2], u32)> = rows
                .iter()
                .map(|&(orphan, out, any, near, i)| {
                    let key = if wide {
                        [any, any.rotate_left(17) ^ near]
                    } else {
                        order_key(orphan, (out > 0).then_some(out * 1000), 40_000 + near)
                    };
                    (key, i)
                })
                .collect();
            let (keys, expected, same) = radix_against_comparisons(&v);
            prop_assert_eq!(keys, expected);
            prop_assert!(same);
        }
    }

    #[test]
    fn a_snapshot_sized_sort_is_exact() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let v: Vec<([u64; 2], u32)> = (0..100_000u32)
            .map(|i| {
                let r = next();
                let outlived = (r % 3 == 0).then_some(r % 5_000);
                (order_key(r % 3 == 0, outlived, 1_000 + u64::from(i)), i)
            })
            .collect();
        let (keys, expected, same) = radix_against_comparisons(&v);
        assert_eq!(keys, expected);
        assert!(same);
    }
}
