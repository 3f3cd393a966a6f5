//! The `allot` binary against a real server: bootstrap keys on the
//! database, then client commands over HTTP.

use std::process::Command;
use std::sync::Arc;

use allot_server::auth::create_key;
use allot_server::Config;
use allot_store::model::Role;
use allot_store::{Clock, SystemClock};
use serde_json::{json, Value};

fn allot(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_allot"))
        .args(args)
        .env_remove("ALLOT_DATABASE_URL")
        .output()
        .expect("run allot");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Runs `allot` with `RUST_BACKTRACE=1` (as many developer machines have
/// it): its exit code, standard output and standard error.
fn allot_exit(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_allot"))
        .args(args)
        .env_remove("ALLOT_DATABASE_URL")
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run allot");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A failure is one `error:` line (plus field and hint lines), no backtrace,
/// nothing on standard output, and the documented exit code.
fn assert_fails(args: &[&str], code: i32, says: &str) {
    let (exit, stdout, stderr) = allot_exit(args);
    assert_eq!(exit, Some(code), "{args:?}: {stderr}");
    assert!(stdout.is_empty(), "{args:?}: {stdout}");
    assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    assert!(
        stderr.contains(says),
        "{args:?} should say {says:?}: {stderr}"
    );
    assert!(
        !stderr.contains("backtrace") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

fn json_of(text: &str) -> Value {
    let start = text.find('{').expect("json in output");
    serde_json::Deserializer::from_str(&text[start..])
        .into_iter::<Value>()
        .next()
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_case_commands_work_against_a_running_service() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cli.db").display());
    let (ok, out) = allot(&["migrate", "--db", &db]);
    assert!(ok, "{out}");
    let (ok, out) = allot(&["keys", "create", "--role", "manager", "--db", &db]);
    assert!(ok, "{out}");
    let manager = out.trim().lines().last().unwrap().to_string();
    assert!(
        manager.starts_with("allot_"),
        "the key is alone on the last line: {out}"
    );
    let (ok, out) = allot(&["keys", "create", "--role", "customer", "--db", &db]);
    assert!(!ok, "customer keys need an account: {out}");

    let config = Config {
        db: db.clone(),
        listen: "127.0.0.1:0".into(),
        ..Config::default()
    };
    let store = allot_server::open_store(&config).await.unwrap();
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
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{url}{path}"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let acc: Value = post("/v1/accounts", json!({ "name": "Acme" }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let acc = acc["id"].as_str().unwrap().to_string();
    let today = chrono::Utc::now().date_naive();
    let ent: Value = post("/v1/entitlements", json!({ "account_id": acc, "name": "Hours", "unit": "hours", "total": 10,
        "start_date": today.to_string(), "end_date": (today + chrono::Duration::days(30)).to_string(), "rounding": 0.25 }))
        .await.unwrap().json().await.unwrap();
    let ent = ent["id"].as_str().unwrap().to_string();
    post(&format!("/v1/entitlements/{ent}/activate"), json!({}))
        .await
        .unwrap();

    let remote = [
        "--url",
        url.as_str(),
        "--key",
        manager.as_str(),
        "-o",
        "json",
    ];
    let human = ["--url", url.as_str(), "--key", manager.as_str()];
    let (ok, out) = allot(
        &[
            &["cases", "open"][..],
            &remote,
            &["--account", &acc, "--title", "Upgrade"],
        ]
        .concat(),
    );
    assert!(ok, "{out}");
    let case = json_of(&out);
    assert_eq!(case["entitlement_id"], json!(ent));
    let case_id = case["id"].as_str().unwrap().to_string();
    let (ok, out) = allot(
        &[
            &["time", "log"][..],
            &remote,
            &[&case_id, "--minutes", "50", "--note", "call"],
        ]
        .concat(),
    );
    assert!(ok, "{out}");
    assert_eq!(json_of(&out)["entitlement_balance"]["used"], json!(1));
    let (ok, out) = allot(&[&["cases", "resolve"][..], &remote, &[&case_id]].concat());
    assert!(ok, "{out}");
    assert_eq!(json_of(&out)["status"], "resolved");
    let (ok, out) = allot(&[&["cases", "cancel"][..], &remote, &[&case_id]].concat());
    assert!(ok && json_of(&out)["status"] == "cancelled", "{out}");
    let (ok, out) = allot(&[&["cases", "reactivate"][..], &remote, &[&case_id]].concat());
    assert!(ok && json_of(&out)["status"] == "open", "{out}");
    assert_fails(
        &[&["cases", "reactivate"][..], &remote, &[&case_id]].concat(),
        3,
        "(invalid_case_transition)",
    );
    let (ok, out) = allot(&[&["balance"][..], &remote, &[&ent]].concat());
    assert!(ok, "{out}");
    assert_eq!(json_of(&out)["remaining"], json!(9));
    let (ok, out) = allot(
        &[
            &["use"][..],
            &remote,
            &[&ent, "--quantity", "0.5", "--idempotency-key", "u1"],
        ]
        .concat(),
    );
    assert!(ok, "{out}");
    // For people: one sentence per object, an aligned table per list.
    let (ok, out) = allot(&[&["balance"][..], &human, &[&ent]].concat());
    assert!(ok, "{out}");
    let period = format!("period {today} … {}", today + chrono::Duration::days(30));
    assert_eq!(
        out.trim(),
        format!("Hours — 1.5 of 10 hours used, 8.5 remaining · {period} · active")
    );
    let (ok, out) = allot(&[&["use"][..], &human, &[&ent, "--quantity", "0.1"]].concat());
    assert!(ok, "{out}");
    assert_eq!(
        out.trim(),
        format!("recorded 0.25 (usage) · 1.75 of 10 hours used, 8.25 remaining · {period}")
    );
    let (ok, out) = allot(&[&["eligibility"][..], &human, &[&acc]].concat());
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.trim().lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("ENTITLEMENT") && lines[0].contains("  NAME"),
        "{out}"
    );
    assert!(
        lines[1].starts_with(&ent) && lines[1].contains("8.25"),
        "{out}"
    );
    let (ok, out) = allot(&[&["cases", "resolve"][..], &human, &[&case_id]].concat());
    assert!(ok, "{out}");
    assert_eq!(
        out.trim(),
        format!("case {case_id} “Upgrade” · resolved · on {ent} · 1 time entry · 1.75 of 10 hours used, 8.25 remaining")
    );

    // Each kind of failure has its exit code and one clear line.
    assert_fails(
        &[&["use"][..], &remote, &[&ent, "--quantity", "100"]].concat(),
        3,
        "(entitlement_exhausted)\nhint: nothing was recorded",
    );
    assert_fails(
        &[&["balance"][..], &remote, &["ent_nope"]].concat(),
        4,
        "(not_found)",
    );
    assert_fails(
        &[
            "balance",
            "--url",
            url.as_str(),
            "--key",
            "allot_wrong",
            &ent,
        ],
        5,
        "hint: check --key",
    );
    assert_fails(
        &[&["use"][..], &remote, &[&ent, "--quantity", "lots"]].concat(),
        6,
        "\n  quantity: ",
    );
    assert_fails(
        &["balance", "--url", "http://127.0.0.1:1", "--key", "k", &ent],
        7,
        "cannot reach http://127.0.0.1:1",
    );
    let (exit, _, stderr) = allot_exit(&["cases", "frobnicate"]);
    assert_eq!(exit, Some(2), "{stderr}");
    let (ok, help) = allot(&["--help"]);
    assert!(
        ok && help.contains("Exit codes:") && help.contains("3  refused by a rule"),
        "{help}"
    );
    // The rest of the API: JSON output is the API's body; people get tables.
    let run = |args: &[&str]| {
        let (ok, out) = allot(&[args, &remote[..]].concat());
        assert!(ok, "{args:?}: {out}");
        json_of(&out)
    };
    let people = |args: &[&str]| {
        let (ok, out) = allot(&[args, &human[..]].concat());
        assert!(ok, "{args:?}: {out}");
        out
    };
    let site = run(&["accounts", "create", "--name", "Site", "--parent", &acc]);
    assert_eq!(site["parent_id"], json!(acc));
    let site_id = site["id"].as_str().unwrap().to_string();
    let fetched: Value = http
        .get(format!("{url}/v1/accounts/{site_id}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run(&["accounts", "get", &site_id]), fetched);
    let listing = people(&["accounts", "list"]);
    assert!(
        listing.starts_with("ID") && listing.contains(&site_id),
        "{listing}"
    );
    let contact = run(&[
        "contacts",
        "create",
        "--account",
        &site_id,
        "--name",
        "Jane",
    ]);
    assert_eq!(contact["account_id"], json!(site_id));
    let product = run(&["products", "create", "--name", "DB", "--sku", "DB-1"]);
    assert_eq!(product["sku"], "DB-1");
    let home_for_body = tempfile::tempdir().unwrap();
    let body_file = home_for_body.path().join("ent.json");
    std::fs::write(
        &body_file,
        json!({ "unit": "visits", "total": 4, "restrict": true }).to_string(),
    )
    .unwrap();
    let visits = run(&[
        "entitlements",
        "create",
        "--account",
        &site_id,
        "--name",
        "Visits",
        "--start",
        &today.to_string(),
        "--end",
        &(today + chrono::Duration::days(90)).to_string(),
        "--from-file",
        body_file.to_str().unwrap(),
    ]);
    assert_eq!(
        (visits["unit"].clone(), visits["status"].clone()),
        (json!("visits"), json!("draft"))
    );
    let visits_id = visits["id"].as_str().unwrap().to_string();
    let edited = run(&["entitlements", "edit", &visits_id, "--total", "5"]);
    assert_eq!(edited["total"], json!(5));
    assert_eq!(
        run(&["entitlements", "activate", &visits_id])["status"],
        "active"
    );
    let held = run(&["reservations", "hold", &visits_id, "--quantity", "2"]);
    let reservation = held["reservation"]["id"].as_str().unwrap().to_string();
    let released = people(&["reservations", "release", &reservation]);
    assert!(
        released.starts_with(&format!("reservation {reservation} · released 2")),
        "{released}"
    );
    let adjusted = run(&[
        "adjust",
        &visits_id,
        "--quantity",
        "1",
        "--reason",
        "visit on paper",
    ]);
    assert_eq!(adjusted["balance"]["used"], json!(1));
    let ledger = people(&["usage", "list", &visits_id]);
    assert!(
        ledger.lines().count() == 2 && ledger.contains("adjustment"),
        "{ledger}"
    );
    let listed = people(&["entitlements", "list", "--account", &site_id]);
    assert!(
        listed.contains(&visits_id) && listed.contains("active"),
        "{listed}"
    );
    let trail = people(&["audit", "--target-id", &visits_id]);
    assert!(trail.contains("entitlement.activate"), "{trail}");
    let as_admin = ["--url", url.as_str(), "--key", admin.as_str()];
    let (ok, out) = allot(&[&["api-keys", "create", "--role", "agent"][..], &as_admin].concat());
    assert!(ok, "{out}");
    let secret = out.trim().lines().last().unwrap().to_string();
    assert!(
        secret.starts_with("allot_"),
        "the secret is alone on the last line: {out}"
    );
    assert_fails(
        &[&["api-keys", "list"][..], &human].concat(),
        5,
        "hint: this key's role may not do this",
    );

    // `allot login` keeps URL and key (0600); client commands then need neither.
    let home = tempfile::tempdir().unwrap();
    let logged = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_allot"))
            .args(args)
            .env("ALLOT_CONFIG_DIR", home.path())
            .env_remove("ALLOT_URL")
            .env_remove("ALLOT_KEY")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let stored = home.path().join("credentials.toml");
    let (code, out) = logged(&["login", "--url", &url], "allot_wrong\n");
    assert_eq!(code, Some(5), "{out}");
    assert!(!stored.exists(), "a refused key is not kept");
    let (code, out) = logged(&["login", "--url", &url], &format!("{manager}\n"));
    assert_eq!(code, Some(0), "{out}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&stored).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let (code, out) = logged(&["balance", &ent, "-o", "json"], "");
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(json_of(&out)["entitlement_id"], json!(ent));
    let (code, out) = logged(&["logout"], "");
    assert!(code == Some(0) && !stored.exists(), "{out}");
    let (code, out) = logged(&["balance", &ent], "");
    assert_eq!(code, Some(5), "{out}");
    assert!(
        out.contains("no API key") && out.contains("allot login"),
        "{out}"
    );

    let (ok, out) = allot(&["config", "--db", "postgres://allot:hunter2@db/allot"]);
    assert!(
        ok && out.contains("allot:***@db") && !out.contains("hunter2"),
        "{out}"
    );
}

/// A database password never reaches the output, even when connecting fails.
#[test]
fn database_passwords_never_reach_the_logs() {
    let (ok, out) = allot(&[
        "migrate",
        "--db",
        "postgres://allot:s3cr3t-pw@127.0.0.1:1/allot",
    ]);
    assert!(!ok);
    assert!(!out.contains("s3cr3t-pw"), "{out}");
}

#[test]
fn completions_and_the_manual_page_are_printed() {
    let (ok, bash) = allot(&["completions", "bash"]);
    assert!(
        ok && bash.contains("_allot()") && bash.contains("complete -F _allot"),
        "{bash}"
    );
    let (ok, fish) = allot(&["completions", "fish"]);
    assert!(ok && fish.contains("complete -c allot"), "{fish}");
    let (ok, page) = allot(&["man"]);
    assert!(
        ok && page.contains(".TH allot 1") && page.contains("Exit codes"),
        "{page}"
    );
    let (exit, _, stderr) = allot_exit(&["completions", "cmd.exe"]);
    assert_eq!(exit, Some(2), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_commands_print_tables_csv_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        db: format!("sqlite://{}", dir.path().join("report.db").display()),
        listen: "127.0.0.1:0".into(),
        ..Config::default()
    };
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
    let http = reqwest::Client::new();
    let post = |path: String, body: Value| {
        http.post(format!("{url}{path}"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let id = |v: Value| v["id"].as_str().unwrap().to_string();
    let acc = id(post("/v1/accounts".into(), json!({ "name": "Acme" }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap());
    let today = chrono::Utc::now().date_naive();
    let ent = id(post("/v1/entitlements".into(), json!({ "account_id": acc, "name": "Cases", "unit": "cases", "total": 10,
        "start_date": today.to_string(), "end_date": (today + chrono::Duration::days(20)).to_string() }))
        .await.unwrap().json().await.unwrap());
    post(format!("/v1/entitlements/{ent}/activate"), json!({}))
        .await
        .unwrap();
    post(
        format!("/v1/entitlements/{ent}/usage"),
        json!({ "quantity": 9 }),
    )
    .await
    .unwrap();

    let remote = ["--url", url.as_str(), "--key", admin.as_str()];
    let (ok, out) = allot(&[&["report", "approaching-limit"][..], &remote].concat());
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.trim().lines().collect();
    assert!(
        lines[0].starts_with("ENTITLEMENT_ID") && lines[0].contains("  ACCOUNT_ID"),
        "{out}"
    );
    assert!(
        lines[1].starts_with(&ent) && lines[1].contains("approaching"),
        "{out}"
    );
    let (ok, out) = allot(&[&["report", "expiring", "-o", "csv"][..], &remote].concat());
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.trim().lines().collect();
    assert_eq!(
        lines[0],
        "entitlement_id,account_id,name,unit,end_date,days_left,auto_renew,total,used,unused"
    );
    assert!(
        lines[1].starts_with(&format!("{ent},{acc},Cases,cases,")),
        "{out}"
    );
    assert!(lines[1].ends_with(",20,false,10,9,1"), "{out}");
    let (ok, out) = allot(&[&["report", "forecast", "-o", "json"][..], &remote].concat());
    assert!(ok, "{out}");
    assert_eq!(json_of(&out)["items"][0]["entitlement_id"], json!(ent));
    for report in ["consumption", "unused"] {
        let (ok, out) = allot(&[&["report", report][..], &remote].concat());
        assert!(ok && out.starts_with("ENTITLEMENT_ID"), "{report}: {out}");
    }
    assert_fails(
        &[
            &["report", "expiring", "--within-days", "9999"][..],
            &remote,
        ]
        .concat(),
        6,
        "within_days",
    );
}
