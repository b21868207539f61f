//! Model-name patterns (`claude-haiku-*`, `*opus*`) for account and client-key model lists.

/// Whether `text` matches `pattern`, where `*` stands for any run of characters (`claude-*`, `*haiku*`) and
/// everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    let mut pieces = rest.split('*').peekable();
    while let Some(piece) = pieces.next() {
        if pieces.peek().is_none() {
            // The last piece must end the text (a trailing `*` leaves it empty).
            return remaining.ends_with(piece);
        }
        match remaining.find(piece) {
            Some(at) => remaining = &remaining[at + piece.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClientKey;

    #[test]
    fn globs_match_prefixes_infixes_and_exact_names() {
        assert!(glob_match("claude-haiku-4-5", "claude-haiku-4-5"));
        assert!(!glob_match("claude-haiku-4-5", "claude-haiku-4-5-20251001"));
        assert!(glob_match("claude-haiku-*", "claude-haiku-4-5-20251001"));
        assert!(glob_match("*haiku*", "claude-haiku-4-5"));
        assert!(glob_match("claude-*-4-5*", "claude-haiku-4-5-20251001"));
        assert!(!glob_match("claude-*-4-5", "claude-opus-4-8"));
        assert!(glob_match("*", "anything"));
        assert!(!glob_match("a*b", "ab-c"));
        assert!(glob_match("a*a", "aa"));
        assert!(!glob_match("a*a", "a"));
    }

    #[test]
    fn a_key_expires_at_the_midnight_after_its_last_day() {
        let key = ClientKey { expires: Some("2026-11-15".into()), ..ClientKey::default() };
        assert_eq!(key.expired_from_ms(), Some(1_794_787_200_000)); // 2026-11-16T00:00Z
        assert_eq!(ClientKey::default().expired_from_ms(), None);
    }
}
