//! The sampled allocation's stack walk on Linux x86_64, without libgcc's per-frame cost: each
//! frame's unwind rule (where its caller's return address, stack pointer and frame pointer
//! are) is read once from its object's `.eh_frame` (with gimli), cached by address, and
//! applied to the stack directly. libgcc's unwinder reads and runs the rule again for every
//! frame of every walk: 1,400-1,700 instructions a frame, measured under callgrind.
//!
//! Every read is an aligned word inside the walking thread's own stack, between the walk's
//! frame and the stack's top (live, mapped memory), so a wrong rule can only give wrong frames,
//! never a fault. Whatever this walker does not apply (a rule other than a register plus an
//! offset, a signal frame, an address outside every loaded object, a stack it cannot bound)
//! hands the whole walk to libgcc, whose frames are then used: the result is the same frames
//! either way (tested against libgcc's on the same stacks).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use gimli::{
    BaseAddresses, CfaRule, EhFrame, EhFrameHdr, EndianSlice, NativeEndian, Register, RegisterRule,
    UnwindContext, UnwindSection,
};

const RBP: Register = Register(6);
const RSP: Register = Register(7);
const RA: Register = Register(16);
/// Cached rules (direct-mapped by address).
const CACHED: usize = 4096;

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
    cache: Box<[(usize, Rule)]>,
    ctx: UnwindContext<usize>,
}

static UNWINDER: Mutex<Option<Unwinder>> = Mutex::new(None);
/// Walks handed to libgcc (for tests: none on ordinary stacks).
static HANDED_OVER: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's stack, as (lowest, highest) address: 0, 0 until asked; 1, 0 when unknown.
    static STACK: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// Walks the caller's stack into `frames` (return addresses, innermost first); returns how
/// many it wrote. Call it on the allocator's guarded slow path (it may allocate, the first
/// time and when a rule is not cached yet).
#[inline(never)]
pub(super) fn walk(frames: &mut [usize]) -> usize {
    own_walk(frames).unwrap_or_else(|| {
        HANDED_OVER.fetch_add(1, Ordering::Relaxed);
        with_libgcc(frames)
    })
}

/// [`walk`] without libgcc: `None` where it would hand the walk over.
#[inline(never)]
fn own_walk(frames: &mut [usize]) -> Option<usize> {
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
    crate::heap::batch::nested(|| {
        let mut unwinder = UNWINDER.lock().unwrap_or_else(PoisonError::into_inner);
        let u = unwinder.get_or_insert_with(|| Unwinder {
            cache: vec![(0, Rule::Unknown); CACHED].into_boxed_slice(),
            ctx: UnwindContext::new(),
        });
        u.walk(ip, sp, fp, hi, frames)
    })
}

/// Walks handed to libgcc so far.
pub(crate) fn handed_over() -> u64 {
    HANDED_OVER.load(Ordering::Relaxed)
}

/// libgcc's walk (through the backtrace crate): its first frames are the trace's own, then
/// the same as [`walk`]'s.
#[inline(never)]
fn with_libgcc(frames: &mut [usize]) -> usize {
    let mut n = 0;
    // SAFETY: libgcc's unwinder is thread-safe: concurrent unsynchronized traces are sound on
    // Linux. It does not allocate.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            frames[n] = frame.ip() as usize;
            n += 1;
            n < frames.len()
        });
    }
    n
}

impl Unwinder {
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
        let lo = sp;
        let read = |at: usize| -> Option<usize> {
            if at < lo || at > hi.checked_sub(8)? || at % 8 != 0 {
                return None;
            }
            // SAFETY: `at` is an aligned word between this walk's frame and the top of this
            // thread's stack: mapped, and live while the walk runs (its frames are callers).
            Some(unsafe { (at as *const usize).read() })
        };
        let mut n = 0;
        // The first frame's address is exact; the others are return addresses, whose call
        // instruction is the byte before.
        let mut at = ip;
        while n < frames.len() {
            let (fp_based, cfa, ra, rbp) = match self.rule(at) {
                Rule::Step { fp, cfa, ra, rbp } => (fp, cfa, ra, rbp),
                Rule::End => break,
                Rule::Unknown => return None,
            };
            let base = if fp_based { fp } else { sp };
            let cfa = base.checked_add_signed(cfa as isize)?;
            if cfa <= sp {
                return None;
            }
            ip = read(cfa.checked_add_signed(ra as isize)?)?;
            if let Some(at) = rbp {
                fp = read(cfa.checked_add_signed(at as isize)?)?;
            }
            sp = cfa;
            if ip == 0 {
                break;
            }
            frames[n] = ip;
            n += 1;
            at = ip - 1;
        }
        Some(n)
    }

    /// The rule at `at`, from the cache or the objects' unwind tables.
    fn rule(&mut self, at: usize) -> Rule {
        let slot = (at as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 52;
        let entry = &mut self.cache[slot as usize];
        if entry.0 == at && at != 0 {
            return entry.1;
        }
        let rule = find(at, &mut self.ctx);
        self.cache[slot as usize] = (at, rule);
        rule
    }
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

/// What [`find`] asks the loaded objects.
struct Query<'a> {
    at: usize,
    ctx: &'a mut UnwindContext<usize>,
    rule: Rule,
}

