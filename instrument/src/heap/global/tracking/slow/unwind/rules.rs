//! The walker's rule cache: a [`Rule`] in the form the walk's loop applies, and the cache's
//! sets of recently read rules.

use super::Rule;

/// Cached rules: sets of [`WAYS`] addresses, chosen by a hash of the address (a power of two).
pub(super) const SETS: usize = 1024;
/// Addresses per set. A server's walks meet hundreds of return addresses; with one per set, two
/// hot ones sharing a set would read their rules again on every walk that meets both.
pub(super) const WAYS: usize = 4;
const _: () = assert!(SETS.is_power_of_two());

/// A [`Rule`] as the walk's loop applies it: plain offsets, what to step from in `kind`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Packed {
    /// [`FROM_RSP`], [`FROM_RBP`], [`END`] or [`UNKNOWN`].
    pub(super) kind: u32,
    pub(super) cfa: i32,
    pub(super) ra: i32,
    /// The caller's RBP at CFA + `rbp`; 0: RBP is unchanged (no rule saves it at CFA + 0,
    /// the caller's own stack; such a rule is [`UNKNOWN`]).
    pub(super) rbp: i32,
}

pub(super) const FROM_RSP: u32 = 0;
pub(super) const FROM_RBP: u32 = 1;
pub(super) const END: u32 = 2;
pub(super) const UNKNOWN: u32 = 3;
// The walk counts its steps from RBP by adding the kind.
const _: () = assert!(FROM_RSP == 0 && FROM_RBP == 1);

impl Packed {
    const UNKNOWN: Packed = Packed {
        kind: UNKNOWN,
        cfa: 0,
        ra: 0,
        rbp: 0,
    };

    pub(super) fn of(rule: Rule) -> Packed {
        match rule {
            Rule::Step { fp, cfa, ra, rbp } if rbp != Some(0) => Packed {
                kind: if fp { FROM_RBP } else { FROM_RSP },
                cfa,
                ra,
                rbp: rbp.unwrap_or(0),
            },
            Rule::End => Packed {
                kind: END,
                ..Packed::UNKNOWN
            },
            Rule::Step { .. } | Rule::Unknown => Packed::UNKNOWN,
        }
    }
}

/// A cache slot no address has: `at` is a code address less one, never `usize::MAX`.
pub(super) const EMPTY: (usize, Packed) = (usize::MAX, Packed::UNKNOWN);

/// One set of the cache: its most recently read rule first.
pub(super) type Set = [(usize, Packed); WAYS];

/// The cache's set for the address `at`.
#[inline(always)]
pub(super) fn set_of(at: usize) -> usize {
    ((at as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SETS.ilog2())) as usize
}

/// The rule `set` holds for `at`, if any.
#[inline(always)]
pub(super) fn cached(set: &Set, at: usize) -> Option<Packed> {
    set.iter().find(|e| e.0 == at).map(|e| e.1)
}

/// Puts `at`'s rule first in `set`; the set's oldest read goes.
pub(super) fn keep(set: &mut Set, at: usize, rule: Packed) {
    set.copy_within(..WAYS - 1, 1);
    set[0] = (at, rule);
}
