//! Software entitlements over HTTP: the seed example, allocations and
//! their refusals, 64 clients on one entitlement, retire, upgrades, keys,
//! installations and reconciliation statuses.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{Answer, TestApp};

crate::on_both_backends!(
    the_seed_example_costs_200_and_spends_100_this_month,
    rights_come_from_packs_and_active_never_exceeds_purchased,
    allocations_stop_at_the_rights_naming_what_is_available,
    concurrent_allocations_never_exceed_the_rights,
    retiring_keeps_allocations_but_allocates_nothing_more,
    upgrades_move_rights_in_one_transaction,
    license_keys_are_unique_and_flag_their_allocation,
    reconciliation_reports_each_status_and_keeps_history,
    downgrade_rights_and_enterprise_agreements_cover_older_installs,
    installations_arrive_as_csv_and_stale_ones_stop_counting,
    models_and_entitlements_are_listed_read_and_edited,
    turning_under_licensed_is_an_event_and_reconciliation_runs_on_schedule,
);

impl TestApp {
    pub async fn software_model(&self, product: &str, version: &str) -> String {
        let a = self
            .post(
                "/v1/software-models",
                json!({ "publisher": "Microsoft", "product": product, "version": version }),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
        a.id()
    }

    /// A software entitlement on `model` with `extra` fields merged in.
    pub async fn software_entitlement(&self, model: &str, extra: Value) -> Answer {
        let mut body = json!({
            "software_model_id": model, "license_metric": "per_device", "license_type": "perpetual",
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.post("/v1/software-entitlements", body).await
    }

    /// A published entitlement of `rights` per-device rights on `model`.
    pub async fn rights_in_use(&self, model: &str, rights: i64, extra: Value) -> String {
        let mut extra = extra;
        extra["purchased_rights"] = json!(rights);
        let a = self.software_entitlement(model, extra).await;
        assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
        let id = a.id();
        let published = self
            .post(
                &format!("/v1/software-entitlements/{id}/publish"),
                json!({}),
            )
            .await;
        assert_eq!(published.status, StatusCode::OK, "{:?}", published.body);
        id
    }

    pub async fn allocate(&self, id: &str, body: Value) -> Answer {
        self.post(&format!("/v1/software-entitlements/{id}/allocations"), body)
            .await
    }
}

async fn the_seed_example_costs_200_and_spends_100_this_month(app: TestApp) {
    let model = app.software_model("API units", "2026").await;
    let a = app
        .software_entitlement(
            &model,
            json!({
                "license_metric": "consumption", "license_type": "subscription",
                "purchased_rights": 100, "unit_cost": "1.00", "currency": "USD",
                "subscription_period": "monthly", "start_date": "2026-06-01", "end_date": "2026-07-31"
            }),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    assert_eq!(a.body["total_cost"], json!(200));
    assert_eq!(a.body["current_period_spend"], json!(100));
    assert_eq!(a.body["state"], "build");
    assert_eq!(a.body["active_rights"], json!(100));
    assert_eq!(a.body["allocations_available"], json!(100));
    let id = a.id();
    app.post(
        &format!("/v1/software-entitlements/{id}/publish"),
        json!({}),
    )
    .await;
    app.clock.advance(chrono::Duration::days(47));
    let later = app.get(&format!("/v1/software-entitlements/{id}")).await;
    assert_eq!(
        later.body["state"], "retired",
        "a subscription follows its dates"
    );
    assert_eq!(later.body["current_period_spend"], json!(0));
    assert_eq!(later.body["total_cost"], json!(200));
}

async fn rights_come_from_packs_and_active_never_exceeds_purchased(app: TestApp) {
    let model = app.software_model("SQL Server", "2022").await;
    let packs = json!({ "license_metric": "per_core", "rights_per_pack": 2, "number_of_packs": 8 });
    let a = app.software_entitlement(&model, packs.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    assert_eq!(a.body["purchased_rights"], json!(16));
    let mut mismatch = packs.clone();
    mismatch["purchased_rights"] = json!(15);
    let a = app.software_entitlement(&model, mismatch).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        a.body["error"]["details"]["fields"][0]["field"],
        "purchased_rights"
    );
    let a = app
        .software_entitlement(&model, json!({ "purchased_rights": 5, "active_rights": 6 }))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        a.body["error"]["details"]["fields"][0]["field"],
        "active_rights"
    );
    let a = app
        .software_entitlement("swm_missing", json!({ "purchased_rights": 5 }))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        a.body["error"]["details"]["fields"][0]["field"],
        "software_model_id"
    );
    let a = app
        .software_entitlement(&model, json!({ "license_metric": "per_galaxy" }))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn allocations_stop_at_the_rights_naming_what_is_available(app: TestApp) {
    let model = app.software_model("Office", "2021").await;
    let draft = app
        .software_entitlement(&model, json!({ "purchased_rights": 5 }))
        .await
        .id();
    let a = app
        .allocate(&draft, json!({ "user": "ann", "quantity": 1 }))
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::CONFLICT, "not_published")
    );
    let id = app.rights_in_use(&model, 5, json!({})).await;
    let first = app
        .allocate(&id, json!({ "device": "laptop-1", "quantity": 3 }))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    assert_eq!(first.body["entitlement"]["allocations_available"], json!(2));
    assert_eq!(first.body["allocation"]["device"], "laptop-1");
    let refused = app
        .allocate(&id, json!({ "device": "laptop-2", "quantity": 3 }))
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, "rights_exhausted")
    );
    let details = &refused.body["error"]["details"];
    assert_eq!(details["entitlement_id"], json!(id));
    assert_eq!(
        (details["available"].clone(), details["requested"].clone()),
        (json!(2), json!(3))
    );
    let nobody = app.allocate(&id, json!({ "quantity": 1 })).await;
    assert_eq!(nobody.status, StatusCode::UNPROCESSABLE_ENTITY);
    let allocation = first.id();
    let path = format!("/v1/software-entitlements/{id}/allocations/{allocation}");
    let freed = app
        .call(Method::DELETE, &path, Some(&app.admin), None, None)
        .await;
    assert_eq!(freed.status, StatusCode::OK, "{:?}", freed.body);
    assert_eq!(freed.body["allocations_available"], json!(5));
    let again = app
        .call(Method::DELETE, &path, Some(&app.admin), None, None)
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let listed = app
        .get(&format!("/v1/software-entitlements/{id}/allocations"))
        .await;
    assert_eq!(listed.body["items"], json!([]));
    let audit = app.get(&format!("/v1/audit?target_id={allocation}")).await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["software_allocation.create", "software_allocation.delete"]
    );
    // A retry with the same key answers the first allocation again.
    let path = format!("/v1/software-entitlements/{id}/allocations");
    let body = json!({ "user": "bob", "quantity": 1 });
    let once = app
        .call(
            Method::POST,
            &path,
            Some(&app.admin),
            Some(body.clone()),
            Some("k1"),
        )
        .await;
    let twice = app
        .call(
            Method::POST,
            &path,
            Some(&app.admin),
            Some(body),
            Some("k1"),
        )
        .await;
    assert!(twice.replayed && !once.replayed);
    assert_eq!(once.body, twice.body);
    let current = app.get(&format!("/v1/software-entitlements/{id}")).await;
    assert_eq!(current.body["allocated_rights"], json!(1));
}

