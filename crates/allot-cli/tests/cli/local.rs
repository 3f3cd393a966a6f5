//! What the binary does without a running service: completions, the
//! manual, the configuration, and `allot demo`, which starts its own.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{allot, assert_no_backtrace};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_the_manual_page_are_printed() {
    let dir = tempfile::tempdir().unwrap();
    let bash = allot(&["completions", "bash"], &[], dir.path())
        .await
        .ok(&[]);
    assert!(
        bash.contains("_allot()") && bash.contains("complete -F _allot"),
        "{bash}"
    );
    let fish = allot(&["completions", "fish"], &[], dir.path())
        .await
        .ok(&[]);
    assert!(fish.contains("complete -c allot"), "{fish}");
    let page = allot(&["man"], &[], dir.path()).await.ok(&[]);
    assert!(
        page.contains(".TH allot 1") && page.contains("Exit codes"),
        "{page}"
    );
    let run = allot(&["completions", "cmd.exe"], &[], dir.path()).await;
    assert_eq!(run.code, Some(2), "{run:?}");
}

/// A database password never reaches the output, even when connecting fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_passwords_never_reach_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let db = "postgres://allot:s3cr3t-pw@127.0.0.1:1/allot";
    let run = allot(&["migrate", "--db", db], &[], dir.path()).await;
    run.failed(&["migrate"], 1);
    assert!(!run.stderr.contains("s3cr3t-pw"), "{run:?}");
    let config = ["config", "--db", "postgres://allot:hunter2@db/allot"];
    let out = allot(&config, &[], dir.path()).await.ok(&config);
    assert!(
        out.contains("allot:***@db") && !out.contains("hunter2"),
        "{out}"
    );
}

/// `allot demo` seeds its database through the API (with progress), then
/// serves it; the client commands read what it made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("demo.db").display());
    let mut demo = tokio::process::Command::new(env!("CARGO_BIN_EXE_allot"))
        .args(["demo", "--db", &db, "--listen", "127.0.0.1:0"])
        .env("ALLOT_LOG", "warn")
        .env("RUST_BACKTRACE", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run allot demo");
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let (mut url, mut key) = (None, None);
    let started = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(at) = line.strip_prefix("Allot demo is running at ") {
                url = Some(at.to_string());
            }
            if line.starts_with("allot_") {
                key = Some(line);
                break;
            }
        }
    })
    .await;
    if started.is_err() || key.is_none() {
        demo.kill().await.unwrap();
        let out = demo.wait_with_output().await.unwrap();
        panic!(
            "the demo did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (url, key) = (url.expect("the demo's URL"), key.unwrap());
    let env = [("ALLOT_URL", url.as_str()), ("ALLOT_KEY", key.as_str())];
    let list = ["entitlements", "list", "-o", "json"];
    let listed = allot(&list, &env, dir.path()).await.json(&list);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 8, "{listed}");
    let premier = items
        .iter()
        .find(|e| e["name"] == "Premier cases (10 per quarter)")
        .unwrap();
    let balance = ["balance", premier["id"].as_str().unwrap()];
    let said = allot(&balance, &env, dir.path()).await.ok(&balance);
    assert!(
        said.starts_with("Premier cases (10 per quarter) — 8 of 10 cases used"),
        "{said}"
    );
    // A newcomer's path: the dashboard at the printed address, signed in
    // with the printed key, shows the near-exhausted demo entitlements.
    let overview = dashboard_overview(&url, &key).await;
    for name in [
        "Premier cases (10 per quarter)",
        "Support hours bundle",
        "On-site visits (4 a year)",
    ] {
        assert!(
            overview.contains(name),
            "{name} on the overview: {overview}"
        );
    }
    assert!(overview.contains("approaching"), "{overview}");
    assert!(overview.contains("exhausted"), "{overview}");
    demo.kill().await.unwrap();
    let out = demo.wait_with_output().await.unwrap();
    assert_no_backtrace(&String::from_utf8_lossy(&out.stderr));
}

/// Signs in to the dashboard with `key` (its form, its CSRF token, the
/// session cookie) and returns the overview's HTML.
async fn dashboard_overview(url: &str, key: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = |r: &reqwest::Response, name: &str| -> String {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(name))
            .and_then(|c| c.split(';').next())
            .unwrap_or_default()
            .to_string()
    };
    let form = http.get(format!("{url}/sign-in")).send().await.unwrap();
    let pre = cookie(&form, "allot_signin=");
    let html = form.text().await.unwrap();
    let token = html
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the sign-in form's token")
        .to_string();
    let signed = http
        .post(format!("{url}/sign-in"))
        .header("cookie", pre)
        .form(&[("csrf", token.as_str()), ("key", key)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), reqwest::StatusCode::SEE_OTHER);
    let session = cookie(&signed, "allot_session=");
    let overview = http
        .get(format!("{url}/"))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(overview.status(), reqwest::StatusCode::OK);
    overview.text().await.unwrap()
}

/// `--verbose` adds the chain of causes, still without a backtrace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_adds_the_causes() {
    let dir = tempfile::tempdir().unwrap();
    let serve = ["serve", "--db", "postgres://allot:pw@127.0.0.1:1/allot"];
    let run = allot(&serve, &[], dir.path()).await;
    run.failed(&serve, 1);
    assert_eq!(run.stderr, "error: opening the database\n");
    let verbose = [&serve[..], &["--verbose"]].concat();
    let run = allot(&verbose, &[], dir.path()).await;
    run.failed(&verbose, 1);
    assert!(
        run.stderr
            .starts_with("error: opening the database\n  caused by: "),
        "{run:?}"
    );
}

/// Logs carry no colour codes when standard error is not a terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_plain_text_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("allot.db").display());
    let migrate = ["migrate", "--db", &db];
    let run = allot(&migrate, &[], dir.path()).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("applying SQLite migration"), "{run:?}");
    assert!(!run.stderr.contains('\x1b'), "{run:?}");
}
