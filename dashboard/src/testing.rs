//! Test data shared by the unit tests.

use leakscope::{ConnectionInfo, Mode, Snapshot};
use serde_json::Value;

/// An empty snapshot in hooks mode whose top-level fields are replaced by `fields` (a JSON
/// object, e.g. `{"tasks": [...]}`).
pub(crate) fn snapshot(fields: Value) -> Snapshot {
    let mut value = serde_json::to_value(Snapshot::empty(Mode::Hooks, 0)).expect("snapshot JSON");
    if let (Some(base), Value::Object(fields)) = (value.as_object_mut(), fields) {
        base.extend(fields);
    }
    serde_json::from_value(value).expect("snapshot JSON")
}

/// An open connection `id` with nothing in it, labelled `/ws`.
pub(crate) fn connection(id: u64) -> ConnectionInfo {
    serde_json::from_value(serde_json::json!({
        "id": id, "label": "/ws", "peer": null, "state": "open", "opened_at_ms": 1_000,
        "closed_at_ms": null, "close_reason": null, "live_tasks": 0, "orphan_tasks": 0,
        "tasks_spawned": 0, "live_bytes": 0, "retained_bytes": 0, "allocated_bytes": 0,
        "freed_bytes": 0, "live_blocks": 0, "leaking_memory": false
    }))
    .expect("connection JSON")
}