/// The rule at `at`, read from the unwind table of the loaded object that holds it.
fn find(at: usize, ctx: &mut UnwindContext<usize>) -> Rule {
    let mut q = Query {
        at,
        ctx,
        rule: Rule::Unknown,
    };
    // SAFETY: the callback gets `q` back as `data` and reads only what the loader describes;
    // the loader's lock keeps each object mapped while the callback runs.
    unsafe { libc::dl_iterate_phdr(Some(per_object), (&raw mut q).cast()) };
    q.rule
}

/// `dl_iterate_phdr`'s callback: if this object holds the address, its rule (and stop).
unsafe extern "C" fn per_object(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: `data` is the `Query` `find` passed; `info` is the loader's description of one
    // loaded object, valid during this call.
    let (q, info) = unsafe { (&mut *data.cast::<Query<'_>>(), &*info) };
    // SAFETY: the loader's program headers of this object: `dlpi_phnum` of them.
    let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
    let bias = info.dlpi_addr as usize;
    let segment = |addr: usize| {
        headers.iter().find(|h| {
            let start = bias.wrapping_add(h.p_vaddr as usize);
            h.p_type == libc::PT_LOAD && start <= addr && addr - start < h.p_memsz as usize
        })
    };
    if segment(q.at).is_none() {
        return 0;
    }
    let Some(hdr) = headers.iter().find(|h| h.p_type == libc::PT_GNU_EH_FRAME) else {
        return 1;
    };
    let hdr_addr = bias.wrapping_add(hdr.p_vaddr as usize);
    // SAFETY: the object's `.eh_frame_hdr`, mapped (its program header says where).
    let hdr_bytes =
        unsafe { std::slice::from_raw_parts(hdr_addr as *const u8, hdr.p_memsz as usize) };
    let bases = BaseAddresses::default().set_eh_frame_hdr(hdr_addr as u64);
    let Ok(parsed) = EhFrameHdr::new(hdr_bytes, NativeEndian).parse(&bases, 8) else {
        return 1;
    };
    let Ok(eh_frame_addr) = parsed.eh_frame_ptr().direct() else {
        return 1;
    };
    let eh_frame_addr = eh_frame_addr as usize;
    let Some(seg) = segment(eh_frame_addr) else {
        return 1;
    };
    let end = bias
        .wrapping_add(seg.p_vaddr as usize)
        .wrapping_add(seg.p_memsz as usize);
    // SAFETY: from `.eh_frame`'s start to the end of the loaded segment that holds it: mapped.
    let eh_bytes =
        unsafe { std::slice::from_raw_parts(eh_frame_addr as *const u8, end - eh_frame_addr) };
    let eh_frame = EhFrame::new(eh_bytes, NativeEndian);
    let bases = bases.set_eh_frame(eh_frame_addr as u64);
    q.rule = rule_of(&parsed, &eh_frame, &bases, q.at as u64, q.ctx).unwrap_or(Rule::Unknown);
    1
}

/// The rule at `at` in one object's tables.
fn rule_of(
    hdr: &gimli::ParsedEhFrameHdr<EndianSlice<'_, NativeEndian>>,
    eh_frame: &EhFrame<EndianSlice<'_, NativeEndian>>,
    bases: &BaseAddresses,
    at: u64,
    ctx: &mut UnwindContext<usize>,
) -> Option<Rule> {
    let fde = hdr
        .table()?
        .fde_for_address(eh_frame, bases, at, EhFrame::cie_from_offset)
        .ok()?;
    if fde.is_signal_trampoline() {
        return Some(Rule::Unknown);
    }
    let row = fde.unwind_info_for_address(eh_frame, bases, ctx, at).ok()?;
    let (fp, cfa) = match *row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } if register == RSP => (false, offset),
        CfaRule::RegisterAndOffset { register, offset } if register == RBP => (true, offset),
        _ => return Some(Rule::Unknown),
    };
    let ra = match row.register(RA) {
        RegisterRule::Offset(o) => o,
        RegisterRule::Undefined => return Some(Rule::End),
        _ => return Some(Rule::Unknown),
    };
    let rbp = match row.register(RBP) {
        RegisterRule::Offset(o) => Some(i32::try_from(o).ok()?),
        RegisterRule::Undefined | RegisterRule::SameValue => None,
        _ => return Some(Rule::Unknown),
    };
    Some(Rule::Step {
        fp,
        cfa: i32::try_from(cfa).ok()?,
        ra: i32::try_from(ra).ok()?,
        rbp,
    })
}

/// Walks the caller's stack with this walker and with libgcc, and compares: the number of
/// frames both found, or what differs. (A check a program can run on its own threads:
/// `leakscope::alloc_bench::stack_walk_agrees_with_libgcc`.)
#[inline(never)]
pub(crate) fn agrees_with_libgcc() -> Result<usize, String> {
    let (ours, theirs) = both();
    same_callers(&ours, &theirs)?;
    Ok(ours.len())
}

/// Both walks from one frame: (this walker's, libgcc's). Both buffers are deep enough that
/// each walk reaches the stack's outermost frame.
#[inline(never)]
fn both() -> (Vec<usize>, Vec<usize>) {
    let mut ours = vec![0; 512];
    let n = own_walk(&mut ours).unwrap_or(usize::MAX);
    let mut theirs = vec![0; 512];
    let m = with_libgcc(&mut theirs);
    theirs.truncate(m);
    // libgcc reports the outermost frame's caller as a last frame at address 0.
    if theirs.last() == Some(&0) {
        theirs.pop();
    }
    if n == usize::MAX {
        ours.clear(); // handed over: no frames of its own
    } else {
        ours.truncate(n);
    }
    (ours, theirs)
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

#[cfg(test)]
mod tests;
