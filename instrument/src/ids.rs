//! The ids that travel from a socket to a red row, as types: a connection's [`ConnId`], the
//! [`Tag`] its code carries (and its heap blocks, in their headers), and tokio's [`TaskId`].
//! The tag's packing is known here and nowhere else.

/// A connection slot and its generation: `generation << 32 | slot`, the 8 bytes the allocator
/// writes before every block (whose top bit, in the header only, marks a sampled block: the
/// generation has 31 bits). [`Tag::NONE`] is no connection.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
#[repr(transparent)]
pub(crate) struct Tag(u64);

impl Tag {
    /// No connection: the tool's own work, or code outside every connection.
    pub(crate) const NONE: Tag = Tag(0);

    /// Generations wrap below this (the header's top bit is the sampled mark).
    pub(crate) const GENERATIONS: u32 = 1 << 31;
    const SAMPLED: u64 = 1 << 63;

    /// The tag of `slot` at `generation` (modulo [`Tag::GENERATIONS`]).
    #[inline]
    pub(crate) const fn new(slot: usize, generation: u32) -> Tag {
        Tag((((generation % Tag::GENERATIONS) as u64) << 32) | slot as u64)
    }

    /// The header word of a block of this tag, marked if the block is sampled.
    #[inline]
    pub(crate) const fn header(self, sampled: bool) -> u64 {
        if sampled {
            self.0 | Tag::SAMPLED
        } else {
            self.0
        }
    }

    /// The tag and the sampled mark of a header word.
    #[inline]
    pub(crate) const fn from_header(bits: u64) -> (Tag, bool) {
        (Tag(bits & !Tag::SAMPLED), bits & Tag::SAMPLED != 0)
    }

    /// The slot part.
    #[inline]
    pub(crate) const fn slot(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }

    /// The generation part.
    #[inline]
    pub(crate) const fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Whether this is [`Tag::NONE`].
    #[inline]
    pub(crate) const fn is_none(self) -> bool {
        self.0 == 0
    }

    /// The header word.
    #[inline]
    pub(crate) const fn to_bits(self) -> u64 {
        self.0
    }

    /// A tag read back from a header word.
    #[inline]
    pub(crate) const fn from_bits(bits: u64) -> Tag {
        Tag(bits)
    }
}

/// A spawn site: `file:line:col` of the code that spawned a task. From a `Location` (spawn
/// hooks and helpers) or from a span's fields (a plain `spawn_blocking` seen by the tracing
/// layer, its file name interned).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Site {
    file: &'static str,
    line: u32,
    col: u32,
}

impl Site {
    pub(crate) const fn new(file: &'static str, line: u32, col: u32) -> Site {
        Site { file, line, col }
    }

    pub(crate) fn file(self) -> &'static str {
        self.file
    }

    pub(crate) fn line(self) -> u32 {
        self.line
    }

    /// A cheap key: one site has one file string (the compiler's, or the interned one).
    pub(crate) fn key(self) -> (usize, u32, u32) {
        (self.file.as_ptr() as usize, self.line, self.col)
    }
}

impl From<&'static std::panic::Location<'static>> for Site {
    fn from(l: &'static std::panic::Location<'static>) -> Site {
        Site::new(l.file(), l.line(), l.column())
    }
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// leakscope's id of a connection: process-wide, never reused (`ConnectionInfo::id`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub(crate) struct ConnId(pub(crate) u64);

/// tokio's id of a task, as the number tokio-console shows (`TaskInfo::id`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub(crate) struct TaskId(pub(crate) u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl TaskId {
    /// tokio's id as a number (tokio offers no accessor; its `Hash` writes the `u64`).
    pub(crate) fn of(id: tokio::task::Id) -> TaskId {
        TaskId(id_u64(&id))
    }

    /// The task running this code, if any.
    pub(crate) fn current() -> Option<TaskId> {
        tokio::task::try_id().map(TaskId::of)
    }
}

/// A tokio id (task or runtime) as a number: its `Hash` writes one integer.
pub(crate) fn id_u64(id: &impl std::hash::Hash) -> u64 {
    use std::hash::Hasher;
    struct Capture(u64);
    impl Hasher for Capture {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = (self.0 << 8) | u64::from(*b);
            }
        }
        fn write_u64(&mut self, v: u64) {
            self.0 = v;
        }
    }
    let mut h = Capture(0);
    id.hash(&mut h);
    h.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_packs_slot_and_generation() {
        let t = Tag::new(12_345, 7);
        assert_eq!((t.slot(), t.generation()), (12_345, 7));
        assert_eq!(Tag::from_bits(t.to_bits()), t);
        assert!(Tag::NONE.is_none() && !t.is_none());
        assert_eq!(Tag::from_header(t.header(true)), (t, true));
        assert_eq!(Tag::from_header(t.header(false)), (t, false));
        assert_eq!(Tag::new(1, Tag::GENERATIONS + 5), Tag::new(1, 5));
    }

    #[tokio::test]
    async fn task_ids_convert_to_their_display_number() {
        let h = tokio::spawn(async {});
        let id = h.id();
        h.await.unwrap();
        assert_eq!(TaskId::of(id).0.to_string(), id.to_string());
    }
}
