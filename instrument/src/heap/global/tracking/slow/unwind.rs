//! The sampled allocation's stack walk on Linux x86_64, without libgcc's per-frame cost: each
//! frame's unwind rule (where its caller's return address, stack pointer and frame pointer
//! are) is read once from its object's `.eh_frame` (with gimli), cached by address, and
//! applied to the stack directly. libgcc's unwinder reads and runs the rule again for every
//! frame of every walk: 1,400-1,700 instructions a frame, measured under callgrind.
//!
//! Every read is an aligned word inside the walking thread's own stack, between the walk's
//! frame and the stack's top (live, mapped memory), so a wrong rule can only give wrong frames,
//! never a fault. Whatever this walker does not apply (a rule other than a register plus an
//! offset, a signal frame, an address outside every loaded object, a stack it cannot bound, the
//! walker busy on another thread) hands the whole walk to libgcc, whose frames are then used:
//! from the walker's caller on they are the same frames (tested against libgcc's on the same
//! stacks); libgcc's list starts with a few frames of the trace itself, which symbolization
//! skips as leakscope's and the backtrace crate's.
//!
//! Rules are cached by address for the life of the process: a library unloaded (`dlclose`) and
//! another loaded at its addresses would be walked with the old library's rules, giving wrong
//! frames in that code (never a fault).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, TryLockError};

use gimli::{Register, UnwindContext};

use super::with_libgcc;

const RBP: Register = Register(6);
const RSP: Register = Register(7);
const RA: Register = Register(16);

/// How to step from a frame to its caller.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rule {
    /// The frame's canonical frame address (CFA) is `cfa` past its RBP (`fp`) or its RSP; the
    /// return address is at CFA + `ra`; the caller's RBP at CFA + `rbp`, or RBP is unchanged.
    Step {
        fp: bool,
        cfa: i32,
        ra: i32,
        rbp: Option<i32>,
    },
    /// The outermost frame: it has no return address.
    End,
    /// Not a rule this walker applies: libgcc walks.
    Unknown,
}

struct Unwinder {
    /// Sets chosen by a hash of the address: a fixed size, so the index needs no check.
    cache: Box<[Set; SETS]>,
    ctx: UnwindContext<usize>,
    /// The last walk's counts (for tests).
    stats: Stats,
}

/// What a walk did: frames stepped from RBP, rules read from `.eh_frame` (not cached yet).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct Stats {
    from_rbp: u32,
    read: u32,
}

static UNWINDER: Mutex<Option<Unwinder>> = Mutex::new(None);
/// Walks handed to libgcc (for tests: none on ordinary stacks).
static HANDED_OVER: AtomicU64 = AtomicU64::new(0);
/// Rules read from the unwind tables (not found in the cache), over the process's life.
static RULES_READ: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's stack, as (lowest, highest) address: 0, 0 until asked; 1, 0 when unknown.
    static STACK: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// Walks the caller's stack into `frames` (return addresses, innermost first); returns how
/// many it wrote. Call it on the allocator's guarded slow path (it may allocate, the first
/// time and when a rule is not cached yet).
#[inline(never)]
pub(super) fn walk(frames: &mut [usize]) -> usize {
    own_walk(frames, false).map_or_else(
        || {
            HANDED_OVER.fetch_add(1, Ordering::Relaxed);
            with_libgcc(frames)
        },
        |(n, _)| n,
    )
}

/// [`walk`] without libgcc: `None` where it would hand the walk over. `wait`: wait for the
/// walker's lock (checks outside the allocator), instead of handing over when it is busy.
#[inline(never)]
fn own_walk(frames: &mut [usize], wait: bool) -> Option<(usize, Stats)> {
    let (ip, sp, fp): (usize, usize, usize);
    // SAFETY: reads three registers into outputs; touches no memory, no stack, no flags.
    unsafe {
        std::arch::asm!(
            "lea {ip}, [rip]",
            "mov {sp}, rsp",
            "mov {fp}, rbp",
            ip = out(reg) ip,
            sp = out(reg) sp,
            fp = out(reg) fp,
            options(nomem, nostack, preserves_flags),
        );
    }
    let (lo, hi) = stack();
    if !(lo <= sp && sp < hi) {
        return None;
    }
    // Nested: what is allocated under the lock (the cache, a rule's evaluation) is nobody's
    // and never sampled, so no walk waits for the lock its own thread holds.
    // Never waits for the lock: a thread holding it may be waiting for the loader's lock
    // (`dl_iterate_phdr`, on a rule not cached yet) while this one holds that (allocating in
    // another `dl_iterate_phdr` callback, as the backtrace crate's symbolizer does); libgcc
    // walks instead. The same after a `fork` that left the lock held.
    crate::heap::batch::nested(|| {
        let mut unwinder = match UNWINDER.try_lock() {
            Ok(u) => u,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) if wait => {
                UNWINDER.lock().unwrap_or_else(PoisonError::into_inner)
            }
            Err(TryLockError::WouldBlock) => return None,
        };
        let u = unwinder.get_or_insert_with(Unwinder::new);
        u.stats = Stats::default();
        let n = u.walk(ip, sp, fp, hi, frames)?;
        Some((n, u.stats))
    })
}

