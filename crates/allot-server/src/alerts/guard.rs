//! Where a webhook may point: http or https only, and (unless private
//! targets are allowed) never an address `allot_core::alerts` calls
//! private — checked at creation and again at each delivery, whose
//! connection then goes to the addresses checked (no DNS rebinding).

use std::net::SocketAddr;

use allot_core::alerts::is_private_address;
use reqwest::Url;

/// The longest URL accepted.
pub const MAX_URL_LEN: usize = 2_000;

/// A URL that passed the guard, with the addresses its host resolved to.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: Url,
    pub host: String,
    pub addrs: Vec<SocketAddr>,
}

/// Parses and resolves `url`; the reason it is refused otherwise.
pub async fn check(url: &str, allow_private: bool) -> Result<Target, String> {
    if url.len() > MAX_URL_LEN {
        return Err(format!("must be at most {MAX_URL_LEN} characters"));
    }
    let parsed = Url::parse(url).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    let host = parsed
        .host_str()
        .ok_or("must name a host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = parsed.port_or_known_default().ok_or("must have a port")?;
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| format!("host {host} does not resolve"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("host {host} does not resolve"));
    }
    if !allow_private && addrs.iter().any(|a| is_private_address(a.ip())) {
        return Err(
            "resolves to a loopback, private, link-local or metadata address (set ALLOT_WEBHOOK_ALLOW_PRIVATE=true to allow)"
                .into(),
        );
    }
    Ok(Target {
        url: parsed,
        host,
        addrs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn private_targets_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:9/hook",
            "http://localhost/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:8080/",
            "http://10.0.0.1/",
        ] {
            let refused = check(url, false).await.unwrap_err();
            assert!(refused.contains("private"), "{url}: {refused}");
            assert!(check(url, true).await.is_ok(), "{url}");
        }
    }

    #[tokio::test]
    async fn only_http_urls_with_a_host() {
        for url in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "not a url",
            "http://",
        ] {
            assert!(check(url, true).await.is_err(), "{url}");
        }
        let long = format!("http://127.0.0.1/{}", "a".repeat(MAX_URL_LEN));
        assert!(check(&long, true).await.is_err());
    }
}
