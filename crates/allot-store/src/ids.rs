//! Opaque, type-prefixed ids that sort roughly by creation time.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::RngCore;

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// `prefix_` + 12 hex digits of milliseconds + 6 hex digits of a process
/// sequence (ids made in one millisecond keep their order) + 8 random hex
/// digits (processes never collide).
pub fn new_id(prefix: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    let mut random = [0u8; 4];
    rand::thread_rng().fill_bytes(&mut random);
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed) & 0xff_ffff;
    format!(
        "{prefix}_{:012x}{seq:06x}{}",
        now.timestamp_millis().max(0),
        hex::encode(random)
    )
}

/// Does `id` look like one of ours with this prefix? Used to turn a
/// malformed id into a clean 404 before any query runs.
pub fn has_prefix(id: &str, prefix: &str) -> bool {
    id.len() <= 64
        && id
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('_'))
            .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_sort_by_time() {
        let t1 = chrono::DateTime::from_timestamp_millis(1_000).unwrap();
        let t2 = chrono::DateTime::from_timestamp_millis(2_000).unwrap();
        let (a, b) = (new_id("ent", t1), new_id("ent", t2));
        assert!(has_prefix(&a, "ent") && !has_prefix(&a, "acc"));
        assert!(a < b);
        assert!(!has_prefix("ent_../x", "ent"));
    }
}