/// Makes the walker (its rule cache) and learns this thread's stack now, rather than on the
/// first sampled allocation: their blocks are then made when sampling starts, not in the middle
/// of the program's traffic, where they would stay above its blocks in the heap. Off the
/// allocator path (the collector's start).
pub(crate) fn prepare() {
    stack();
    // As a walk, it never waits for the walker's lock (see `own_walk`): if another thread
    // holds it, that thread makes the walker.
    crate::heap::batch::nested(|| make_in(&UNWINDER));
}

/// Makes the walker in `slot` unless it is made, or busy.
fn make_in(slot: &Mutex<Option<Unwinder>>) {
    let unwinder = match slot.try_lock() {
        Ok(u) => Some(u),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    };
    if let Some(mut u) = unwinder {
        u.get_or_insert_with(Unwinder::new);
    }
}

/// Walks handed to libgcc so far.
pub(crate) fn handed_over() -> u64 {
    HANDED_OVER.load(Ordering::Relaxed)
}

/// Rules read from the unwind tables so far (each costs thousands of instructions; a steady
/// program reads none).
pub(crate) fn rules_read() -> u64 {
    RULES_READ.load(Ordering::Relaxed)
}

impl Unwinder {
    fn new() -> Self {
        Unwinder {
            cache: vec![[EMPTY; WAYS]; SETS]
                .into_boxed_slice()
                .try_into()
                .unwrap_or_else(|_| unreachable!("SETS sets")),
            ctx: UnwindContext::new(),
            stats: Stats::default(),
        }
    }

    /// From the frame at (`ip`, `sp`, `fp`), its callers' return addresses; `None` where a
    /// rule is unknown (libgcc walks then).
    fn walk(
        &mut self,
        mut ip: usize,
        mut sp: usize,
        mut fp: usize,
        hi: usize,
        frames: &mut [usize],
    ) -> Option<usize> {
        // Reads are aligned words in [lo, lo + span]: from this walk's frame (RSP is always
        // 8-aligned) to the last word below the stack's top.
        let lo = sp.checked_next_multiple_of(8)?;
        let span = hi.checked_sub(8)?.checked_sub(lo)?;
        let read = |at: usize| -> Option<usize> {
            if !readable(at, lo, span) {
                return None;
            }
            // Volatile: the word belongs to a caller's frame, which the compiler knows nothing
            // of here.
            // SAFETY: `at` is an aligned word between this walk's frame and the top of this
            // thread's stack: mapped, and live while the walk runs (its frames are callers).
            Some(unsafe { (at as *const usize).read_volatile() })
        };
        let (mut n, mut from_rbp) = (0, 0);
        // The first frame's address is exact; the others are return addresses, whose call
        // instruction is the byte before.
        let mut at = ip;
        while n < frames.len() {
            let rule = self.rule(at);
            let base = match rule.kind {
                FROM_RSP => sp,
                FROM_RBP => fp,
                END => break,
                _ => return None,
            };
            from_rbp += rule.kind; // 1 from RBP, 0 from RSP (asserted where they are defined)
            // Wrapping: a wrong rule gives an address `read` refuses, never a fault.
            let cfa = base.wrapping_add_signed(rule.cfa as isize);
            if cfa <= sp {
                return None;
            }
            ip = read(cfa.wrapping_add_signed(rule.ra as isize))?;
            if rule.rbp != 0 {
                fp = read(cfa.wrapping_add_signed(rule.rbp as isize))?;
            }
            sp = cfa;
            if ip == 0 {
                break;
            }
            frames[n] = ip;
            n += 1;
            at = ip - 1;
        }
        self.stats.from_rbp += from_rbp;
        Some(n)
    }

