//! Alerts that reach people, through the real server: account managers,
//! webhooks received by a real HTTP receiver that checks every signature
//! with a verifier written here from the Standard Webhooks specification,
//! retries with the same `webhook-id`, the SSRF guard, hostile receivers,
//! and e-mail received by a small SMTP server in the test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::{spawn_app_with, Backend, TestApp};

crate::on_both_backends!(
    account_managers_and_owners_are_validated_and_shown,
    webhooks_receive_signed_events_and_test_events,
    a_receiver_failing_twice_gets_the_event_three_times_with_one_id,
    an_endpoint_failing_for_five_days_is_disabled_with_an_event,
    webhook_crud_rotates_secrets_and_refuses_bad_input,
    hostile_receivers_cost_only_their_own_delivery,
    the_manager_is_mailed_once_at_eight_of_ten,
);

mod guarded {
    use super::*;

    #[tokio::test]
    async fn private_and_metadata_urls_are_refused_by_default() {
        let app = crate::common::spawn_app(Backend::Sqlite).await;
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.1.2.3/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "ftp://93.184.216.34/",
            "file:///etc/passwd",
        ] {
            let a = app.post("/v1/webhooks", json!({ "url": url })).await;
            assert_eq!(
                a.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{url}: {:?}",
                a.body
            );
            assert_eq!(
                a.body["error"]["details"]["fields"][0]["field"], "url",
                "{url}"
            );
        }
        let public = app
            .post(
                "/v1/webhooks",
                json!({ "url": "https://93.184.216.34/hook" }),
            )
            .await;
        assert_eq!(public.status, StatusCode::CREATED, "{:?}", public.body);
    }

    #[test]
    fn the_verifier_accepts_the_specification_test_vector() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "webhook-id",
            "msg_p5jXN8AQM9LWM0D4loKWxJek".parse().unwrap(),
        );
        headers.insert("webhook-timestamp", "1614265330".parse().unwrap());
        headers.insert(
            "webhook-signature",
            "v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
                .parse()
                .unwrap(),
        );
        let body = br#"{"test": 2432232314}"#;
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert!(verify(secret, &headers, body));
        assert!(!verify(secret, &headers, br#"{"test": 2432232315}"#));
        assert!(!verify(
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            &headers,
            body
        ));
    }
}