/// 64 clients race for 10 rights: exactly 10 allocations, never more.
async fn concurrent_allocations_never_exceed_the_rights(app: TestApp) {
    let model = app.software_model("Visio", "2024").await;
    let id = app.rights_in_use(&model, 10, json!({})).await;
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..64)
        .map(|n| {
            let (app, id) = (app.clone(), id.clone());
            tokio::spawn(async move {
                app.allocate(&id, json!({ "device": format!("pc-{n}"), "quantity": 1 }))
                    .await
            })
        })
        .collect();
    let (mut accepted, mut refused) = (0, 0);
    for t in tasks {
        let a = t.await.unwrap();
        match (a.status, a.code()) {
            (StatusCode::CREATED, _) => accepted += 1,
            (StatusCode::CONFLICT, "rights_exhausted") => refused += 1,
            other => panic!("unexpected {other:?}: {:?}", a.body),
        }
    }
    assert_eq!((accepted, refused), (10, 54));
    let e = app.get(&format!("/v1/software-entitlements/{id}")).await;
    assert_eq!(e.body["allocated_rights"], json!(10));
    assert_eq!(e.body["allocations_available"], json!(0));
    let listed = app
        .get(&format!("/v1/software-entitlements/{id}/allocations"))
        .await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 10);
}

async fn retiring_keeps_allocations_but_allocates_nothing_more(app: TestApp) {
    let model = app.software_model("Project", "2019").await;
    let id = app.rights_in_use(&model, 4, json!({})).await;
    app.allocate(&id, json!({ "user": "ann", "quantity": 2 }))
        .await;
    let retired = app
        .post(&format!("/v1/software-entitlements/{id}/retire"), json!({}))
        .await;
    assert_eq!(retired.status, StatusCode::OK, "{:?}", retired.body);
    assert_eq!(retired.body["state"], "retired");
    assert_eq!(retired.body["active_rights"], json!(0));
    assert_eq!(retired.body["allocated_rights"], json!(2));
    assert_eq!(retired.body["allocations_available"], json!(0));
    let listed = app
        .get(&format!("/v1/software-entitlements/{id}/allocations"))
        .await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        1,
        "allocations stay visible"
    );
    let a = app
        .allocate(&id, json!({ "user": "bob", "quantity": 1 }))
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::CONFLICT, "entitlement_retired")
    );
    let again = app
        .post(&format!("/v1/software-entitlements/{id}/retire"), json!({}))
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "invalid_transition")
    );
    let publish = app
        .post(
            &format!("/v1/software-entitlements/{id}/publish"),
            json!({}),
        )
        .await;
    assert_eq!(
        (publish.status, publish.code()),
        (StatusCode::CONFLICT, "invalid_transition")
    );
}

