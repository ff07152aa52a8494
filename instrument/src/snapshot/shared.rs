//! [`SharedStr`]: an immutable string that rows of a snapshot share instead of copying.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// An immutable, cheaply cloned string: a task's name is built once per connection and name,
/// its spawn location once per call site, a connection's label and peer once when it opens,
/// a close reason once per snapshot, and shared by every row that has them (not copied per
/// row). It reads like a `&str` (`Deref`), compares with `str`,
/// `&str` and `String`, prints like one, and is a plain string in JSON.
///
/// ```
/// use leakscope::SharedStr;
///
/// let s = SharedStr::from("src/chat.rs:42:5");
/// assert!(s.contains("chat.rs"));
/// assert_eq!(s, "src/chat.rs:42:5");
/// assert_eq!(s, String::from("src/chat.rs:42:5"));
/// let owned: String = s.to_string();
/// assert_eq!(serde_json::to_string(&s).unwrap(), "\"src/chat.rs:42:5\"");
/// # let _ = owned;
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SharedStr(Arc<str>);

impl SharedStr {
    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> Self {
        SharedStr(s.into())
    }
}

impl From<&str> for SharedStr {
    fn from(s: &str) -> Self {
        SharedStr(s.into())
    }
}

impl From<Arc<str>> for SharedStr {
    fn from(s: Arc<str>) -> Self {
        SharedStr(s)
    }
}

impl From<SharedStr> for String {
    fn from(s: SharedStr) -> Self {
        s.0.to_string()
    }
}

macro_rules! eq_both_ways {
    ($($t:ty),*) => {$(
        impl PartialEq<$t> for SharedStr {
            fn eq(&self, other: &$t) -> bool {
                *self.0 == **other
            }
        }
        impl PartialEq<SharedStr> for $t {
            fn eq(&self, other: &SharedStr) -> bool {
                **self == *other.0
            }
        }
    )*};
}

eq_both_ways!(&str, String);

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == *other.0
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
    }
}
