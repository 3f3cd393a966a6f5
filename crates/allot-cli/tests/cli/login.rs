//! `allot login` keeps URL and key in a file only its user can read; the
//! client commands then need neither; flags and `ALLOT_*` still win.

use std::os::unix::fs::PermissionsExt;

use tokio::io::AsyncWriteExt;

use crate::common::{allot, on_both_backends, Run, Service};

on_both_backends!(login_keeps_a_private_file);

/// `allot ARGS` with nothing but the config directory, `stdin` piped in.
async fn logged(service: &Service, args: &[&str], stdin: &str) -> Run {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_allot"))
        .args(args)
        .env("ALLOT_CONFIG_DIR", service.config_dir.path())
        .env_remove("ALLOT_URL")
        .env_remove("ALLOT_KEY")
        .env("RUST_BACKTRACE", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run allot");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn login_keeps_a_private_file(service: Service) {
    let stored = service.config_dir.path().join("credentials.toml");
    let login = ["login", "--url", service.url.as_str()];
    logged(&service, &login, "allot_wrong\n")
        .await
        .failed(&login, 5);
    assert!(!stored.exists(), "a refused key is not kept");

    let said = logged(&service, &login, &format!("{}\n", service.admin))
        .await
        .ok(&login);
    assert!(
        said.starts_with(&format!("logged in to {}", service.url)),
        "{said}"
    );
    let mode = std::fs::metadata(&stored).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let kept = std::fs::read_to_string(&stored).unwrap();
    assert!(
        kept.contains(&service.admin) && kept.contains(&service.url),
        "{kept}"
    );

    let list = ["accounts", "list", "-o", "json"];
    let listed = logged(&service, &list, "").await.json(&list);
    assert_eq!(listed, service.get("/v1/accounts").await);
    // A flag or the environment still wins over what was kept.
    let elsewhere = ["accounts", "list", "--url", "http://127.0.0.1:1"];
    logged(&service, &elsewhere, "").await.failed(&elsewhere, 7);
    let env = [("ALLOT_KEY", "allot_wrong")];
    allot(&["accounts", "list"], &env, service.config_dir.path())
        .await
        .failed(&["accounts", "list"], 5);

    let said = logged(&service, &["logout"], "").await.ok(&["logout"]);
    assert_eq!(said, "logged out\n");
    assert!(!stored.exists());
    let said = logged(&service, &["logout"], "").await.ok(&["logout"]);
    assert_eq!(said, "not logged in\n");
    let run = logged(&service, &["accounts", "list"], "").await;
    run.failed(&["accounts", "list"], 5);
    assert!(
        run.stderr.contains("no API key") && run.stderr.contains("allot login"),
        "{run:?}"
    );
}
