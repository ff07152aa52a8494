//! [`SharedStr`]: an immutable string that rows of a snapshot share instead of copying.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// An immutable, cheaply cloned string: a task's name is built once per connection and name,
/// its spawn location once per call site (for the life of the process), a connection's label
/// and peer once when it opens, and shared by every row that has them (not copied per row).
/// It reads like a `&str` (`Deref`), compares with `str`, `&str` and `String`, prints like
/// one, and is a plain string in JSON.
///
/// ```
/// use leakscope::SharedStr;
///
/// let s = SharedStr::from("src/chat.rs:42:5");
/// assert!(s.contains("chat.rs"));
/// assert_eq!(s, "src/chat.rs:42:5");
/// assert_eq!(s, String::from("src/chat.rs:42:5"));
/// assert_eq!(s, SharedStr::from_static("src/chat.rs:42:5"));
/// let owned: String = s.to_string();
/// assert_eq!(serde_json::to_string(&s).unwrap(), "\"src/chat.rs:42:5\"");
/// # let _ = owned;
/// ```
#[derive(Clone)]
pub struct SharedStr(Repr);

/// A string that lives as long as the program (a clone copies two words), or one that is
/// counted (a clone is an atomic increment).
#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Counted(Arc<str>),
}

impl SharedStr {
    /// A string that lives as long as the program: no allocation, and its clones count
    /// nothing.
    pub const fn from_static(s: &'static str) -> SharedStr {
        SharedStr(Repr::Static(s))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Counted(s) => s,
        }
    }
}

impl Default for SharedStr {
    fn default() -> Self {
        SharedStr::from_static("")
    }
}

impl PartialEq for SharedStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialOrd for SharedStr {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedStr {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for SharedStr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Serialize for SharedStr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SharedStr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SharedStr::from)
    }
}

impl Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> Self {
        SharedStr(Repr::Counted(s.into()))
    }
}

impl From<&str> for SharedStr {
    fn from(s: &str) -> Self {
        SharedStr(Repr::Counted(s.into()))
    }
}

impl From<Arc<str>> for SharedStr {
    fn from(s: Arc<str>) -> Self {
        SharedStr(Repr::Counted(s))
    }
}

impl From<SharedStr> for String {
    fn from(s: SharedStr) -> Self {
        s.as_str().to_owned()
    }
}

macro_rules! eq_both_ways {
    ($($t:ty),*) => {$(
        impl PartialEq<$t> for SharedStr {
            fn eq(&self, other: &$t) -> bool {
                self.as_str() == &**other
            }
        }
        impl PartialEq<SharedStr> for $t {
            fn eq(&self, other: &SharedStr) -> bool {
                &**self == other.as_str()
            }
        }
    )*};
}

eq_both_ways!(&str, String);

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_prints_and_round_trips_like_a_string() {
        let s = SharedStr::from(String::from("conn=7 forwarder"));
        assert_eq!(s, "conn=7 forwarder");
        assert_eq!("conn=7 forwarder", s);
        assert_eq!(s, *"conn=7 forwarder");
        assert_eq!(String::from("conn=7 forwarder"), s);
        assert_ne!(s, "conn=7");
        assert_eq!(
            format!("{s} {s:?}"),
            "conn=7 forwarder \"conn=7 forwarder\""
        );
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"conn=7 forwarder\"");
        let back: SharedStr = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        assert!(serde_json::from_str::<SharedStr>("7").is_err());
        let clone = s.clone();
        assert!(
            std::ptr::eq(clone.as_str(), s.as_str()),
            "a clone shares the bytes"
        );
        // A static string is the same string: equal, ordered and hashed by its text.
        let fixed = SharedStr::from_static("conn=7 forwarder");
        assert_eq!(fixed, s);
        assert_eq!(fixed.cmp(&s), std::cmp::Ordering::Equal);
        let state = std::hash::RandomState::new();
        let h = |v: &SharedStr| std::hash::BuildHasher::hash_one(&state, v);
        assert_eq!(h(&fixed), h(&s));
        let (a, b) = (
            SharedStr::from_static("a"),
            SharedStr::from(String::from("b")),
        );
        assert!(a < b);
        assert_eq!(serde_json::to_string(&fixed).unwrap(), json);
        assert!(std::ptr::eq(fixed.clone().as_str(), fixed.as_str()));
        assert_eq!(SharedStr::default(), "");
    }
}
