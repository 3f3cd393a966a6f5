//! Alerts that reach people: which outbox events go to which webhook or
//! mailbox, how a webhook delivery is signed (Standard Webhooks), when a
//! failed delivery is tried again, when an endpoint that keeps failing is
//! switched off, and which addresses a webhook may never reach.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::quantity::Quantity;

/// The prefix of a signing secret, as the specification writes it.
pub const SECRET_PREFIX: &str = "whsec_";

/// The kinds e-mailed by default, to the account manager and the
/// entitlement owner alike (the issue's list).
pub const MAIL_BY_DEFAULT: [&str; 5] = [
    "entitlement.threshold_crossed",
    "entitlement.exhausted",
    "entitlement.overage",
    "entitlement.expiring_soon",
    "entitlement.period_reset",
];

/// `whsec_` + base64 of the key bytes.
pub fn encode_secret(key: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The key bytes of a `whsec_…` secret; `None` when it is not one.
pub fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix(SECRET_PREFIX)?;
    STANDARD.decode(encoded).ok().filter(|k| !k.is_empty())
}

/// The `webhook-signature` header value: `v1,` + base64 of HMAC-SHA256
/// over `id.timestamp.body`, keyed with the decoded secret.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Tries after the first: 10 s × 3ⁿ, capped at a day, so twelve tries in
/// all span about 3.2 days (10 s, 30 s, 1.5 min, 4.5 min, 13.5 min, 40 min,
/// 2 h, 6 h, 18 h, 24 h, 24 h), each moved by up to ±20 % jitter so that
/// a receiver coming back is not hit by every retry at once.
pub const RETRIES: u32 = 11;
const FIRST_DELAY_SECONDS: i64 = 10;
const LONGEST_DELAY_SECONDS: i64 = 24 * 3600;
const JITTER_PERCENT: i64 = 20;

/// How long to wait after the `tries`-th failed try (1-based) before the
/// next; `None` when the schedule is over. `jitter` in [-1, 1] spreads it.
pub fn retry_delay(tries: u32, jitter: f64) -> Option<Duration> {
    if tries == 0 || tries > RETRIES {
        return None;
    }
    let base = 3i64
        .checked_pow(tries - 1)
        .and_then(|f| f.checked_mul(FIRST_DELAY_SECONDS))
        .map_or(LONGEST_DELAY_SECONDS, |s| s.min(LONGEST_DELAY_SECONDS));
    let spread = base * JITTER_PERCENT / 100;
    let shift = (spread as f64 * jitter.clamp(-1.0, 1.0)) as i64;
    Some(Duration::seconds(base + shift))
}

/// An endpoint failing without a single success for this long is disabled.
pub const DISABLE_AFTER_DAYS: i64 = 5;

pub fn should_disable(failing_since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now - failing_since >= Duration::days(DISABLE_AFTER_DAYS)
}

/// Whether a webhook subscribed to `event_types` (empty: every type) and
/// optionally confined to one account receives an event of `kind` about
/// `account` (events about no account reach only unconfined webhooks).
pub fn webhook_wants(
    event_types: &[String],
    confined_to: Option<&str>,
    kind: &str,
    account: Option<&str>,
) -> bool {
    let type_ok = event_types.is_empty() || event_types.iter().any(|t| t == kind);
    let account_ok = confined_to.is_none_or(|c| account == Some(c));
    type_ok && account_ok
}

/// Whether an event of `kind` is worth an e-mail when the rules name it:
/// a period reset only when something was left unused.
pub fn worth_mailing(kind: &str, data: &Value) -> bool {
    if kind != "entitlement.period_reset" {
        return true;
    }
    serde_json::from_value::<Quantity>(data["unused"].clone())
        .is_ok_and(|unused| unused > Quantity::ZERO)
}

/// A plausible e-mail address: one `@`, a local part, a dotted domain, no
/// spaces or angle brackets (what a mail header could not carry safely).
pub fn is_email_address(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let clean = |p: &str| {
        !p.is_empty()
            && p.chars().all(|c| {
                c.is_ascii_graphic()
                    && !matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | '@' | '"' | '\\')
            })
    };
    s.len() <= 254
        && clean(local)
        && clean(domain)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

/// Addresses a webhook must not reach unless private targets are allowed:
/// loopback, private, link-local (which holds the cloud metadata address),
/// shared (carrier-grade NAT), unspecified, broadcast, multicast,
/// documentation and unique-local ranges, and IPv4 inside IPv6.
pub fn is_private_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => private_v6(v6),
    }
}

fn private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    // 0.0.0.0 (unspecified) falls under `a == 0`, the broadcast address
    // under `a >= 240`.
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240
}

