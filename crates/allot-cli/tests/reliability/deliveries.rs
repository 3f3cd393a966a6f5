//! Deliveries survive kill -9: webhook deliveries pending when the server
//! is SIGKILLed are all made after it restarts, at least once each, with
//! the same `webhook-id` (the event id).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::exclusive;
use crate::harness::Server;

/// Test events sent before the kill.
const EVENTS: usize = 150;
/// How long the receiver takes per request: deliveries are still pending
/// when the kill comes.
const RECEIVER_DELAY: Duration = Duration::from_millis(40);

/// A receiver answering 200 after `RECEIVER_DELAY`; counts each
/// `webhook-id` it got.
async fn receiver() -> (String, Arc<Mutex<HashMap<String, usize>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let counts = seen.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let counts = counts.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut reader = BufReader::new(read);
                let (mut id, mut length) = (None, 0usize);
                let mut line = String::new();
                while reader.read_line(&mut line).await.unwrap_or(0) > 0 {
                    let header = line.trim_end().to_ascii_lowercase();
                    if header.is_empty() {
                        break;
                    }
                    if let Some(v) = header.strip_prefix("webhook-id:") {
                        id = Some(v.trim().to_string());
                    }
                    if let Some(v) = header.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body).await;
                tokio::time::sleep(RECEIVER_DELAY).await;
                let answered = write
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
                if let (Some(id), Ok(())) = (id, answered) {
                    *counts.lock().unwrap().entry(id).or_default() += 1;
                }
            });
        }
    });
    (url, seen)
}

async fn deliveries_survive(test: &str, db: String) {
    let _serial = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("ALLOT_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("ALLOT_WEBHOOK_TIMEOUT_MS", "1000"),
    ];
    let started =
        tokio::task::block_in_place(|| Server::start("deliveries", &db, dir.path(), &env));
    let admin = started
        .admin_key
        .expect("the first start prints the admin key");
    let mut server = started.server;
    let (hook_url, seen) = receiver().await;
    let http = reqwest::Client::new();
    let webhook: Value = http
        .post(format!("{}/v1/webhooks", server.url))
        .bearer_auth(&admin)
        .json(&json!({ "url": hook_url, "event_types": ["webhook.test"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = webhook["id"].as_str().unwrap().to_string();
    let mut events = Vec::with_capacity(EVENTS);
    for _ in 0..EVENTS {
        let d: Value = http
            .post(format!("{}/v1/webhooks/{id}/test", server.url))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        events.push(d["event_id"].as_str().unwrap().to_string());
    }
    // Kill once the worker is under way: some delivered, the rest pending
    // or in flight.
    let waiting = Instant::now();
    while seen.lock().unwrap().len() < 10 && waiting.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before_kill = seen.lock().unwrap().len();
    // SIGKILL: no shutdown of any kind, deliveries in flight.
    tokio::task::block_in_place(|| server.kill());
    tokio::task::block_in_place(|| server.restart());
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(60) {
        if events.iter().all(|e| seen.lock().unwrap().contains_key(e)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = seen.lock().unwrap().clone();
    let lost: Vec<&String> = events.iter().filter(|e| !seen.contains_key(*e)).collect();
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    println!(
        "{test}: {EVENTS} events, {before_kill} delivered before the kill, every event delivered {:.1} s after the restart, {duplicates} duplicates (at least once), {} lost",
        began.elapsed().as_secs_f64(),
        lost.len()
    );
    assert!(lost.is_empty(), "{test}: events never delivered: {lost:?}");
    assert!(
        before_kill < EVENTS,
        "{test}: the kill came after every delivery; it proved nothing"
    );
    tokio::task::block_in_place(|| server.kill());
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pending_deliveries_survive_kill_9() {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("allot.db").display());
        super::deliveries_survive("deliveries::sqlite", db).await;
    }
}

mod postgres {
    allot_store_conformance::postgres_test! {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn pending_deliveries_survive_kill_9() {
            let admin_url = allot_store_conformance::postgres_admin_url();
            let db = allot_store_postgres::create_fresh_database(&admin_url)
                .await
                .expect("fresh PostgreSQL database");
            super::deliveries_survive("deliveries::postgres", db).await;
        }
    }
}
