//! Sampled call stacks to allocation sites, symbolized lazily and off the allocator path: the
//! first frame that is neither leakscope's, the standard library's nor the allocator's names
//! the user or library code that allocated. Resolved frames are cached (bounded).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Where a sampled block was allocated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Site {
    /// `file:line`.
    pub site: String,
    /// The function (demangled, without its hash).
    pub function: String,
}

const MAX_CACHED: usize = 65_536;

/// ip -> the first user or library symbol at it (`None`: only runtime frames there).
static CACHE: Mutex<Option<HashMap<usize, Option<Arc<Site>>>>> = Mutex::new(None);

/// Frames of these never name an allocation site.
const SKIP_FUNCTIONS: [&str; 10] = [
    "backtrace::",
    "leakscope::",
    "std::",
    "core::",
    "alloc::",
    "__rust",
    "<alloc::",
    "<core::",
    "<std::",
    "hashbrown::",
];

/// Files of these never name an allocation site (the stack walker's, leakscope's own, as a
/// workspace member or as a crates.io dependency, and the standard library's).
const SKIP_FILES: [&str; 6] = [
    "/rustc/",
    "/backtrace-",
    "/leakscope-",
    "/instrument/src/",
    "/library/",
    "/backtrace/src/",
];

fn is_runtime(function: &str, file: &str) -> bool {
    SKIP_FUNCTIONS.iter().any(|p| function.starts_with(p))
        || SKIP_FILES.iter().any(|p| file.contains(p))
}

fn resolve(ip: usize) -> Option<Arc<Site>> {
    let mut found = None;
    backtrace::resolve(ip as *mut std::ffi::c_void, |sym| {
        if found.is_some() {
            return;
        }
        let function = sym.name().map(|n| format!("{n:#}")).unwrap_or_default();
        let file = sym
            .filename()
            .map(|f| f.display().to_string())
            .unwrap_or_default();
        if function.is_empty() || file.is_empty() || is_runtime(&function, &file) {
            return;
        }
        let site = format!("{file}:{}", sym.lineno().unwrap_or(0));
        found = Some(Arc::new(Site { site, function }));
    });
    found
}

/// The allocation site of a sampled stack (innermost frame first), if any frame is the user's
/// or a library's. Call untracked.
pub(crate) fn site_of(frames: &[usize]) -> Option<Arc<Site>> {
    for &ip in frames {
        // Return addresses point after the call: look one byte back, inside the call.
        let ip = ip.saturating_sub(1);
        let cached = CACHE
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|c| c.get(&ip).cloned());
        let site = match cached {
            Some(s) => s,
            None => {
                let s = resolve(ip);
                let mut c = CACHE.lock().unwrap_or_else(|p| p.into_inner());
                let map = c.get_or_insert_with(HashMap::new);
                if map.len() < MAX_CACHED {
                    map.insert(ip, s.clone());
                }
                s
            }
        };
        if site.is_some() {
            return site;
        }
    }
    None
}
