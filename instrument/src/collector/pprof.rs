//! The live samples as a standard heap profile: pprof's `profile.proto`, uncompressed (pprof
//! tools read it as is; `gzip` it for tools that insist). Values per sample: `inuse_objects`
//! (count) and `inuse_space` (bytes), both estimates from the sampling weight. Locations are
//! the sampled return addresses, with their (inlined) functions and lines symbolized here.

use std::collections::HashMap;

use crate::heap::sample::{self, Sample};

/// A protobuf message being written: varints and length-delimited fields, nothing else.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    /// A varint field (wire type 0).
    fn uint(&mut self, field: u32, v: u64) {
        self.varint(u64::from(field) << 3);
        self.varint(v);
    }

    /// A length-delimited field (wire type 2).
    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.varint((u64::from(field) << 3) | 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    /// A packed repeated varint field.
    fn packed(&mut self, field: u32, vs: impl Iterator<Item = u64>) {
        let mut inner = Msg::default();
        for v in vs {
            inner.varint(v);
        }
        self.bytes(field, &inner.0);
    }
}

/// Interned strings (index 0 is "", as pprof requires).
struct Strings {
    index: HashMap<String, u64>,
    table: Vec<String>,
}

impl Strings {
    fn new() -> Self {
        Strings {
            index: HashMap::from([(String::new(), 0)]),
            table: vec![String::new()],
        }
    }

    fn id(&mut self, s: &str) -> u64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as u64;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

/// (function name, file, line) of each inlined frame at `ip`, innermost first.
fn frames_at(ip: usize) -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    backtrace::resolve(ip.saturating_sub(1) as *mut std::ffi::c_void, |sym| {
        let name = sym.name().map(|n| format!("{n:#}")).unwrap_or_default();
        let file = sym
            .filename()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        out.push((name, file, u64::from(sym.lineno().unwrap_or(0))));
    });
    out
}

/// The heap profile of `samples`. Symbolizes: call it off hot paths, untracked.
pub(crate) fn profile(samples: &[Sample]) -> Vec<u8> {
    let mut strings = Strings::new();
    let mut functions: HashMap<(u64, u64), u64> = HashMap::new();
    let mut function_msgs: Vec<Vec<u8>> = Vec::new();
    let mut locations: HashMap<usize, u64> = HashMap::new();
    let mut location_msgs: Vec<Vec<u8>> = Vec::new();
    let mut out = Msg::default();
    for (field, (ty, unit)) in [
        (1, ("inuse_objects", "count")),
        (1, ("inuse_space", "bytes")),
    ] {
        let mut vt = Msg::default();
        vt.uint(1, strings.id(ty));
        vt.uint(2, strings.id(unit));
        out.bytes(field, &vt.0);
    }
    for s in samples {
        let mut ids = Vec::with_capacity(s.frames().len());
        for &ip in s.frames() {
            let next = locations.len() as u64 + 1;
            let id = *locations.entry(ip).or_insert_with(|| {
                let mut loc = Msg::default();
                loc.uint(1, next);
                loc.uint(3, ip as u64);
                for (name, file, line) in frames_at(ip) {
                    let key = (strings.id(&name), strings.id(&file));
                    let fid = functions.len() as u64 + 1;
                    let fid = *functions.entry(key).or_insert_with(|| {
                        let mut f = Msg::default();
                        f.uint(1, fid);
                        f.uint(2, key.0);
                        f.uint(3, key.0);
                        f.uint(4, key.1);
                        function_msgs.push(f.0);
                        fid
                    });
                    let mut l = Msg::default();
                    l.uint(1, fid);
                    l.uint(2, line);
                    loc.bytes(4, &l.0);
                }
                location_msgs.push(loc.0);
                next
            });
            ids.push(id);
        }
        let bytes = s.weight();
        let objects = bytes / s.size.max(1);
        let mut m = Msg::default();
        m.packed(1, ids.into_iter());
        m.packed(2, [objects, bytes].into_iter());
        out.bytes(2, &m.0);
    }
    // The allocator's own frames, and everything inside them, are dropped by pprof tools.
    let drop = strings.id("backtrace::.*|leakscope::heap::.*|__rustc::__rust_alloc.*");
    // Every string is interned before the table is written.
    let mut period = Msg::default();
    period.uint(1, strings.id("space"));
    period.uint(2, strings.id("bytes"));
    for l in &location_msgs {
        out.bytes(4, l);
    }
    for f in &function_msgs {
        out.bytes(5, f);
    }
    for s in &strings.table {
        out.bytes(6, s.as_bytes());
    }
    out.uint(7, drop);
    out.bytes(11, &period.0);
    out.uint(12, sample::interval());
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads (field, wire type, payload) triples of one message level.
    fn fields(mut b: &[u8]) -> Vec<(u64, u64, Vec<u8>)> {
        let varint = |b: &mut &[u8]| {
            let (mut v, mut shift) = (0u64, 0);
            loop {
                let byte = b[0];
                *b = &b[1..];
                v |= u64::from(byte & 0x7f) << shift;
                shift += 7;
                if byte < 0x80 {
                    return v;
                }
            }
        };
        let mut out = Vec::new();
        while !b.is_empty() {
            let key = varint(&mut b);
            let (field, wire) = (key >> 3, key & 7);
            let payload = match wire {
                0 => varint(&mut b).to_le_bytes().to_vec(),
                2 => {
                    let n = varint(&mut b) as usize;
                    let p = b[..n].to_vec();
                    b = &b[n..];
                    p
                }
                w => panic!("unexpected wire type {w}"),
            };
            out.push((field, wire, payload));
        }
        out
    }

    #[test]
    fn a_profile_has_its_types_samples_locations_and_strings() {
        let mut frames = [0usize; sample::DEPTH];
        frames[0] = a_profile_has_its_types_samples_locations_and_strings as *const () as usize + 4;
        let s = Sample {
            tag: crate::ids::Tag::NONE,
            size: 64,
            frames,
            depth: 1,
        };
        let p = profile(&[s, s]);
        assert!(p.len() > 20);
        let top = fields(&p);
        let count = |f: u64| top.iter().filter(|(x, ..)| *x == f).count();
        assert_eq!(count(1), 2, "two sample types");
        assert_eq!(count(2), 2, "two samples");
        assert_eq!(count(4), 1, "one location, shared");
        let strings: Vec<String> = top
            .iter()
            .filter(|(f, ..)| *f == 6)
            .map(|(.., p)| String::from_utf8(p.clone()).unwrap())
            .collect();
        assert_eq!(strings[0], "");
        assert!(strings.iter().any(|s| s == "inuse_space"));
        assert!(
            strings.iter().any(|s| s.contains("pprof.rs")),
            "{strings:?}"
        );
    }
}
