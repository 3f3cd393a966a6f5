//! The HTTP side: one request as the tests send it (so it can be sent again
//! byte for byte), and its answer.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

/// Longer than the server's own 30 s request timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(45);

/// A request, kept to be sent again with the same key and bytes.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub path: String,
    pub body: Option<String>,
    pub key: Option<String>,
    /// The API key (bearer) it is sent with: idempotency keys are scoped by it.
    pub auth: String,
}

/// A response: status, body, and the replay header.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub replayed: bool,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn str_at(&self, pointer: &str) -> Option<String> {
        self.body.pointer(pointer)?.as_str().map(str::to_string)
    }
}

#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Http {
    pub fn new() -> Http {
        Http {
            client: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .pool_max_idle_per_host(256)
                .build()
                .expect("http client"),
        }
    }

    /// Sends `req` to the server at `base`; `Err` when no answer came back
    /// (connection refused or cut, timeout).
    pub async fn send(&self, base: &str, req: &Request) -> Result<Answer, String> {
        let mut builder = self
            .client
            .request(req.method.clone(), format!("{base}{}", req.path))
            .bearer_auth(&req.auth);
        if let Some(body) = &req.body {
            builder = builder
                .header("content-type", "application/json")
                .body(body.clone());
        }
        if let Some(key) = &req.key {
            builder = builder.header("Idempotency-Key", key);
        }
        let response = builder.send().await.map_err(|e| format!("{e:?}"))?;
        let status = response.status().as_u16();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let text = response.text().await.map_err(|e| format!("{e:?}"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer {
            status,
            body,
            replayed,
        })
    }

    /// A request that must succeed (set-up and reads): the body.
    pub async fn must(&self, base: &str, req: &Request, status: u16) -> Value {
        let answer = self
            .send(base, req)
            .await
            .unwrap_or_else(|e| panic!("{} {}: no answer: {e}", req.method, req.path));
        assert_eq!(
            answer.status, status,
            "{} {}: {:?}",
            req.method, req.path, answer.body
        );
        answer.body
    }

    pub async fn get(&self, base: &str, auth: &str, path: &str) -> Value {
        self.must(base, &Request::get(auth, path), 200).await
    }
}

impl Request {
    pub fn get(auth: &str, path: &str) -> Request {
        Request {
            method: Method::GET,
            path: path.to_string(),
            body: None,
            key: None,
            auth: auth.to_string(),
        }
    }

    pub fn post(auth: &str, path: &str, body: Option<Value>, key: Option<String>) -> Request {
        Request {
            method: Method::POST,
            path: path.to_string(),
            body: body.map(|b| b.to_string()),
            key,
            auth: auth.to_string(),
        }
    }
}

/// A JSON quantity in thousandths (quantities are exact to 0.001).
pub fn milli(v: &Value) -> i64 {
    match v {
        Value::Number(n) => (n.as_f64().expect("number") * 1000.0).round() as i64,
        Value::String(s) => (s.parse::<f64>().expect("numeric string") * 1000.0).round() as i64,
        other => panic!("not a quantity: {other:?}"),
    }
}
