//! The real `allot serve` on a fresh database of either backend: its first
//! start makes an admin key, `allot keys` makes and revokes keys on the
//! database itself, `allot users` makes people's accounts (the password
//! from standard input) that sign in to the dashboard, the client commands
//! work against it, and SIGTERM stops it cleanly.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{allot, on_both_backends, Database, Run};

/// `allot ARGS` with `input` on its standard input.
async fn allot_fed(args: &[&str], input: &str, dir: &std::path::Path) -> Run {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_allot"))
        .args(args)
        .env("ALLOT_CONFIG_DIR", dir)
        .env("ALLOT_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run allot");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Signs in to the dashboard with an email and a password: the status of
/// the form's answer (303 when signed in).
async fn dashboard_sign_in(service: &str, email: &str, password: &str) -> u16 {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = http.get(format!("{service}/sign-in")).send().await.unwrap();
    let cookie = form.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = form.text().await.unwrap();
    let token = html.split(r#"name="csrf" value=""#).nth(1).unwrap();
    let token = token.split('"').next().unwrap();
    http.post(format!("{service}/sign-in"))
        .header("cookie", cookie)
        .form(&[("csrf", token), ("email", email), ("password", password)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

on_both_backends!(fresh_database => serve_keys_and_clients_from_scratch);

async fn serve_keys_and_clients_from_scratch(db: Database) {
    let dir = db.dir.path();
    let url = db.url.as_str();
    // What migrations ran is news to an operator, not to this test.
    let quiet = [("ALLOT_LOG", "warn")];
    let migrate = ["migrate", "--db", url];
    let said = allot(&migrate, &quiet, dir).await.ok(&migrate);
    assert!(said.starts_with("migrated "), "{said}");

    let mut serve = tokio::process::Command::new(env!("CARGO_BIN_EXE_allot"))
        .args(["serve", "--db", url, "--listen", "127.0.0.1:0"])
        .env("ALLOT_LOG", "warn")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run allot serve");
    let mut lines = BufReader::new(serve.stdout.take().unwrap()).lines();
    let (mut admin, mut service) = (None, None);
    let started = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("allot_") {
                admin = Some(line);
            } else if let Some(at) = line.strip_prefix("allot listening on ") {
                service = Some(at.to_string());
                break;
            }
        }
    })
    .await;
    assert!(started.is_ok(), "allot serve did not start");
    let admin = admin.expect("the first start prints an admin key");
    let service = service.expect("the URL");

    let as_admin = [
        ("ALLOT_URL", service.as_str()),
        ("ALLOT_KEY", admin.as_str()),
    ];
    let create = ["accounts", "create", "--name", "Acme", "-o", "json"];
    let acme = allot(&create, &as_admin, dir).await.json(&create);
    let get = [
        "accounts",
        "get",
        acme["id"].as_str().unwrap(),
        "-o",
        "json",
    ];
    assert_eq!(allot(&get, &as_admin, dir).await.json(&get), acme);

    let create = [
        "keys", "create", "--role", "manager", "--name", "desk", "--db", url,
    ];
    let out = allot(&create, &quiet, dir).await.ok(&create);
    let secret = out.trim().lines().last().unwrap().to_string();
    assert!(
        secret.starts_with("allot_"),
        "the key is alone on the last line: {out}"
    );
    let id = out.split_whitespace().nth(3).unwrap().to_string();
    assert!(
        out.starts_with(&format!("created manager key {id}")),
        "{out}"
    );
    let as_manager = [
        ("ALLOT_URL", service.as_str()),
        ("ALLOT_KEY", secret.as_str()),
    ];
    let list = ["accounts", "list", "-o", "json"];
    let listed = allot(&list, &as_manager, dir).await.json(&list);
    assert_eq!(listed["items"][0], acme);

    let customer = ["keys", "create", "--role", "customer", "--db", url];
    let run = allot(&customer, &quiet, dir).await;
    run.failed(&customer, 1);
    assert!(
        run.stderr.starts_with("error: --account is required"),
        "{run:?}"
    );
    let keys = ["keys", "list", "--db", url];
    let out = allot(&keys, &quiet, dir).await.ok(&keys);
    assert!(
        out.lines().any(|l| l.starts_with(&format!("{id} manager"))),
        "{out}"
    );
    let revoke = ["keys", "revoke", &id, "--db", url];
    assert_eq!(
        allot(&revoke, &quiet, dir).await.ok(&revoke),
        format!("revoked {id}\n")
    );
    allot(&list, &as_manager, dir).await.failed(&list, 5);

    // A person: the password from standard input, never a flag.
    let user = [
        "users",
        "create",
        "--email",
        "Ana@Example.com",
        "--role",
        "manager",
        "--db",
        url,
    ];
    let out = allot_fed(&user, "a long pass phrase\n", dir)
        .await
        .ok(&user);
    assert!(out.starts_with("created manager user usr_"), "{out}");
    assert!(!out.contains("a long pass phrase"), "{out}");
    let user_id = out.split_whitespace().nth(3).unwrap().to_string();
    let short = [
        "users",
        "create",
        "--email",
        "bo@example.com",
        "--role",
        "agent",
        "--db",
        url,
    ];
    let run = allot_fed(&short, "short\n", dir).await;
    run.failed(&short, 1);
    assert!(run.stderr.contains("password must be"), "{run:?}");
    let twice = allot_fed(&user, "another long phrase\n", dir).await;
    twice.failed(&user, 1);
    assert_eq!(
        dashboard_sign_in(&service, "ana@example.com", "a long pass phrase").await,
        303
    );
    assert_eq!(
        dashboard_sign_in(&service, "ana@example.com", "a wrong pass phrase").await,
        401
    );
    let users = ["users", "list", "--db", url];
    let out = allot(&users, &quiet, dir).await.ok(&users);
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("{user_id} Ana@Example.com manager created"))),
        "{out}"
    );
    let disable = ["users", "disable", &user_id, "--db", url];
    assert_eq!(
        allot(&disable, &quiet, dir).await.ok(&disable),
        format!("disabled {user_id}\n")
    );
    assert_eq!(
        dashboard_sign_in(&service, "ana@example.com", "a long pass phrase").await,
        401
    );

    let pid = serve.id().expect("serve is running").to_string();
    let sent = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(sent.success());
    let stopped = tokio::time::timeout(Duration::from_secs(30), serve.wait_with_output())
        .await
        .expect("allot serve stops on SIGTERM")
        .unwrap();
    assert_eq!(stopped.status.code(), Some(0), "{stopped:?}");
}
