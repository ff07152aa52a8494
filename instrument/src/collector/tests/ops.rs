//! The operations the model test draws: every event the collector sees, as the code that
//! causes it (a connection's code spawning, a task ending, an allocation by another thread).

use proptest::prelude::*;

#[derive(Debug, Clone)]
pub(super) enum Op {
    Open,
    Close(usize),
    Ignore(usize),
    /// Code of an open connection spawns a task.
    Spawn {
        conn: usize,
        detached: bool,
    },
    /// An alive task spawns a child (any state of its connection).
    SpawnChild {
        task: usize,
        detached: bool,
    },
    /// Explicit-spawn: announced while open, registers later or is dropped unpolled.
    Announce(usize),
    Register {
        announced: usize,
        detached: bool,
    },
    DropUnpolled(usize),
    /// Explicit-spawn task whose first poll registers it before its announcement arrives.
    RaceRegister {
        conn: usize,
        detached: bool,
    },
    End {
        task: usize,
        how: u8,
    },
    /// A task spawned by an open connection's code (`parent: None`) or by an alive task ends
    /// before anything else happens: its end folded into its `TaskSpawned` when the model folds, else its spawn and
    /// its end.
    SpawnEnded {
        conn: usize,
        parent: Option<usize>,
        detached: bool,
        how: u8,
        later: u64,
        /// Bits: named, blocking, wrapped.
        flags: u8,
        /// An announced explicit-spawn task registering itself (`was_pending`), when one is.
        register: Option<usize>,
    },
    /// Code running as an alive task or an open connection allocates.
    Alloc {
        by_task: Option<usize>,
        conn: usize,
        bytes: u64,
    },
    /// Any thread frees a live block.
    Free(usize),
    Advance(u64),
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    let i = 0usize..64;
    prop_oneof![
        4 => Just(Op::Open),
        3 => i.clone().prop_map(Op::Close),
        1 => i.clone().prop_map(Op::Ignore),
        4 => (i.clone(), any::<bool>()).prop_map(|(conn, detached)| Op::Spawn { conn, detached }),
        2 => (i.clone(), any::<bool>()).prop_map(|(task, detached)| Op::SpawnChild { task, detached }),
        1 => i.clone().prop_map(Op::Announce),
        1 => (i.clone(), any::<bool>()).prop_map(|(announced, detached)| Op::Register { announced, detached }),
        1 => i.clone().prop_map(Op::DropUnpolled),
        1 => (i.clone(), any::<bool>()).prop_map(|(conn, detached)| Op::RaceRegister { conn, detached }),
        4 => (i.clone(), 0u8..4).prop_map(|(task, how)| Op::End { task, how }),
        3 => (
            (i.clone(), proptest::option::of(i.clone()), any::<bool>()),
            (0u8..4, 0u64..3, 0u8..8, proptest::option::weighted(0.2, i.clone())),
        )
            .prop_map(|((conn, parent, detached), (how, later, flags, register))| {
                Op::SpawnEnded { conn, parent, detached, how, later, flags, register }
            }),
        3 => (proptest::option::of(i.clone()), i.clone(), 1u64..80)
            .prop_map(|(by_task, conn, bytes)| Op::Alloc { by_task, conn, bytes }),
        3 => i.clone().prop_map(Op::Free),
        3 => (1u64..8).prop_map(Op::Advance),
    ]
}