async fn upgrades_move_rights_in_one_transaction(app: TestApp) {
    let old_model = app.software_model("Office", "2019").await;
    let new_model = app.software_model("Office", "2024").await;
    let old = app.rights_in_use(&old_model, 10, json!({})).await;
    let new = app.rights_in_use(&new_model, 2, json!({})).await;
    app.allocate(&old, json!({ "device": "d1", "quantity": 7 }))
        .await;
    let path = format!("/v1/software-entitlements/{new}/upgrade");
    let refused = app
        .post(&path, json!({ "from_entitlement_id": old, "rights": 4 }))
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, "rights_exhausted")
    );
    let moved = app
        .post(&path, json!({ "from_entitlement_id": old, "rights": 3 }))
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    assert_eq!(moved.body["entitlement"]["purchased_rights"], json!(5));
    assert_eq!(moved.body["entitlement"]["active_rights"], json!(5));
    assert_eq!(moved.body["from_entitlement"]["purchased_rights"], json!(7));
    let old_now = app.get(&format!("/v1/software-entitlements/{old}")).await;
    assert_eq!(old_now.body["active_rights"], json!(7));
    assert_eq!(old_now.body["allocations_available"], json!(0));
    let itself = app
        .post(&path, json!({ "from_entitlement_id": new, "rights": 1 }))
        .await;
    assert_eq!(itself.status, StatusCode::UNPROCESSABLE_ENTITY);
    let per_user = app
        .rights_in_use(&old_model, 3, json!({ "license_metric": "per_user" }))
        .await;
    let mismatch = app
        .post(
            &path,
            json!({ "from_entitlement_id": per_user, "rights": 1 }),
        )
        .await;
    assert_eq!(
        (mismatch.status, mismatch.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "metric_mismatch")
    );
}

