//! `allot keys` works on the database itself (before any key exists), on
//! either backend; the key it prints then works over the API.

use crate::common::{allot, on_both_backends, Service};

on_both_backends!(keys_are_made_on_the_database);

async fn keys_are_made_on_the_database(service: Service) {
    let dir = service.config_dir.path();
    let db = service.db.as_str();
    let create = [
        "keys", "create", "--role", "manager", "--name", "desk", "--db", db,
    ];
    let out = allot(&create, &[], dir).await.ok(&create);
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

    let list = ["accounts", "list", "-o", "json"];
    let listed = service.allot_as(&secret, &list).await.json(&list);
    assert_eq!(listed, service.get("/v1/accounts").await);

    let customer = ["keys", "create", "--role", "customer", "--db", db];
    let run = allot(&customer, &[], dir).await;
    assert_eq!(
        run.code,
        Some(1),
        "a customer key needs an account: {run:?}"
    );
    assert!(
        run.stderr.starts_with("error: --account is required"),
        "{run:?}"
    );

    let keys = ["keys", "list", "--db", db];
    let out = allot(&keys, &[], dir).await.ok(&keys);
    assert!(
        out.lines().any(|l| l.starts_with(&format!("{id} manager"))),
        "{out}"
    );
    let revoke = ["keys", "revoke", &id, "--db", db];
    assert_eq!(
        allot(&revoke, &[], dir).await.ok(&revoke),
        format!("revoked {id}\n")
    );
    service.allot_as(&secret, &list).await.failed(&list, 5);
}
