//! `allot webhooks …` and `allot events tail` against a real server that
//! delivers to a receiver in this test.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use allot_server::auth::create_key;
use allot_server::Config;
use allot_store::model::Role;
use allot_store::{Clock, SystemClock};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn allot(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_allot"))
        .args(args)
        .env_remove("ALLOT_DATABASE_URL")
        .output()
        .expect("run allot");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (
        out.status.success(),
        text + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Answers every request 204 and counts them.
async fn receiver() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut buf).await;
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = socket
                    .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (url, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_commands_and_the_event_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        db: format!("sqlite://{}", dir.path().join("cli.db").display()),
        listen: "127.0.0.1:0".into(),
        ..Config::default()
    };
    config.alerts.webhook_allow_private = true;
    config.alerts.delivery_poll_ms = 50;
    let store = allot_server::open_store(&config).await.unwrap();
    store.migrate().await.unwrap();
    let (_, admin) = create_key(
        store.as_ref(),
        Role::Admin,
        None,
        None,
        SystemClock.now(),
        &allot_server::auth::operator(),
    )
    .await
    .unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let running = allot_server::start(&config, store, clock).await.unwrap();
    let url = running.url();
    let (hook_url, received) = receiver().await;
    let remote = ["--url", url.as_str(), "--key", admin.as_str()];
    let json = [&remote[..], &["-o", "json"]].concat();

    let (ok, out) = allot(
        &[
            &[
                "webhooks",
                "create",
                &hook_url,
                "--event-type",
                "webhook.test",
            ][..],
            &json,
        ]
        .concat(),
    );
    assert!(ok, "{out}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    let (ok, out) = allot(&[&["webhooks", "list"][..], &remote].concat());
    assert!(
        ok && out.contains(&id) && out.contains("webhook.test"),
        "{out}"
    );

    let test = reqwest::Client::new()
        .post(format!("{url}/v1/webhooks/{id}/test"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(test.status().as_u16(), 202);
    let mut delivery = Value::Null;
    for _ in 0..200 {
        let (ok, out) = allot(&[&["webhooks", "deliveries", &id][..], &json].concat());
        assert!(ok, "{out}");
        delivery = serde_json::from_str::<Value>(&out).unwrap()["items"][0].clone();
        if delivery["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivery["state"], "delivered", "{delivery}");
    let dlv = delivery["id"].as_str().unwrap();
    let (ok, out) = allot(&[&["webhooks", "retry", &id, dlv][..], &json].concat());
    assert!(ok, "{out}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["state"],
        "pending"
    );
    for _ in 0..200 {
        if received.load(std::sync::atomic::Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(received.load(std::sync::atomic::Ordering::SeqCst), 2);

    let (ok, out) = allot(&[&["events", "tail", "--from-start", "--once"][..], &remote].concat());
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].contains(" webhook.test "), "{out}");
    let (ok, out) = allot(&[&["events", "tail", "--once"][..], &remote].concat());
    assert!(ok && out.is_empty(), "only new events: {out}");
    running.shutdown(Duration::from_secs(5)).await;
}
