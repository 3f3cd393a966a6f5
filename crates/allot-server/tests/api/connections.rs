//! The connection limit (`max_connections`): connections beyond it are
//! accepted, every request on them is answered 503 `overloaded` with
//! `Retry-After` (probes are answered) and the connection is closed; a
//! connection that closes makes room. A keep-alive connection idle for
//! `idle_timeout_secs` is closed. SQLite only: these are the listener's,
//! the same on both backends.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{spawn_app_with, Backend, TestApp};

/// One HTTP/1.1 request on `stream`; the answer's head and body as text.
async fn ask(stream: &mut TcpStream, app: &TestApp, path: &str) -> String {
    let host = app.url.trim_start_matches("http://");
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {}\r\n\r\n",
        app.admin
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Read the head, then the body its content-length announces.
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert!(n > 0, "closed before answering: {answer:?}");
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text.to_ascii_lowercase();
            }
        }
    }
}

/// Whether the server closed `stream` (end of file within 10 s).
async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn connections_beyond_the_limit_are_shed_and_closed() {
    let app = spawn_app_with(Backend::Sqlite, |c| c.max_connections = 2).await;
    let addr = app.url.trim_start_matches("http://").to_string();
    let mut first = TcpStream::connect(&addr).await.unwrap();
    let mut second = TcpStream::connect(&addr).await.unwrap();
    for stream in [&mut first, &mut second] {
        let answer = ask(stream, &app, "/v1/accounts").await;
        assert!(answer.starts_with("http/1.1 200"), "{answer}");
        assert!(!answer.contains("connection: close"), "{answer}");
    }

    // A third: shed with Retry-After, then closed.
    let mut third = TcpStream::connect(&addr).await.unwrap();
    let answer = ask(&mut third, &app, "/v1/accounts").await;
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(answer.contains(r#""code":"overloaded""#), "{answer}");
    assert!(closed(&mut third).await, "the connection stays open");

    // A probe beyond the limit is answered, and its connection closed.
    let mut probe = TcpStream::connect(&addr).await.unwrap();
    let answer = ask(&mut probe, &app, "/healthz").await;
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(
        closed(&mut probe).await,
        "the probe's connection stays open"
    );

    // The first two are still served as usual.
    let answer = ask(&mut second, &app, "/v1/accounts").await;
    assert!(answer.starts_with("http/1.1 200"), "{answer}");

    // Once one closes, a new connection is served.
    drop(first);
    let mut served = false;
    for _ in 0..100 {
        let mut next = TcpStream::connect(&addr).await.unwrap();
        if ask(&mut next, &app, "/v1/accounts")
            .await
            .starts_with("http/1.1 200")
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "no room was made by the closed connection");
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_and_active_ones_kept() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.idle_timeout_secs = 2;
        c.max_connections = 2;
    })
    .await;
    let addr = app.url.trim_start_matches("http://").to_string();
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    let mut active = TcpStream::connect(&addr).await.unwrap();
    for stream in [&mut idle, &mut active] {
        let answer = ask(stream, &app, "/v1/accounts").await;
        assert!(answer.starts_with("http/1.1 200"), "{answer}");
    }

    // One asks every 200 ms for 1.5 timeouts; the other says nothing.
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let answer = ask(&mut active, &app, "/v1/accounts").await;
        assert!(answer.starts_with("http/1.1 200"), "{answer}");
    }
    assert!(closed(&mut idle).await, "the idle connection stays open");

    // Its place is free again: a new connection is served as usual.
    let mut next = TcpStream::connect(&addr).await.unwrap();
    let answer = ask(&mut next, &app, "/v1/accounts").await;
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(!answer.contains("connection: close"), "{answer}");

    // A client that never finishes its request's head is closed too.
    let mut stalled = TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(b"GET /v1/accounts HTTP/1.1\r\n")
        .await
        .unwrap();
    assert!(
        closed(&mut stalled).await,
        "the stalled connection stays open"
    );
}
