//! What every client command prints for a person, as snapshots of a
//! terminal session (`snapshots/*.snap`).

use crate::common::{on_both_backends, Service};
use crate::transcript::{id_in, Transcript};

on_both_backends!(
    parties_and_entitlements,
    usage_and_cases,
    keys_and_the_audit_trail
);

async fn parties_and_entitlements(service: Service) {
    let mut t = Transcript::new(&service);
    let acme = id_in(
        &t.ok(&["accounts", "create", "--name", "Acme"]).await,
        "acc",
    );
    t.ok(&[
        "accounts",
        "create",
        "--name",
        "Acme Berlin",
        "--parent",
        &acme,
    ])
    .await;
    t.ok(&["accounts", "list"]).await;
    t.ok(&["accounts", "get", &acme]).await;
    let jane = id_in(
        &t.ok(&[
            "contacts",
            "create",
            "--account",
            &acme,
            "--name",
            "Jane",
            "--email",
            "jane@acme.example",
        ])
        .await,
        "con",
    );
    t.ok(&["contacts", "list", "--account", &acme]).await;
    t.ok(&["contacts", "get", &jane]).await;
    let sql = id_in(
        &t.ok(&[
            "products",
            "create",
            "--name",
            "SQL Server",
            "--sku",
            "SQL-ENT",
        ])
        .await,
        "prd",
    );
    t.ok(&["products", "list"]).await;
    t.ok(&["products", "get", &sql]).await;
    let premier = id_in(
        &t.ok(&[
            "entitlements",
            "create",
            "--account",
            &acme,
            "--name",
            "Premier cases",
            "--unit",
            "cases",
            "--total",
            "10",
            "--period",
            "quarter",
            "--start",
            "2026-01-01",
            "--end",
            "2026-12-31",
            "--restrict",
            "true",
        ])
        .await,
        "ent",
    );
    t.ok(&["entitlements", "edit", &premier, "--rollover", "2"])
        .await;
    t.ok(&["entitlements", "activate", &premier]).await;
    t.ok(&["entitlements", "get", &premier]).await;
    t.ok(&["balance", &premier]).await;
    t.ok(&["entitlements", "list", "--account", &acme]).await;
    t.ok(&["entitlements", "deactivate", &premier]).await;
    t.ok(&["entitlements", "activate", &premier]).await;
    t.ok(&["entitlements", "cancel", &premier]).await;
    t.ok(&["entitlements", "renew", &premier]).await;
    t.ok(&["entitlements", "list", "--status", "draft"]).await;
    t.assert_snapshot("parties_and_entitlements");
}

async fn usage_and_cases(service: Service) {
    let mut t = Transcript::new(&service);
    let acme = id_in(
        &t.ok(&["accounts", "create", "--name", "Acme"]).await,
        "acc",
    );
    let cases = id_in(
        &t.ok(&[
            "entitlements",
            "create",
            "--account",
            &acme,
            "--name",
            "Premier cases",
            "--unit",
            "cases",
            "--total",
            "3",
            "--start",
            "2026-01-01",
            "--end",
            "2026-12-31",
            "--restrict",
            "true",
        ])
        .await,
        "ent",
    );
    t.ok(&["entitlements", "activate", &cases]).await;
    t.ok(&["balance", &cases]).await;
    t.ok(&["use", &cases, "--quantity", "1", "--reference", "WO-4711"])
        .await;
    t.ok(&[
        "adjust",
        &cases,
        "--quantity",
        "-1",
        "--reason",
        "counted twice",
    ])
    .await;
    let held = t
        .ok(&["reservations", "hold", &cases, "--quantity", "2"])
        .await;
    t.ok(&[
        "reservations",
        "commit",
        &id_in(&held, "res"),
        "--quantity",
        "1",
    ])
    .await;
    let held = t
        .ok(&["reservations", "hold", &cases, "--quantity", "1"])
        .await;
    t.ok(&["reservations", "release", &id_in(&held, "res")])
        .await;
    t.ok(&["use", &cases, "--quantity", "2"]).await;
    t.fails(&["use", &cases, "--quantity", "1"], 3).await;
    t.ok(&["usage", "list", &cases]).await;
    t.ok(&["balance", &cases]).await;

    let hours = id_in(
        &t.ok(&[
            "entitlements",
            "create",
            "--account",
            &acme,
            "--name",
            "Support hours",
            "--unit",
            "hours",
            "--total",
            "20",
            "--start",
            "2026-01-01",
            "--end",
            "2026-12-31",
            "--restrict",
            "false",
        ])
        .await,
        "ent",
    );
    t.ok(&["entitlements", "activate", &hours]).await;
    t.ok(&["eligibility", &acme]).await;
    let case = id_in(
        &t.ok(&[
            "cases",
            "open",
            "--account",
            &acme,
            "--title",
            "Printer down",
            "--entitlement",
            &hours,
        ])
        .await,
        "cas",
    );
    t.ok(&["time", "log", &case, "--minutes", "90", "--note", "call"])
        .await;
    t.ok(&["cases", "resolve", &case]).await;
    t.ok(&["cases", "reactivate", &case]).await;
    t.ok(&["cases", "cancel", &case]).await;
    t.ok(&["balance", &hours]).await;
    t.assert_snapshot("usage_and_cases");
}

async fn keys_and_the_audit_trail(service: Service) {
    let mut t = Transcript::new(&service);
    let acme = id_in(
        &t.ok(&["accounts", "create", "--name", "Acme"]).await,
        "acc",
    );
    let created = t
        .ok(&[
            "api-keys", "create", "--role", "agent", "--name", "helpdesk",
        ])
        .await;
    let agent = created.trim().lines().last().unwrap().to_string();
    t.ok(&[
        "api-keys",
        "create",
        "--role",
        "customer",
        "--account",
        &acme,
    ])
    .await;
    t.ok(&["api-keys", "list"]).await;
    t.with_key(&agent);
    t.ok(&["accounts", "get", &acme]).await;
    t.fails(&["api-keys", "list"], 5).await;
    t.with_key(&service.admin);
    t.ok(&["api-keys", "revoke", &id_in(&created, "key")]).await;
    t.with_key(&agent);
    t.fails(&["accounts", "get", &acme], 5).await;
    t.with_key(&service.admin);
    t.ok(&["audit", "--action", "api_key.create"]).await;
    t.ok(&["audit", "--target-id", &acme]).await;
    t.assert_snapshot("keys_and_the_audit_trail");
}
