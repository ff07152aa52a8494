//! What only explicit-spawn mode needs: the task that reads a tracked socket.
//!
//! Without the runtime hooks nothing tags the task that serves a tracked socket (axum's
//! connection task), so a WebSocket upgrade inside it could not find the TCP connection it
//! belongs to. The first task to read from the socket is remembered as its reader;
//! `Connection::current` falls back to it. (The other explicit-mode piece, a task registering
//! itself on its first poll, is `Life::Announced` in `spawn.rs`.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::ids::{Tag, TaskId};

static READERS: Mutex<Option<HashMap<TaskId, Tag>>> = Mutex::new(None);
static LEN: AtomicUsize = AtomicUsize::new(0);

fn with<R>(f: impl FnOnce(&mut HashMap<TaskId, Tag>) -> R) -> R {
    let _g = crate::tag::untracked();
    let mut m = READERS.lock().unwrap_or_else(|p| p.into_inner());
    let r = f(m.get_or_insert_with(HashMap::new));
    LEN.store(m.as_ref().map_or(0, HashMap::len), Ordering::Relaxed);
    r
}

/// `task` reads the socket of the connection tagged `tag`.
pub(crate) fn note_reader(task: TaskId, tag: Tag) {
    with(|m| m.insert(task, tag));
}

/// The socket `task` read is gone.
pub(crate) fn forget_reader(task: TaskId) {
    with(|m| m.remove(&task));
}

/// The tag of the tracked socket the current task reads, if any.
pub(crate) fn reader_tag() -> Tag {
    if LEN.load(Ordering::Relaxed) == 0 {
        return Tag::NONE;
    }
    let Some(task) = TaskId::current() else {
        return Tag::NONE;
    };
    with(|m| m.get(&task).copied().unwrap_or(Tag::NONE))
}