    /// The rule at `at`, from the cache or the objects' unwind tables.
    #[inline(always)]
    fn rule(&mut self, at: usize) -> Packed {
        let set = set_of(at);
        if let Some(rule) = cached(&self.cache[set], at) {
            return rule;
        }
        self.read_rule(at, set)
    }

    /// A rule not cached: read from the objects' unwind tables, then cached.
    #[cold]
    #[inline(never)]
    fn read_rule(&mut self, at: usize, set: usize) -> Packed {
        let rule = Packed::of(find(at, &mut self.ctx));
        self.stats.read += 1;
        RULES_READ.fetch_add(1, Ordering::Relaxed);
        keep(&mut self.cache[set], at, rule);
        rule
    }
}

/// Whether `at` is an aligned word in `[lo, lo + span]` (`lo` 8-aligned, `lo + span` not
/// overflowing: the walk's own stack), in one test: a misaligned offset from `lo` rotates its
/// low bits to the top, above any span.
#[inline(always)]
fn readable(at: usize, lo: usize, span: usize) -> bool {
    at.wrapping_sub(lo).rotate_right(3) <= span >> 3
}

/// The (lowest, highest) addresses of this thread's stack, or (1, 0) when unknown.
fn stack() -> (usize, usize) {
    STACK.with(|s| {
        if s.get() == (0, 0) {
            s.set(ask_stack().unwrap_or((1, 0)));
        }
        s.get()
    })
}

fn ask_stack() -> Option<(usize, usize)> {
    // SAFETY: `attr` is initialized by `pthread_getattr_np` before it is read and destroyed
    // once; `addr` and `size` are plain out-parameters.
    unsafe {
        let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return None;
        }
        let mut addr = std::ptr::null_mut();
        let mut size = 0;
        let got = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        (got == 0).then(|| (addr as usize, (addr as usize).saturating_add(size)))
    }
}

/// Walks the caller's stack with this walker and with libgcc, and compares: the number of
/// frames both found, or what differs. (A check a program can run on its own threads:
/// `leakscope::alloc_bench::stack_walk_agrees_with_libgcc`.)
#[inline(never)]
pub(crate) fn agrees_with_libgcc() -> Result<usize, String> {
    let (ours, theirs, _) = both();
    same_callers(&ours, &theirs)?;
    Ok(ours.len())
}

/// Both walks from one frame: (this walker's, libgcc's, what this walker's did). Both buffers
/// are deep enough that each walk reaches the stack's outermost frame.
#[inline(never)]
fn both() -> (Vec<usize>, Vec<usize>, Stats) {
    let mut ours = vec![0; 512];
    let walked = own_walk(&mut ours, true);
    let mut theirs = vec![0; 512];
    let m = with_libgcc(&mut theirs);
    theirs.truncate(m);
    // libgcc reports the outermost frame's caller as a last frame at address 0.
    if theirs.last() == Some(&0) {
        theirs.pop();
    }
    // Handed over: no frames of its own.
    ours.truncate(walked.map_or(0, |(n, _)| n));
    (ours, theirs, walked.map(|(_, s)| s).unwrap_or_default())
}

/// The callers of the frame both walks started in are the same: this walker's frames after
/// the first (the return address into that frame, where libgcc's differs: another call) are
/// libgcc's last ones.
fn same_callers(ours: &[usize], theirs: &[usize]) -> Result<(), String> {
    if ours.len() < 2 || ours.len() >= 512 || theirs.len() >= 512 {
        return Err(format!(
            "a walk stopped short or ran long: ours {ours:x?}, libgcc {theirs:x?}"
        ));
    }
    let callers = &ours[1..];
    if theirs.len() <= callers.len() || callers != &theirs[theirs.len() - callers.len()..] {
        return Err(format!("ours {ours:x?}\nlibgcc {theirs:x?}"));
    }
    Ok(())
}

mod rules;
mod tables;
use rules::{EMPTY, END, FROM_RBP, FROM_RSP, Packed, SETS, Set, WAYS, cached, keep, set_of};
use tables::find;

#[cfg(test)]
mod tests;