async fn license_keys_are_unique_and_flag_their_allocation(app: TestApp) {
    let model = app.software_model("Photoshop", "25").await;
    let id = app.rights_in_use(&model, 3, json!({})).await;
    let path = format!("/v1/software-entitlements/{id}/license-keys");
    let added = app.post(&path, json!({ "keys": ["AAA-1", "BBB-2"] })).await;
    assert_eq!(added.status, StatusCode::OK, "{:?}", added.body);
    let dup = app.post(&path, json!({ "keys": ["CCC-3", "AAA-1"] })).await;
    assert_eq!(
        (dup.status, dup.code()),
        (StatusCode::CONFLICT, "duplicate_license_key")
    );
    let a = app
        .allocate(
            &id,
            json!({ "device": "mac-1", "quantity": 1, "license_key": "BBB-2" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    let keys = &a.body["entitlement"]["license_keys"];
    assert_eq!(
        keys,
        &json!([{ "key": "AAA-1", "allocated": false }, { "key": "BBB-2", "allocated": true }])
    );
    let taken = app
        .allocate(
            &id,
            json!({ "device": "mac-2", "quantity": 1, "license_key": "BBB-2" }),
        )
        .await;
    assert_eq!(
        (taken.status, taken.code()),
        (StatusCode::CONFLICT, "license_key_in_use")
    );
    let unknown = app
        .allocate(
            &id,
            json!({ "device": "mac-2", "quantity": 1, "license_key": "ZZZ" }),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn install(app: &TestApp, items: Value) -> Answer {
    let a = app
        .post("/v1/installations", json!({ "items": items }))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    a
}

fn seen(model: &str, device: &str) -> Value {
    json!({ "software_model_id": model, "device": device, "seen_at": "2026-06-14T09:00:00Z" })
}

fn item_of<'a>(reconciliation: &'a Value, model: &str) -> &'a Value {
    reconciliation["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["software_model_id"] == model)
        .unwrap_or_else(|| panic!("no row for {model}: {reconciliation}"))
}

async fn reconciliation_reports_each_status_and_keeps_history(app: TestApp) {
    let under = app.software_model("Visio", "2024").await;
    let over = app.software_model("Project", "2024").await;
    let even = app.software_model("Teams", "2024").await;
    let priced = json!({ "unit_cost": 10 });
    app.rights_in_use(&under, 1, priced.clone()).await;
    let over_id = app.rights_in_use(&over, 5, priced.clone()).await;
    app.rights_in_use(&even, 2, json!({})).await;
    app.allocate(&over_id, json!({ "device": "d9", "quantity": 1 }))
        .await;
    install(
        &app,
        json!([
            seen(&under, "d1"),
            seen(&under, "d2"),
            seen(&under, "d3"),
            seen(&over, "d1"),
            seen(&even, "d1"),
            seen(&even, "d2")
        ]),
    )
    .await;
    let single = app.post("/v1/installations", seen(&over, "d2")).await;
    assert_eq!(single.body["recorded"], json!(1));
    let run = app.post("/v1/reconciliations", json!({})).await;
    assert_eq!(run.status, StatusCode::CREATED, "{:?}", run.body);
    let u = item_of(&run.body, &under);
    assert_eq!(
        (
            u["status"].clone(),
            u["shortfall"].clone(),
            u["true_up_cost"].clone()
        ),
        (json!("under_licensed"), json!(2), json!(20))
    );
    assert_eq!(u["license_metric"], "per_device");
    let o = item_of(&run.body, &over);
    assert_eq!(
        (
            o["status"].clone(),
            o["unused_rights"].clone(),
            o["potential_savings"].clone()
        ),
        (json!("over_licensed"), json!(3), json!(30))
    );
    assert_eq!(o["allocated_not_installed"], json!(["d9"]));
    assert_eq!(o["installed_not_allocated"], json!(["d1", "d2"]));
    let e = item_of(&run.body, &even);
    assert_eq!(
        (
            e["status"].clone(),
            e["rights_owned"].clone(),
            e["rights_needed"].clone()
        ),
        (json!("compliant"), json!(2), json!(2))
    );
    let one = app
        .post("/v1/reconciliations", json!({ "software_model_id": under }))
        .await;
    assert_eq!(one.body["items"].as_array().unwrap().len(), 1);
    let history = app.get("/v1/reconciliations").await;
    let ours = [run.id(), one.id()];
    // The scheduled job may have run too: ours are kept, in order.
    let ids: Vec<String> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .filter(|id| ours.contains(id))
        .collect();
    assert_eq!(ids, ours);
    let kept = app.get(&format!("/v1/reconciliations/{}", run.id())).await;
    assert_eq!(kept.body, run.body, "history reads back as it was answered");
    let missing = app
        .post(
            "/v1/reconciliations",
            json!({ "software_model_id": "swm_nope" }),
        )
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn downgrade_rights_and_enterprise_agreements_cover_older_installs(app: TestApp) {
    let old = app.software_model("SQL Server", "2019").await;
    let new = app.software_model("SQL Server", "2022").await;
    let id = app.rights_in_use(&new, 4, json!({})).await;
    let right = app
        .post(
            &format!("/v1/software-entitlements/{id}/downgrade-rights"),
            json!({ "software_model_id": old }),
        )
        .await;
    assert_eq!(right.status, StatusCode::OK, "{:?}", right.body);
    assert_eq!(
        right.body["downgrade_rights"],
        json!([{ "software_model_id": old, "order": 1 }])
    );
    install(
        &app,
        json!([seen(&new, "a"), seen(&old, "b"), seen(&old, "c")]),
    )
    .await;
    let run = app.post("/v1/reconciliations", json!({})).await;
    let o = item_of(&run.body, &old);
    assert_eq!(
        (o["status"].clone(), o["rights_from_downgrades"].clone()),
        (json!("compliant"), json!(2))
    );
    assert_eq!(item_of(&run.body, &new)["status"], "over_licensed");
    let ea_model = app.software_model("Windows", "11").await;
    app.rights_in_use(&ea_model, 1, json!({ "agreement_type": "ea" }))
        .await;
    install(
        &app,
        json!([
            seen(&ea_model, "x"),
            seen(&ea_model, "y"),
            seen(&ea_model, "z")
        ]),
    )
    .await;
    let run = app
        .post(
            "/v1/reconciliations",
            json!({ "software_model_id": ea_model }),
        )
        .await;
    let w = item_of(&run.body, &ea_model);
    assert_eq!(
        (w["status"].clone(), w["covered_without_count"].clone()),
        (json!("compliant"), json!(true))
    );
}

async fn installations_arrive_as_csv_and_stale_ones_stop_counting(app: TestApp) {
    let model = app.software_model("Acrobat", "2024").await;
    app.rights_in_use(&model, 1, json!({})).await;
    let csv = format!(
        "software_model_id,device,user,cores,seen_at\n{model},old-pc,ann,,2026-04-01T00:00:00Z\n{model},new-pc,bob,4,2026-06-14T00:00:00Z\n"
    );
    let a = app
        .http
        .post(format!("{}/v1/installations", app.url))
        .bearer_auth(&app.admin)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), StatusCode::CREATED);
    let run = app.post("/v1/reconciliations", json!({})).await;
    let item = item_of(&run.body, &model);
    assert_eq!(
        item["rights_needed"],
        json!(1),
        "old-pc was last seen over 30 days ago"
    );
    assert_eq!(item["status"], "compliant");
    let bad = app
        .http
        .post(format!("{}/v1/installations", app.url))
        .bearer_auth(&app.admin)
        .header("content-type", "text/csv")
        .body(format!(
            "software_model_id,device,seen_at\n{model},pc,yesterday\n"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = app.post("/v1/installations", seen("swm_nope", "pc")).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    let many: Vec<Value> = (0..10_000)
        .map(|n| seen(&model, &format!("host-{n}")))
        .collect();
    let a = app
        .post("/v1/installations", json!({ "items": many }))
        .await;
    assert_eq!(
        (a.status, a.body["recorded"].clone()),
        (StatusCode::CREATED, json!(10_000))
    );
    let too_many: Vec<Value> = (0..10_001)
        .map(|n| seen(&model, &format!("host-{n}")))
        .collect();
    let a = app
        .post("/v1/installations", json!({ "items": too_many }))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    let integration = app.key("integration", None).await;
    let posted = app
        .post_as(&integration, "/v1/installations", seen(&model, "pc-9"))
        .await;
    assert_eq!(
        posted.status,
        StatusCode::CREATED,
        "integrations post installations"
    );
}

async fn models_and_entitlements_are_listed_read_and_edited(app: TestApp) {
    let model = app.software_model("Excel", "2021").await;
    let patched = app
        .call(
            Method::PATCH,
            &format!("/v1/software-models/{model}"),
            Some(&app.admin),
            Some(json!({ "edition": "Pro" })),
            None,
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(
        (
            patched.body["edition"].clone(),
            patched.body["product"].clone()
        ),
        (json!("Pro"), json!("Excel"))
    );
    let models = app.get("/v1/software-models").await;
    assert_eq!(models.body["items"][0]["edition"], "Pro");
    let mine = app.account("Mine").await;
    let theirs = app.account("Theirs").await;
    let ours = app
        .rights_in_use(&model, 10, json!({ "account_id": mine }))
        .await;
    app.rights_in_use(&model, 10, json!({ "account_id": theirs }))
        .await;
    let customer = app.key("customer", Some(&mine)).await;
    let seen_by_customer = app
        .call(
            Method::GET,
            "/v1/software-entitlements",
            Some(&customer),
            None,
            None,
        )
        .await;
    let ids: Vec<&str> = seen_by_customer.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [ours.as_str()]);
    let by_model = app
        .get(&format!(
            "/v1/software-entitlements?software_model_id={model}&limit=1"
        ))
        .await;
    assert_eq!(by_model.body["items"].as_array().unwrap().len(), 1);
    assert!(by_model.body["next_cursor"].is_string());
    app.allocate(&ours, json!({ "user": "ann", "quantity": 4 }))
        .await;
    let path = format!("/v1/software-entitlements/{ours}");
    let shrink = app
        .call(
            Method::PATCH,
            &path,
            Some(&app.admin),
            Some(json!({ "active_rights": 3 })),
            None,
        )
        .await;
    assert_eq!(
        (shrink.status, shrink.code()),
        (StatusCode::CONFLICT, "rights_allocated")
    );
    let packs = app
        .call(
            Method::PATCH,
            &path,
            Some(&app.admin),
            Some(json!({ "rights_per_pack": 5, "number_of_packs": 4 })),
            None,
        )
        .await;
    assert_eq!(packs.status, StatusCode::OK, "{:?}", packs.body);
    assert_eq!(
        (
            packs.body["purchased_rights"].clone(),
            packs.body["active_rights"].clone()
        ),
        (json!(20), json!(20))
    );
    assert_eq!(packs.body["allocations_available"], json!(16));
}

async fn turning_under_licensed_is_an_event_and_reconciliation_runs_on_schedule(app: TestApp) {
    let model = app.software_model("Visio", "2024").await;
    app.rights_in_use(&model, 1, json!({ "unit_cost": 100 }))
        .await;
    install(&app, json!([seen(&model, "d1"), seen(&model, "d2")])).await;
    let events = || async {
        let all = app.get("/v1/events").await.body["items"].clone();
        all.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "software.under_licensed")
            .cloned()
            .collect::<Vec<_>>()
    };
    // The scheduled job may reconcile first: either run turns it, once.
    app.post("/v1/reconciliations", json!({})).await;
    let found = events().await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["data"]["software_model_id"], json!(model));
    assert_eq!(found[0]["data"]["true_up_cost"], json!(100));
    app.post("/v1/reconciliations", json!({})).await;
    assert_eq!(
        events().await.len(),
        1,
        "still under-licensed: no new event"
    );
    let history = || async {
        app.get("/v1/reconciliations").await.body["items"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = history().await;
    allot_server::jobs::run_once(&app.running.state).await;
    assert_eq!(
        history().await,
        before,
        "the last run is less than a day old"
    );
    app.clock.advance(chrono::Duration::hours(25));
    allot_server::jobs::run_once(&app.running.state).await;
    allot_server::jobs::run_once(&app.running.state).await;
    assert_eq!(history().await, before + 1, "due once a day, run once");
    assert_eq!(
        events().await.len(),
        1,
        "the scheduled run finds it still under-licensed"
    );
    let audit = app.get("/v1/audit?action=reconciliation.run").await;
    let actors: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors.last(), Some(&"system"));
}