fn private_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return private_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || first == 0x2001 && ip.segments()[1] == 0x0db8
        || first == 0x0064 && ip.segments()[1] == 0xff9b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_reproduce_the_specification_test_vector() {
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn signatures_change_with_every_part() {
        let key = [7u8; 24];
        let base = sign(&key, "evt_1", 10, b"{}");
        assert_ne!(base, sign(&key, "evt_2", 10, b"{}"));
        assert_ne!(base, sign(&key, "evt_1", 11, b"{}"));
        assert_ne!(base, sign(&key, "evt_1", 10, b"{ }"));
        assert_ne!(base, sign(&[8u8; 24], "evt_1", 10, b"{}"));
    }

    #[test]
    fn secrets_round_trip_and_need_their_prefix() {
        let key = [1u8, 2, 3, 250];
        assert_eq!(decode_secret(&encode_secret(&key)), Some(key.to_vec()));
        assert!(encode_secret(&key).starts_with("whsec_"));
        assert_eq!(decode_secret("AQID"), None);
        assert_eq!(decode_secret("whsec_"), None);
        assert_eq!(decode_secret("whsec_!!"), None);
    }

    #[test]
    fn the_retry_schedule_grows_threefold_and_spans_about_three_days() {
        let delays: Vec<i64> = (1..=RETRIES)
            .map(|n| retry_delay(n, 0.0).unwrap().num_seconds())
            .collect();
        assert_eq!(
            delays,
            vec![10, 30, 90, 270, 810, 2430, 7290, 21870, 65610, 86400, 86400]
        );
        let total: i64 = delays.iter().sum();
        assert!((3 * 86400..4 * 86400).contains(&total), "{total}");
        assert_eq!(retry_delay(0, 0.0), None);
        assert_eq!(retry_delay(RETRIES + 1, 0.0), None);
    }

    #[test]
    fn jitter_moves_a_delay_by_at_most_a_fifth() {
        assert_eq!(retry_delay(2, 1.0).unwrap().num_seconds(), 36);
        assert_eq!(retry_delay(2, -1.0).unwrap().num_seconds(), 24);
        assert_eq!(retry_delay(2, 5.0).unwrap().num_seconds(), 36);
        assert_eq!(retry_delay(2, 0.5).unwrap().num_seconds(), 33);
    }

    #[test]
    fn an_endpoint_is_disabled_after_five_days_of_failing() {
        let t = DateTime::from_timestamp(1_000_000, 0).unwrap();
        assert!(!should_disable(
            t,
            t + Duration::days(5) - Duration::seconds(1)
        ));
        assert!(should_disable(t, t + Duration::days(5)));
    }

    #[test]
    fn webhooks_receive_their_types_and_their_account() {
        let none: Vec<String> = vec![];
        let some = vec!["entitlement.exhausted".to_string()];
        assert!(webhook_wants(&none, None, "anything.new", None));
        assert!(webhook_wants(
            &some,
            None,
            "entitlement.exhausted",
            Some("acc_1")
        ));
        assert!(!webhook_wants(
            &some,
            None,
            "entitlement.overage",
            Some("acc_1")
        ));
        assert!(webhook_wants(&none, Some("acc_1"), "x", Some("acc_1")));
        assert!(!webhook_wants(&none, Some("acc_1"), "x", Some("acc_2")));
        assert!(!webhook_wants(&none, Some("acc_1"), "x", None));
    }

    #[test]
    fn a_period_reset_is_mailed_only_with_something_unused() {
        let kind = "entitlement.period_reset";
        assert!(worth_mailing(kind, &serde_json::json!({ "unused": 2 })));
        assert!(!worth_mailing(kind, &serde_json::json!({ "unused": 0 })));
        assert!(!worth_mailing(kind, &serde_json::json!({ "unused": null })));
        assert!(worth_mailing(
            "entitlement.exhausted",
            &serde_json::json!({})
        ));
    }

    #[test]
    fn addresses_are_checked_for_their_shape() {
        for good in ["am@example.com", "a.b+c@mail.example.co.uk"] {
            assert!(is_email_address(good), "{good}");
        }
        for bad in [
            "",
            "am",
            "am@",
            "@example.com",
            "am@example",
            "a m@example.com",
            "am@example..com",
            "am@.example.com",
            "am@example.com.",
            "a@b@example.com",
            "<am@example.com>",
            "am@example.com\r\nBcc: x@y.z",
        ] {
            assert!(!is_email_address(bad), "{bad:?}");
        }
    }

    #[test]
    fn private_and_metadata_addresses_are_recognised() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            // Each of these is caught by one rule alone.
            "0.1.2.3",
            "192.0.0.8",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "240.0.0.1",
            "100.127.255.255",
            "2001:db8::1",
            "64:ff9b::1",
            "fc00::1",
            "febf::1",
        ] {
            assert!(is_private_address(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "100.128.0.1",
            "100.63.255.255",
            "1.0.0.1",
            "192.1.0.1",
            "193.0.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "199.18.0.1",
            "223.255.255.255",
            "2001:db9::1",
            "2000:db8::1",
            "64:ff9c::1",
            "65:ff9b::1",
            "fe00::1",
            "fec0::1",
        ] {
            assert!(!is_private_address(public.parse().unwrap()), "{public}");
        }
    }
}
