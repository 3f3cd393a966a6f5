//! Each documented exit code, produced by a real case against a real
//! server: one `error:` line (plus fields and a hint), nothing on standard
//! output, never a backtrace, whatever `RUST_BACKTRACE` says.

use reqwest::Method;
use serde_json::json;

use crate::common::{allot, on_both_backends, Service};

on_both_backends!(each_failure_has_its_exit_code);

async fn each_failure_has_its_exit_code(service: Service) {
    let (_, account) = service
        .api(
            Method::POST,
            "/v1/accounts",
            Some(json!({ "name": "Acme" })),
        )
        .await;
    let acc = account["id"].as_str().unwrap().to_string();
    let body = json!({ "account_id": acc, "name": "Cases", "unit": "cases", "total": 1,
        "restrict": true, "start_date": "2026-01-01", "end_date": "2026-12-31" });
    let (_, created) = service
        .api(Method::POST, "/v1/entitlements", Some(body))
        .await;
    let ent = created["id"].as_str().unwrap().to_string();
    let activate = ["entitlements", "activate", &ent];
    service.allot(&activate).await.ok(&activate);

    let ent = ent.as_str();

    // 1: anything else, e.g. a body file that is not there.
    fails(
        &service,
        &[
            "entitlements",
            "create",
            "--from-file",
            "/nonexistent/body.json",
        ],
        1,
        "cannot read /nonexistent/body.json",
    )
    .await;
    // 3: refused by a rule (409), with what to do about it.
    let used = ["use", ent, "--quantity", "1"];
    service.allot(&used).await.ok(&used);
    fails(
        &service,
        &["use", ent, "--quantity", "1"],
        3,
        "(entitlement_exhausted)\nhint: nothing was recorded",
    )
    .await;
    fails(
        &service,
        &["entitlements", "renew", ent],
        3,
        "(invalid_transition)",
    )
    .await;
    // 4: not found.
    fails(&service, &["balance", "ent_nope"], 4, "(not_found)").await;
    fails(
        &service,
        &["entitlements", "get", "ent_00000000000000000000000000"],
        4,
        "(not_found)",
    )
    .await;
    // 5: no key, a wrong key, a key whose role may not.
    let no_key = allot(
        &["balance", ent],
        &[("ALLOT_URL", &service.url)],
        service.config_dir.path(),
    )
    .await;
    no_key.failed(&["balance"], 5);
    assert!(
        no_key
            .stderr
            .contains("hint: pass --key, set ALLOT_KEY, or run `allot login`"),
        "{no_key:?}"
    );
    let wrong = service.allot_as("allot_wrong", &["balance", ent]).await;
    wrong.failed(&["balance"], 5);
    assert!(wrong.stderr.contains("hint: check --key"), "{wrong:?}");
    let agent = service.key("agent", None).await;
    let forbidden = service.allot_as(&agent, &["api-keys", "list"]).await;
    forbidden.failed(&["api-keys", "list"], 5);
    assert!(
        forbidden
            .stderr
            .contains("hint: this key's role may not do this"),
        "{forbidden:?}"
    );
    // 6: invalid input, each field named on a line of its own.
    fails(
        &service,
        &["use", ent, "--quantity", "lots"],
        6,
        "\n  quantity: ",
    )
    .await;
    let create = [
        "entitlements",
        "create",
        "--account",
        &acc,
        "--name",
        "Visits",
        "--unit",
        "visits",
        "--total",
        "4",
        "--period",
        "fortnight",
        "--start",
        "2026-01-01",
        "--end",
        "2026-12-31",
    ];
    fails(&service, &create, 6, "\n  period: ").await;
    fails(
        &service,
        &["accounts", "list", "--limit", "0"],
        6,
        "\n  limit: ",
    )
    .await;
    // 7: nothing answers.
    let unreachable = service
        .allot(&["balance", ent, "--url", "http://127.0.0.1:1"])
        .await;
    unreachable.failed(&["balance"], 7);
    assert!(
        unreachable
            .stderr
            .contains("cannot reach http://127.0.0.1:1"),
        "{unreachable:?}"
    );
    // 2: usage errors are clap's, on standard error, with the same code.
    for args in [
        &["cases", "frobnicate"][..],
        &["use", ent],
        &["accounts", "list", "-o", "yaml"],
    ] {
        let run = service.allot(args).await;
        assert_eq!(run.code, Some(2), "allot {args:?}: {run:?}");
        assert!(
            run.stdout.is_empty() && run.stderr.starts_with("error: "),
            "{run:?}"
        );
        crate::common::assert_no_backtrace(&run.stderr);
    }
}

async fn fails(service: &Service, args: &[&str], code: i32, says: &str) {
    let run = service.allot(args).await;
    run.failed(args, code);
    assert!(
        run.stderr.contains(says),
        "allot {args:?} should say {says:?}: {run:?}"
    );
}
