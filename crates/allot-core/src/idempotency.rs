//! The idempotency rule: same key and same request → the first answer again.

/// What to do with a request carrying an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyUse<T> {
    /// Never seen: apply it.
    Fresh,
    /// Seen with the same request: answer what was answered then.
    Replay(T),
    /// Claimed by the same request, which has not answered yet.
    InFlight,
    /// Seen with a different request: refuse (422).
    Mismatch,
}

/// `stored` is the fingerprint recorded for the key and its answer (none
/// yet while the first request is in flight), if the key was seen.
pub fn key_use<T: Clone>(stored: Option<(&str, Option<&T>)>, fingerprint: &str) -> KeyUse<T> {
    match stored {
        None => KeyUse::Fresh,
        Some((fp, _)) if fp != fingerprint => KeyUse::Mismatch,
        Some((_, Some(answer))) => KeyUse::Replay(answer.clone()),
        Some((_, None)) => KeyUse::InFlight,
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
        assert_eq!(key_use(Some(("a", Some(&7))), "a"), KeyUse::Replay(7));
        assert_eq!(key_use(Some(("a", Some(&7))), "b"), KeyUse::<u8>::Mismatch);
    }

    #[test]
    fn an_unanswered_key_is_in_flight_for_its_own_request_only() {
        assert_eq!(key_use::<u8>(Some(("a", None)), "a"), KeyUse::InFlight);
        assert_eq!(key_use::<u8>(Some(("a", None)), "b"), KeyUse::Mismatch);
    }
}