/// HMAC-SHA256 (RFC 2104) over SHA-256, block size 64.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Standard Webhooks: the signed content is `{id}.{timestamp}.{body}`, the
/// key the base64 after `whsec_`, the header a space-separated list of
/// `v1,{base64 signature}`.
fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp), Some(signatures)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return false;
    };
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|k| STANDARD.decode(k).ok())
    else {
        return false;
    };
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let expected = STANDARD.encode(hmac_sha256(&key, &signed));
    signatures
        .split(' ')
        .filter_map(|s| s.split_once(','))
        .any(|(version, signature)| version == "v1" && signature == expected)
}

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn id(&self) -> &str {
        self.headers["webhook-id"].to_str().unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

type Log = Arc<Mutex<Vec<Received>>>;

/// A real HTTP receiver on 127.0.0.1: `/ok` answers 204, `/flaky` 500
/// twice then 200, `/down` always 503, and three hostile ones: `/hang`
/// never answers, `/huge` answers 200 with 32 MiB, `/loop` redirects to
/// itself.
async fn receiver() -> (String, Log) {
    let log: Log = Arc::default();
    let record = |log: Log| {
        move |headers: HeaderMap, body: axum::body::Bytes| {
            let log = log.clone();
            async move {
                let mut log = log.lock().unwrap();
                log.push(Received {
                    headers,
                    body: body.to_vec(),
                });
                log.len()
            }
        }
    };
    let ok = record(log.clone());
    let flaky = record(log.clone());
    let down = record(log.clone());
    let app = Router::new()
        .route(
            "/ok",
            post(move |h: HeaderMap, b: axum::body::Bytes| async move {
                ok(h, b).await;
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/flaky",
            post(move |h: HeaderMap, b: axum::body::Bytes| async move {
                let n = flaky(h, b).await;
                if n <= 2 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }),
        )
        .route(
            "/down",
            post(move |h: HeaderMap, b: axum::body::Bytes| async move {
                down(h, b).await;
                StatusCode::SERVICE_UNAVAILABLE
            }),
        )
        .route(
            "/hang",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                StatusCode::OK
            }),
        )
        .route(
            "/huge",
            post(|| async { (StatusCode::OK, vec![b'x'; 32 << 20]).into_response() }),
        )
        .route(
            "/loop",
            post(|| async { (StatusCode::FOUND, [("location", "/loop")]).into_response() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, log)
}

/// Settings for tests that deliver to 127.0.0.1: private targets allowed,
/// a fast worker, a short timeout.
fn alerting(config: &mut allot_server::Config) {
    config.alerts.webhook_allow_private = true;
    config.alerts.delivery_poll_ms = 50;
    config.alerts.webhook_timeout_ms = 1_000;
}

/// The same test on the backend `app` runs on, with other settings.
async fn respawn(app: TestApp, configure: impl FnOnce(&mut allot_server::Config)) -> TestApp {
    let backend = if app.running.state.store.backend() == "postgres" {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    drop(app);
    spawn_app_with(backend, configure).await
}

async fn webhook(app: &TestApp, url: &str, types: Value) -> (String, String) {
    let a = app
        .post("/v1/webhooks", json!({ "url": url, "event_types": types }))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    let secret = a.body["secret"].as_str().unwrap().to_string();
    (a.id(), secret)
}

/// Polls the webhook's deliveries until `done` holds (at most 20 s).
async fn deliveries_until(
    app: &TestApp,
    webhook: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..400 {
        let a = app.get(&format!("/v1/webhooks/{webhook}/deliveries")).await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        let items = a.body["items"].as_array().unwrap().clone();
        if done(&items) {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("deliveries of {webhook} never reached the expected state");
}

fn all_in(items: &[Value], state: &str) -> bool {
    !items.is_empty() && items.iter().all(|d| d["state"] == state)
}

async fn account_managers_and_owners_are_validated_and_shown(app: TestApp) {
    let a = app
        .post(
            "/v1/accounts",
            json!({ "name": "Bronze", "manager_name": "Ann Manager", "manager_email": "ann@example.com" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    assert_eq!(a.body["manager_email"], "ann@example.com");
    let id = a.id();
    let bad = app
        .post(
            "/v1/accounts",
            json!({ "name": "X", "manager_email": "not an address" }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad.body["error"]["details"]["fields"][0]["field"],
        "manager_email"
    );

    let path = format!("/v1/accounts/{id}");
    let patched = app
        .call(
            Method::PATCH,
            &path,
            Some(&app.admin),
            Some(json!({ "manager_email": "bob@example.com" })),
            None,
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.body["manager_email"], "bob@example.com");
    assert_eq!(
        patched.body["manager_name"], "Ann Manager",
        "absent fields stay"
    );
    let cleared = app
        .call(
            Method::PATCH,
            &path,
            Some(&app.admin),
            Some(json!({ "manager_name": null })),
            None,
        )
        .await;
    assert_eq!(cleared.body["manager_name"], Value::Null);
    let refused = app
        .call(
            Method::PATCH,
            &path,
            Some(&app.admin),
            Some(json!({ "manager_email": "bob@" })),
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused.body["error"]["details"]["fields"][0]["field"],
        "manager_email"
    );
    let unknown = app
        .call(
            Method::PATCH,
            &path,
            Some(&app.admin),
            Some(json!({ "name": "Renamed" })),
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.get(&path).await.body["manager_email"],
        "bob@example.com"
    );

    let ent = app
        .entitlement(&id, json!({ "owner_email": "owner@example.com" }))
        .await;
    let got = app.get(&format!("/v1/entitlements/{ent}")).await;
    assert_eq!(got.body["owner_email"], "owner@example.com");
    let body = json!({
        "account_id": id, "name": "S", "unit": "cases", "total": 1, "restrict": true,
        "start_date": "2026-01-01", "end_date": "2026-12-31", "owner_email": "nobody"
    });
    let bad = app.post("/v1/entitlements", body).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad.body["error"]["details"]["fields"][0]["field"],
        "owner_email"
    );
}

async fn webhooks_receive_signed_events_and_test_events(app: TestApp) {
    let app = respawn(app, alerting).await;
    let (base, log) = receiver().await;
    let (hook, secret) = webhook(&app, &format!("{base}/ok"), json!([])).await;
    let account = app.account("Acme").await;
    let ent = app
        .active_entitlement(&account, json!({ "total": 2, "alert_thresholds": [50] }))
        .await;
    assert_eq!(app.use_(&ent, json!(1)).await.status, StatusCode::CREATED);
    let test = app
        .post(&format!("/v1/webhooks/{hook}/test"), json!({}))
        .await;
    assert_eq!(test.status, StatusCode::ACCEPTED, "{:?}", test.body);
    let items = deliveries_until(&app, &hook, |d| d.len() >= 3 && all_in(d, "delivered")).await;
    let received = log.lock().unwrap().clone();
    assert_eq!(received.len(), items.len());
    for r in &received {
        assert!(
            verify(&secret, &r.headers, &r.body),
            "bad signature on {:?}",
            r.json()
        );
        let body = r.json();
        assert!(
            body["type"].is_string() && body["timestamp"].is_string() && body["data"].is_object()
        );
    }
    let types: Vec<String> = received
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_string())
        .collect();
    for kind in [
        "entitlement.activated",
        "entitlement.threshold_crossed",
        "webhook.test",
    ] {
        assert!(types.iter().any(|t| t == kind), "{kind} not in {types:?}");
    }
    let crossed = received
        .iter()
        .find(|r| r.json()["type"] == "entitlement.threshold_crossed")
        .unwrap();
    let events = app.get("/v1/events").await.body;
    let ids: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&crossed.id()), "webhook-id is the event id");
    let first = &items[0];
    assert_eq!(first["attempts"][0]["status_code"], 204);
    assert_eq!(first["channel"], "webhook");

    // Confined to another account, or to other types: nothing more arrives.
    let other = app.account("Other").await;
    let narrow = app
        .post("/v1/webhooks", json!({ "url": format!("{base}/ok"), "account_id": other, "event_types": ["entitlement.exhausted"] }))
        .await;
    assert_eq!(narrow.status, StatusCode::CREATED, "{:?}", narrow.body);
    assert_eq!(app.use_(&ent, json!(1)).await.status, StatusCode::CREATED);
    deliveries_until(&app, &hook, |d| d.len() >= 4 && all_in(d, "delivered")).await;
    let none = app
        .get(&format!("/v1/webhooks/{}/deliveries", narrow.id()))
        .await;
    assert_eq!(none.body["items"], json!([]));
}

async fn a_receiver_failing_twice_gets_the_event_three_times_with_one_id(app: TestApp) {
    let app = respawn(app, alerting).await;
    let (base, log) = receiver().await;
    let (hook, secret) = webhook(&app, &format!("{base}/flaky"), json!(["webhook.test"])).await;
    let test = app
        .post(&format!("/v1/webhooks/{hook}/test"), json!({}))
        .await;
    assert_eq!(test.status, StatusCode::ACCEPTED);
    deliveries_until(&app, &hook, |d| d.first().is_some_and(|d| d["tries"] == 1)).await;
    // The next try is 10 s (±20 %) later on the service's clock.
    app.clock.advance(chrono::Duration::seconds(13));
    deliveries_until(&app, &hook, |d| d.first().is_some_and(|d| d["tries"] == 2)).await;
    app.clock.advance(chrono::Duration::seconds(37));
    let items = deliveries_until(&app, &hook, |d| all_in(d, "delivered")).await;
    assert_eq!(items[0]["tries"], 3);
    let codes: Vec<&Value> = items[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(codes, vec![&json!(500), &json!(500), &json!(200)]);
    let received = log.lock().unwrap().clone();
    assert_eq!(received.len(), 3);
    assert!(
        received.iter().all(|r| r.id() == received[0].id()),
        "one webhook-id across retries"
    );
    assert_eq!(received[0].id(), items[0]["event_id"]);
    assert!(received
        .iter()
        .all(|r| verify(&secret, &r.headers, &r.body)));
}

async fn an_endpoint_failing_for_five_days_is_disabled_with_an_event(app: TestApp) {
    let app = respawn(app, alerting).await;
    let (base, log) = receiver().await;
    let (hook, _) = webhook(&app, &format!("{base}/down"), json!([])).await;
    let (watcher, _) = webhook(&app, &format!("{base}/ok"), json!(["webhook.disabled"])).await;
    app.post(&format!("/v1/webhooks/{hook}/test"), json!({}))
        .await;
    deliveries_until(&app, &hook, |d| d.first().is_some_and(|d| d["tries"] == 1)).await;
    // Every try until the schedule has run for 5 days fails.
    for _ in 0..40 {
        if app.get(&format!("/v1/webhooks/{hook}")).await.body["enabled"] == false {
            break;
        }
        app.clock.advance(chrono::Duration::hours(12));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let w = app.get(&format!("/v1/webhooks/{hook}")).await.body;
    assert_eq!(w["enabled"], false, "{w:?}");
    assert!(w["disabled_reason"].as_str().unwrap().contains("5 days"));
    let told = deliveries_until(&app, &watcher, |d| all_in(d, "delivered")).await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["event_type"], "webhook.disabled");
    let disabled_events = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.json()["type"] == "webhook.disabled")
        .count();
    assert_eq!(disabled_events, 1);
    let enabled = app
        .call(
            Method::PATCH,
            &format!("/v1/webhooks/{hook}"),
            Some(&app.admin),
            Some(json!({ "enabled": true })),
            None,
        )
        .await;
    assert_eq!(enabled.body["enabled"], true);
    assert_eq!(enabled.body["failing_since"], Value::Null);
}

async fn webhook_crud_rotates_secrets_and_refuses_bad_input(app: TestApp) {
    let app = respawn(app, alerting).await;
    let (base, log) = receiver().await;
    let (hook, first_secret) = webhook(&app, &format!("{base}/ok"), json!(["webhook.test"])).await;
    assert!(first_secret.starts_with("whsec_"));
    let got = app.get(&format!("/v1/webhooks/{hook}")).await;
    assert!(got.body.get("secret").is_none(), "the secret is shown once");
    let listed = app.get("/v1/webhooks").await;
    assert_eq!(listed.body["items"][0]["id"], hook.as_str());
    assert!(listed.body["items"][0].get("secret").is_none());

    let rotated = app
        .post(&format!("/v1/webhooks/{hook}/rotate-secret"), json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    let secret = rotated.body["secret"].as_str().unwrap().to_string();
    assert_ne!(secret, first_secret);
    app.post(&format!("/v1/webhooks/{hook}/test"), json!({}))
        .await;
    deliveries_until(&app, &hook, |d| all_in(d, "delivered")).await;
    let r = log.lock().unwrap()[0].clone();
    assert!(verify(&secret, &r.headers, &r.body));
    assert!(!verify(&first_secret, &r.headers, &r.body));

    let path = format!("/v1/webhooks/{hook}");
    for (body, field) in [
        (json!({ "event_types": ["Nope"] }), "event_types[0]"),
        (json!({ "url": "gopher://x.example/" }), "url"),
        (json!({ "colour": "red" }), "colour"),
    ] {
        let a = app
            .call(Method::PATCH, &path, Some(&app.admin), Some(body), None)
            .await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", a.body);
        assert_eq!(a.body["error"]["details"]["fields"][0]["field"], field);
    }
    let missing_account = app
        .post(
            "/v1/webhooks",
            json!({ "url": format!("{base}/ok"), "account_id": "acc_nope" }),
        )
        .await;
    assert_eq!(missing_account.status, StatusCode::UNPROCESSABLE_ENTITY);

    let delivery = app.get(&format!("{path}/deliveries")).await.body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let retried = app
        .post(&format!("{path}/deliveries/{delivery}/retry"), json!({}))
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED);
    assert_eq!(retried.body["state"], "pending");
    deliveries_until(&app, &hook, |d| {
        d[0]["tries"] == 2 && all_in(d, "delivered")
    })
    .await;
    let stranger = app
        .post(&format!("{path}/deliveries/dlv_nope/retry"), json!({}))
        .await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);

    let deleted = app
        .call(Method::DELETE, &path, Some(&app.admin), None, None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path).await.status, StatusCode::NOT_FOUND);
}

async fn hostile_receivers_cost_only_their_own_delivery(app: TestApp) {
    let app = respawn(app, |c| {
        alerting(c);
        c.alerts.webhook_timeout_ms = 500;
        c.alerts.delivery_concurrency = 4;
    })
    .await;
    let (base, log) = receiver().await;
    let mut hooks = Vec::new();
    for path in ["hang", "huge", "loop", "ok"] {
        hooks.push(
            webhook(&app, &format!("{base}/{path}"), json!(["webhook.test"]))
                .await
                .0,
        );
    }
    let started = std::time::Instant::now();
    for hook in &hooks {
        app.post(&format!("/v1/webhooks/{hook}/test"), json!({}))
            .await;
    }
    let ok = deliveries_until(&app, &hooks[3], |d| all_in(d, "delivered")).await;
    assert_eq!(ok[0]["tries"], 1);
    let hang = deliveries_until(&app, &hooks[0], |d| {
        d.first().is_some_and(|d| d["tries"] == 1)
    })
    .await;
    assert_eq!(hang[0]["attempts"][0]["error"], "timed out");
    let looping = deliveries_until(&app, &hooks[2], |d| {
        d.first().is_some_and(|d| d["tries"] == 1)
    })
    .await;
    assert_eq!(looping[0]["attempts"][0]["status_code"], 302);
    assert_eq!(looping[0]["state"], "pending");
    // A 2xx is a delivery: the 32 MiB body is never read.
    let huge = deliveries_until(&app, &hooks[1], |d| all_in(d, "delivered")).await;
    assert!(huge[0]["attempts"][0]["latency_ms"].as_u64().unwrap() < 5_000);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(log.lock().unwrap().len(), 1, "only /ok records");
    // The service still answers while receivers misbehave.
    assert_eq!(app.get("/v1/webhooks").await.status, StatusCode::OK);
}

/// Each message a sink received: its recipients and its data.
type Inbox = Arc<Mutex<Vec<(Vec<String>, String)>>>;

/// A small SMTP server: enough of RFC 5321 for one client to hand over
/// messages.
async fn smtp_sink() -> (u16, Inbox) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mail: Inbox = Arc::default();
    let inbox = mail.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let inbox = inbox.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let mut to = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 sink\r\n",
                        "RCPT" => {
                            to.push(
                                line[line.find('<').unwrap() + 1..line.find('>').unwrap()]
                                    .to_string(),
                            );
                            b"250 OK\r\n"
                        }
                        "DATA" => {
                            write.write_all(b"354 go on\r\n").await.unwrap();
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(&l);
                                data.push('\n');
                            }
                            inbox.lock().unwrap().push((std::mem::take(&mut to), data));
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 OK\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, mail)
}

async fn the_manager_is_mailed_once_at_eight_of_ten(app: TestApp) {
    let (port, inbox) = smtp_sink().await;
    let app = respawn(app, |c| {
        alerting(c);
        c.alerts.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        c.alerts.smtp_from = "Allot <allot@example.com>".into();
    })
    .await;
    let a = app
        .post(
            "/v1/accounts",
            json!({ "name": "Bronze Client", "manager_email": "am@example.com" }),
        )
        .await;
    let account = a.id();
    let ent = app
        .active_entitlement(
            &account,
            json!({ "name": "Bronze cases", "alert_thresholds": [80] }),
        )
        .await;
    for _ in 0..9 {
        assert_eq!(app.use_(&ent, json!(1)).await.status, StatusCode::CREATED);
    }
    let mut sent = Vec::new();
    for _ in 0..200 {
        let a = app.get("/v1/notifications").await;
        sent = a.body["items"].as_array().unwrap().clone();
        if all_in(&sent, "delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["target"], "am@example.com");
    assert_eq!(sent[0]["event_type"], "entitlement.threshold_crossed");
    assert_eq!(sent[0]["attempts"][0]["status_code"], 250);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mail = inbox.lock().unwrap().clone();
    assert_eq!(mail.len(), 1, "exactly one e-mail");
    let (to, data) = &mail[0];
    assert_eq!(to, &vec!["am@example.com".to_string()]);
    assert!(data.contains("Bronze Client"), "{data}");
    assert!(data.contains("Bronze cases"), "{data}");
    assert!(
        data.contains("text/plain") && data.contains("text/html"),
        "{data}"
    );
    assert!(data.contains("upgrade"), "{data}");
    let by_address = app.get("/v1/notifications?to=other@example.com").await;
    assert_eq!(by_address.body["items"], json!([]));
}
