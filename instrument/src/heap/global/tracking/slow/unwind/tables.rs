//! Where the walker's rules come from: the unwind table (`.eh_frame_hdr` and `.eh_frame`) of
//! the loaded object that holds an address, found through `dl_iterate_phdr` and read with
//! gimli. Only read while the loader's lock keeps the object mapped (inside the callback); what
//! leaves is a plain [`Rule`].

use gimli::{
    BaseAddresses, CfaRule, EhFrame, EhFrameHdr, EndianSlice, NativeEndian, RegisterRule,
    UnwindContext, UnwindSection,
};

use super::{RA, RBP, RSP, Rule};

/// What [`find`] asks the loaded objects.
struct Query<'a> {
    at: usize,
    ctx: &'a mut UnwindContext<usize>,
    rule: Rule,
}

/// The rule at `at`, read from the unwind table of the loaded object that holds it.
pub(super) fn find(at: usize, ctx: &mut UnwindContext<usize>) -> Rule {
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
    if info.dlpi_phdr.is_null() {
        return 0;
    }
    // SAFETY: the loader's program headers of this object (not null): `dlpi_phnum` of them.
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
    let hdr_len = hdr.p_memsz as usize;
    // Inside one read-only loaded segment, as its program headers say.
    let Some(hdr_end) = hdr_addr.checked_add(hdr_len) else {
        return 1;
    };
    if !read_only(segment(hdr_addr)) || !read_only(segment(hdr_end.saturating_sub(1))) {
        return 1;
    }
    // SAFETY: the object's `.eh_frame_hdr`: mapped, read-only, `hdr_len` bytes (checked just
    // above against its loaded segment).
    let hdr_bytes = unsafe { std::slice::from_raw_parts(hdr_addr as *const u8, hdr_len) };
    let bases = BaseAddresses::default().set_eh_frame_hdr(hdr_addr as u64);
    let Ok(parsed) = EhFrameHdr::new(hdr_bytes, NativeEndian).parse(&bases, 8) else {
        return 1;
    };
    let Ok(eh_frame_addr) = parsed.eh_frame_ptr().direct() else {
        return 1;
    };
    let eh_frame_addr = eh_frame_addr as usize;
    let seg = segment(eh_frame_addr);
    if !read_only(seg) {
        return 1;
    }
    let Some(seg) = seg else {
        return 1;
    };
    let end = bias
        .wrapping_add(seg.p_vaddr as usize)
        .wrapping_add(seg.p_memsz as usize);
    // SAFETY: from `.eh_frame`'s start to the end of the loaded segment that holds it: mapped
    // and read-only (checked above), so nothing writes it while gimli reads.
    let eh_bytes = unsafe {
        std::slice::from_raw_parts(
            eh_frame_addr as *const u8,
            end.saturating_sub(eh_frame_addr),
        )
    };
    let eh_frame = EhFrame::new(eh_bytes, NativeEndian);
    let bases = bases.set_eh_frame(eh_frame_addr as u64);
    q.rule = rule_of(&parsed, &eh_frame, &bases, q.at as u64, q.ctx).unwrap_or(Rule::Unknown);
    1
}

/// A loaded segment nobody writes (`.eh_frame` and its header live in one).
fn read_only(h: Option<&libc::Elf64_Phdr>) -> bool {
    h.is_some_and(|h| h.p_flags & libc::PF_W == 0)
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
    if fde.is_signal_trampoline() || fde.cie().return_address_register() != RA {
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
