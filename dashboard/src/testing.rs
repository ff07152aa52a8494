//! Test data shared by the unit tests.

use leakscope::{Mode, Snapshot};
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
