//! `allot software …` and `allot installations import` against a real
//! server: models, rights, allocation, a CSV import and reconciliation.

use std::process::Command;
use std::sync::Arc;

use allot_server::auth::create_key;
use allot_server::Config;
use allot_store::model::Role;
use allot_store::{Clock, SystemClock};
use serde_json::Value;

fn allot(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_allot"))
        .args(args)
        .env_remove("ALLOT_DATABASE_URL")
        .output()
        .expect("run allot");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Runs a command that must succeed with `-o json`, and returns its body.
fn json(remote: &[&str], args: &[&str]) -> Value {
    let (code, out, err) = allot(&[args, remote, &["-o", "json"]].concat());
    assert_eq!(code, Some(0), "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn software_commands_work_against_a_running_service() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cli.db").display());
    let config = Config {
        db,
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
    let remote = ["--url", url.as_str(), "--key", admin.as_str()];

    let model = json(
        &remote,
        &[
            "software",
            "models",
            "create",
            "--publisher",
            "Microsoft",
            "--product",
            "Visio",
        ],
    );
    let model = model["id"].as_str().unwrap().to_string();
    let rights = json(
        &remote,
        &[
            "software",
            "entitlements",
            "create",
            "--model",
            &model,
            "--metric",
            "per_device",
            "--type",
            "perpetual",
            "--rights-per-pack",
            "1",
            "--packs",
            "2",
            "--unit-cost",
            "10",
        ],
    );
    assert_eq!(rights["purchased_rights"], 2);
    let id = rights["id"].as_str().unwrap().to_string();
    let published = json(&remote, &["software", "entitlements", "publish", &id]);
    assert_eq!(published["state"], "in_use");
    let allocated = json(&remote, &["software", "allocate", &id, "--device", "pc-1"]);
    assert_eq!(allocated["entitlement"]["allocations_available"], 1);
    let (code, _, err) = allot(
        &[
            &[
                "software",
                "allocate",
                &id,
                "--device",
                "pc-2",
                "--quantity",
                "2",
            ][..],
            &remote,
        ]
        .concat(),
    );
    assert_eq!(code, Some(3), "a refusal by a rule exits 3: {err}");
    assert!(err.contains("rights_exhausted"), "{err}");

    let csv = dir.path().join("found.csv");
    let mut text = String::from("software_model_id,device,user,cores,seen_at\n");
    let seen = chrono::Utc::now().to_rfc3339();
    for n in 0..7_000 {
        text.push_str(&format!("{model},pc-{n},,,{seen}\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let imported = json(&remote, &["installations", "import", csv.to_str().unwrap()]);
    assert_eq!(
        imported["recorded"], 7_000,
        "sent in chunks, every row recorded"
    );
    let reconciled = json(&remote, &["software", "reconcile", "--model", &model]);
    let item = &reconciled["items"][0];
    assert_eq!(
        (item["status"].clone(), item["shortfall"].clone()),
        ("under_licensed".into(), 6_998.into())
    );
    let (code, out, _) = allot(&[&["software", "reconcile"][..], &remote].concat());
    assert_eq!(code, Some(0));
    assert!(
        out.contains("under_licensed") && out.contains("SHORTFALL"),
        "{out}"
    );
    running.shutdown(std::time::Duration::from_secs(5)).await;
}
