//! The idempotency rule: same key and same request → the first answer again.

/// What to do with a request carrying an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyUse<T> {
    /// Never seen: apply it.
    Fresh,
    /// Seen with the same request: answer what was answered then.
    Replay(T),
    /// Seen with a different request: refuse (422).
    Mismatch,
}

/// `stored` is the fingerprint and answer recorded for the key, if any.
pub fn key_use<T: Clone>(stored: Option<(&str, &T)>, fingerprint: &str) -> KeyUse<T> {
    match stored {
        None => KeyUse::Fresh,
        Some((fp, answer)) if fp == fingerprint => KeyUse::Replay(answer.clone()),
        Some(_) => KeyUse::Mismatch,
    }
}

/// Keys are kept at least this long.
pub const KEEP_HOURS: i64 = 48;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_body_replays_other_body_mismatches() {
        assert_eq!(key_use::<u8>(None, "a"), KeyUse::Fresh);
        assert_eq!(key_use(Some(("a", &7)), "a"), KeyUse::Replay(7));
        assert_eq!(key_use(Some(("a", &7)), "b"), KeyUse::<u8>::Mismatch);
    }
}
