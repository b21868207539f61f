//! [`Secret`]: a string that does not leak through logs and is wiped on drop.

use std::fmt;

use zeroize::Zeroizing;

/// A secret value (API key, OAuth token, ...).
///
/// `Debug` and `Display` print `[redacted]` so a secret that ends up in a log
/// line or an error message by accident does not reveal anything; the memory
/// is zeroized when the value is dropped. It deliberately implements neither
/// `Serialize` nor `Deserialize`: writing a secret anywhere must go through
/// [`Secret::expose`], which is easy to grep for.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a value. Passing an owned `String` moves it without copying.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(Zeroizing::new(s.into()))
    }

    /// The plain value, for the few places that must send or store it.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret::new(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret::new("sk-ant-very-secret");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some([redacted])");
        assert_eq!(s.expose(), "sk-ant-very-secret");
    }

    #[test]
    fn from_string_and_clone_keep_value() {
        let s: Secret = String::from("abc").into();
        let c = s.clone();
        drop(s);
        assert_eq!(c.expose(), "abc");
    }
}
