//! Dashboard sessions: an API key or a person (email and password) signs
//! in once, the browser then holds only an opaque session cookie
//! (`HttpOnly; SameSite=Strict`, `Secure` behind TLS). The session keeps
//! the key's hash (never the key) or the user's id: every page resolves it
//! again (a revoked key or a disabled user ends its sessions at once), and
//! a session idle for `IDLE` ends too. Every form carries the session's CSRF
//! token; a POST without it is refused.
//!
//! Sessions live in the memory of the instance that made them: a restart
//! signs everyone out, and several instances behind one address need sticky
//! routing (no table, so no migration).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;

/// A session unused this long is over.
pub const IDLE: Duration = Duration::minutes(30);
/// The cookie's name.
pub const COOKIE: &str = "allot_session";
/// The sign-in form's own CSRF cookie (before any session exists).
pub const SIGNIN_COOKIE: &str = "allot_signin";
/// Sessions kept at most; the oldest idle ones go first.
const MAX_SESSIONS: usize = 10_000;

/// A one-line message shown on the next page (after a redirect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flash {
    Notice(String),
    Warning(String),
    Error(String),
}

/// Who signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// An API key, by the hash of its secret.
    Key(String),
    /// A person, by user id.
    User(String),
}

#[derive(Debug, Clone)]
pub struct Session {
    pub owner: Owner,
    pub csrf: String,
    pub last_seen: DateTime<Utc>,
    pub flash: Option<Flash>,
}

#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, Session>>>,
}

/// A random token, hex.
pub fn token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    /// Starts a session for `owner`; returns its token.
    pub fn start(&self, owner: Owner, now: DateTime<Utc>) -> String {
        let id = token();
        let mut map = self.inner.lock().expect("sessions lock");
        map.retain(|_, s| now - s.last_seen < IDLE);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            id.clone(),
            Session {
                owner,
                csrf: token(),
                last_seen: now,
                flash: None,
            },
        );
        id
    }

    /// The live session of this token, touched (its idle time starts
    /// again) and its flash taken; `None` when unknown or idle too long
    /// (then it is forgotten).
    pub fn touch(&self, id: &str, now: DateTime<Utc>) -> Option<Session> {
        let mut map = self.inner.lock().expect("sessions lock");
        let session = map.get_mut(id)?;
        if now - session.last_seen >= IDLE {
            map.remove(id);
            return None;
        }
        session.last_seen = now;
        let seen = session.clone();
        session.flash = None;
        Some(seen)
    }

    pub fn flash(&self, id: &str, flash: Flash) {
        if let Some(s) = self.inner.lock().expect("sessions lock").get_mut(id) {
            s.flash = Some(flash);
        }
    }

    pub fn end(&self, id: &str) {
        self.inner.lock().expect("sessions lock").remove(id);
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the browser reached us over TLS (directly or through a proxy
/// that says so): then cookies are `Secure`.
pub fn behind_tls(headers: &axum::http::HeaderMap, uri: &axum::http::Uri) -> bool {
    uri.scheme_str() == Some("https")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').next().unwrap_or("").trim() == "https")
}

/// The `Set-Cookie` value for `name=value`; `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<i64>) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue, Uri};

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000, 0).unwrap() + Duration::minutes(minutes)
    }

    #[test]
    fn a_session_lives_while_used_and_ends_after_idle_time() {
        let sessions = Sessions::default();
        let id = sessions.start(Owner::Key("hash".into()), at(0));
        assert!(sessions.touch(&id, at(29)).is_some());
        // Touched at 29: idle from there.
        assert!(sessions.touch(&id, at(58)).is_some());
        assert!(sessions.touch(&id, at(88)).is_none());
        // Forgotten once expired.
        assert!(sessions.touch(&id, at(58)).is_none());
        assert!(sessions.touch("other", at(0)).is_none());
    }

    #[test]
    fn sign_out_ends_the_session_and_a_flash_is_shown_once() {
        let sessions = Sessions::default();
        let id = sessions.start(Owner::Key("hash".into()), at(0));
        sessions.flash(&id, Flash::Notice("done".into()));
        assert_eq!(
            sessions.touch(&id, at(1)).unwrap().flash,
            Some(Flash::Notice("done".into()))
        );
        assert_eq!(sessions.touch(&id, at(2)).unwrap().flash, None);
        sessions.end(&id);
        assert!(sessions.touch(&id, at(3)).is_none());
    }

    #[test]
    fn tokens_differ_and_secrets_compare_exactly() {
        assert_ne!(token(), token());
        assert_eq!(token().len(), 64);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }

    #[test]
    fn cookies_are_read_by_name_and_set_strict() {
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_static("a=1; allot_session=xyz; b=2"),
        );
        assert_eq!(cookie(&h, COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
        let c = set_cookie(COOKIE, "v", false, None);
        assert_eq!(c, "allot_session=v; Path=/; HttpOnly; SameSite=Strict");
        assert!(set_cookie(COOKIE, "", true, Some(0)).ends_with("; Max-Age=0; Secure"));
        let uri: Uri = "/".parse().unwrap();
        assert!(!behind_tls(&h, &uri));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(behind_tls(&h, &uri));
    }
}
