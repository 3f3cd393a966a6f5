//! The dashboard over HTTP (no browser): sign-in and its cookie, CSRF on
//! every form, sessions ending (sign-out, idle time, a revoked key), each
//! role's pages (the dashboard's role matrix: the same intent as
//! `roles.rs`, whose table is shaped for bearer keys), a customer confined
//! to its own account, and a case opened from a form going through the
//! write path like `POST /v1/cases`.

use chrono::Duration;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{redirect, StatusCode};
use serde_json::json;

use crate::common::TestApp;

crate::on_both_backends!(
    sign_in_gives_a_strict_cookie_and_sign_out_ends_it,
    a_session_ends_after_idle_time_or_when_its_key_is_revoked,
    a_form_without_its_csrf_token_is_refused_and_changes_nothing,
    each_role_sees_the_pages_its_permissions_allow,
    a_customer_sees_only_its_own_account,
    a_case_opened_from_the_dashboard_goes_through_the_write_path,
    no_page_makes_more_calls_when_the_data_grows,
    the_account_search_runs_on_the_server,
    make_default_and_the_software_pages,
    people_sign_in_with_a_password,
);

/// A browser without JavaScript: its session cookie and the page's token.
pub struct Visitor {
    http: reqwest::Client,
    url: String,
    cookie: String,
    pub csrf: String,
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub html: String,
    /// `Server-Timing`'s `calls;desc="N"`: API handler calls and direct
    /// store reads the page made.
    pub calls: Option<u32>,
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

fn csrf_of(html: &str) -> Option<String> {
    let at = html.find(r#"name="csrf" value=""#)? + r#"name="csrf" value=""#.len();
    Some(html[at..].split('"').next()?.to_string())
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

/// Signs in with `key`; panics unless the dashboard accepts it.
pub async fn sign_in(app: &TestApp, key: &str) -> Visitor {
    try_sign_in(app, key).await.expect("signed in")
}

async fn try_sign_in(app: &TestApp, key: &str) -> Result<Visitor, StatusCode> {
    try_sign_in_with(app, &[("key", key)])
        .await
        .map_err(|(s, _)| s)
}

/// Signs in with the sign-in form's `fields` (a key, or an email and a
/// password); the refusal's status and page otherwise.
async fn try_sign_in_with(
    app: &TestApp,
    fields: &[(&str, &str)],
) -> Result<Visitor, (StatusCode, String)> {
    let http = no_redirects();
    let form = http
        .get(format!("{}/sign-in", app.url))
        .send()
        .await
        .unwrap();
    let signin_cookie = cookie_value(form.headers()[SET_COOKIE].to_str().unwrap());
    let token = csrf_of(&form.text().await.unwrap()).unwrap();
    let mut form = vec![("csrf", token.as_str())];
    form.extend_from_slice(fields);
    let answer = http
        .post(format!("{}/sign-in", app.url))
        .header(COOKIE, &signin_cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    if answer.status() != StatusCode::SEE_OTHER {
        return Err((answer.status(), answer.text().await.unwrap()));
    }
    let session = answer
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("allot_session="))
        .unwrap();
    let mut v = Visitor {
        http,
        url: app.url.clone(),
        cookie: cookie_value(&session),
        csrf: String::new(),
    };
    let home = v.get("/").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.html);
    v.csrf = csrf_of(&home.html).unwrap();
    Ok(v)
}

impl Visitor {
    pub async fn get(&self, path: &str) -> Page {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap();
        page(r).await
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .header(COOKIE, &self.cookie)
            .form(fields)
            .send()
            .await
            .unwrap();
        page(r).await
    }
}

async fn page(r: reqwest::Response) -> Page {
    let status = r.status();
    let location = r
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_string());
    let calls = r
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("calls;desc=\"").nth(1))
        .and_then(|v| v.trim_end_matches('"').parse().ok());
    Page {
        status,
        location,
        html: r.text().await.unwrap(),
        calls,
    }
}

async fn sign_in_gives_a_strict_cookie_and_sign_out_ends_it(app: TestApp) {
    let http = no_redirects();
    // Without a session every page leads to the sign-in form.
    let r = http.get(format!("{}/", app.url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/sign-in");
    // The cookie: HttpOnly, SameSite=Strict; Secure only behind TLS.
    for (proto, secure) in [(None, false), (Some("https"), true)] {
        let mut req = http.get(format!("{}/sign-in", app.url));
        if let Some(p) = proto {
            req = req.header("x-forwarded-proto", p);
        }
        let form = req.send().await.unwrap();
        let pre = form.headers()[SET_COOKIE].to_str().unwrap().to_string();
        let token = csrf_of(&form.text().await.unwrap()).unwrap();
        let mut post = http
            .post(format!("{}/sign-in", app.url))
            .header(COOKIE, cookie_value(&pre))
            .form(&[("csrf", token.as_str()), ("key", app.admin.as_str())]);
        if let Some(p) = proto {
            post = post.header("x-forwarded-proto", p);
        }
        let r = post.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let session = r
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("allot_session="))
            .unwrap();
        assert!(session.contains("; HttpOnly"), "{session}");
        assert!(session.contains("; SameSite=Strict"), "{session}");
        assert_eq!(session.contains("; Secure"), secure, "{session}");
        assert!(
            !session.contains(&app.admin),
            "the key never goes to the browser"
        );
    }
    // A wrong key: refused, no session.
    assert_eq!(
        try_sign_in(&app, "allot_not_a_key").await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    // An integration key reads nothing: no dashboard for it.
    let integration = app.key("integration", None).await;
    assert_eq!(
        try_sign_in(&app, &integration).await.err(),
        Some(StatusCode::FORBIDDEN)
    );
    let v = sign_in(&app, &app.admin).await;
    let out = v.post("/sign-out", &[("csrf", v.csrf.as_str())]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location.as_deref(), Some("/sign-in"));
    let after = v.get("/").await;
    assert_eq!(
        after.status,
        StatusCode::SEE_OTHER,
        "the old cookie is dead"
    );
}

async fn a_session_ends_after_idle_time_or_when_its_key_is_revoked(app: TestApp) {
    let v = sign_in(&app, &app.admin).await;
    app.clock.advance(Duration::minutes(29));
    assert_eq!(v.get("/").await.status, StatusCode::OK);
    // 29 minutes idle again: still alive (each page restarts the count).
    app.clock.advance(Duration::minutes(29));
    assert_eq!(v.get("/accounts").await.status, StatusCode::OK);
    app.clock.advance(Duration::minutes(31));
    assert_eq!(v.get("/").await.status, StatusCode::SEE_OTHER);

    let made = app.post("/v1/api-keys", json!({ "role": "agent" })).await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    let (id, agent) = (made.id(), made.body["secret"].as_str().unwrap().to_string());
    let v = sign_in(&app, &agent).await;
    assert_eq!(v.get("/").await.status, StatusCode::OK);
    let r = app
        .post(&format!("/v1/api-keys/{id}/revoke"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(v.get("/").await.status, StatusCode::SEE_OTHER);
}

async fn a_form_without_its_csrf_token_is_refused_and_changes_nothing(app: TestApp) {
    let acc = app.account("Acme").await;
    let ent = app.active_entitlement(&acc, json!({})).await;
    let v = sign_in(&app, &app.admin).await;
    let posts: [(&str, Vec<(&str, &str)>); 4] = [
        (
            "/agent/cases",
            vec![("account", acc.as_str()), ("title", "Help")],
        ),
        (
            &format!("/entitlements/{ent}/lifecycle"),
            vec![("action", "cancel")],
        ),
        (
            &format!("/entitlements/{ent}/adjust"),
            vec![("quantity", "1"), ("reason", "x")],
        ),
        ("/sign-out", vec![]),
    ]
    .map(|(p, f)| (Box::leak(p.to_string().into_boxed_str()) as &str, f));
    for (path, fields) in &posts {
        let missing = v.post(path, fields).await;
        assert_eq!(missing.status, StatusCode::FORBIDDEN, "{path}");
        let mut wrong = fields.clone();
        wrong.push(("csrf", "0000"));
        assert_eq!(
            v.post(path, &wrong).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    // Nothing changed: no case, no adjustment, still active, still signed in.
    let cases = app.get("/v1/cases").await;
    assert_eq!(cases.body["items"].as_array().unwrap().len(), 0);
    let b = app.balance(&ent).await;
    assert_eq!(b["used"], json!(0));
    let e = app.get(&format!("/v1/entitlements/{ent}")).await;
    assert_eq!(e.body["status"], "active");
    assert_eq!(v.get("/").await.status, StatusCode::OK);
    // The sign-in form has its own token.
    let http = no_redirects();
    let r = http
        .post(format!("{}/sign-in", app.url))
        .form(&[("key", app.admin.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// The dashboard's role matrix: page × caller → status (303: to sign-in).
async fn each_role_sees_the_pages_its_permissions_allow(app: TestApp) {
    let a = app.account("A").await;
    let b = app.account("B").await;
    let ent = app.active_entitlement(&a, json!({})).await;
    let callers = [
        ("admin", app.admin.clone()),
        ("manager", app.key("manager", None).await),
        ("agent", app.key("agent", None).await),
        ("customer", app.key("customer", Some(&a)).await),
        ("other customer", app.key("customer", Some(&b)).await),
    ];
    let acc_page = format!("/accounts/{a}");
    let ent_page = format!("/entitlements/{ent}");
    let agent_page = format!("/agent?account={a}");
    let model = app.software_model("Office", "2024").await;
    let sw = app
        .rights_in_use(&model, 5, json!({ "account_id": a }))
        .await;
    let sw_page = format!("/software/{sw}");
    #[rustfmt::skip]
    let table: [(&str, [u16; 5]); 13] = [
        // page                    adm  mgr  agt  cus  oth
        ("/",                      [200, 200, 200, 200, 200]),
        ("/accounts",              [200, 200, 200, 303, 303]),
        (&acc_page,                [200, 200, 200, 200, 404]),
        (&ent_page,                [200, 200, 200, 200, 404]),
        (&agent_page,              [200, 200, 200, 200, 200]),
        ("/reports",               [200, 200, 200, 200, 200]),
        ("/reports/download",      [200, 200, 200, 200, 200]),
        ("/webhooks",              [200, 200, 403, 403, 403]),
        ("/audit",                 [200, 200, 403, 403, 403]),
        ("/accounts?q=a",          [200, 200, 200, 303, 303]),
        ("/software",              [200, 200, 200, 200, 200]),
        (&sw_page,                 [200, 200, 200, 200, 404]),
        ("/assets/style.css",      [200, 200, 200, 200, 200]),
    ];
    let mut wrong = Vec::new();
    for (i, (role, key)) in callers.iter().enumerate() {
        let v = sign_in(&app, key).await;
        for (path, expected) in &table {
            let got = v.get(path).await.status.as_u16();
            if got != expected[i] {
                wrong.push(format!(
                    "{role} GET {path}: {got}, expected {}",
                    expected[i]
                ));
            }
        }
        // Navigation shows what the role may open, and nothing else.
        let home = v.get("/").await.html;
        let manages = i < 2;
        assert_eq!(home.contains(r#"href="/audit""#), manages, "{role}");
        assert_eq!(home.contains(r#"href="/webhooks""#), manages, "{role}");
        assert_eq!(home.contains(r#"href="/accounts""#), i < 3, "{role}");
        // Lifecycle buttons only for those who may use them.
        let page = v.get(&ent_page).await.html;
        assert_eq!(
            page.contains(r#"name="action" value="cancel""#),
            manages,
            "{role}"
        );
        assert_eq!(
            page.contains(r#"action="/entitlements/"#) && page.contains("/adjust"),
            manages,
            "{role}"
        );
    }
    // Without a session, every page leads to sign-in.
    let http = no_redirects();
    for (path, _) in &table[..table.len() - 1] {
        let r = http.get(format!("{}{path}", app.url)).send().await.unwrap();
        if r.status() != StatusCode::SEE_OTHER {
            wrong.push(format!("no session GET {path}: {}", r.status()));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

async fn a_customer_sees_only_its_own_account(app: TestApp) {
    let a = app.account("Alpha Ltd").await;
    let b = app.account("Beta GmbH").await;
    let mine = app
        .active_entitlement(&a, json!({ "name": "Alpha cases" }))
        .await;
    let theirs = app
        .active_entitlement(&b, json!({ "name": "Beta cases" }))
        .await;
    app.use_(&theirs, json!(9)).await;
    app.use_(&mine, json!(9)).await;
    let key = app.key("customer", Some(&a)).await;
    let v = sign_in(&app, &key).await;
    let home = v.get("/").await.html;
    assert!(home.contains("Alpha cases"));
    assert!(
        !home.contains("Beta cases"),
        "another account's rows are absent"
    );
    assert!(!home.contains(&b));
    // Editing the address: another account's pages do not exist.
    for path in [
        format!("/accounts/{b}"),
        format!("/entitlements/{theirs}"),
        format!("/agent?account={b}"),
    ] {
        let p = v.get(&path).await;
        assert!(!p.html.contains("Beta cases"), "{path}");
        if !path.starts_with("/agent") {
            assert_eq!(p.status, StatusCode::NOT_FOUND, "{path}");
        }
    }
    let reports = v
        .get(&format!("/reports?report=consumption&account_id={b}"))
        .await;
    assert!(!reports.html.contains("Beta cases"));
    // Nor can it open a case on another account from a form.
    let r = v
        .post(
            "/agent/cases",
            &[
                ("csrf", v.csrf.as_str()),
                ("account", b.as_str()),
                ("title", "x"),
                ("entitlement", theirs.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let b_cases = app.get(&format!("/v1/cases?account_id={b}")).await;
    assert_eq!(b_cases.body["items"].as_array().unwrap().len(), 0);
}

async fn a_case_opened_from_the_dashboard_goes_through_the_write_path(app: TestApp) {
    let acc = app.account("Acme").await;
    let ent = app.active_entitlement(&acc, json!({ "total": 3 })).await;
    let agent = app.key("agent", None).await;
    let v = sign_in(&app, &agent).await;
    let before = v.get(&format!("/agent?account={acc}")).await;
    assert!(
        before.html.contains(r#"<span class="remaining">3</span>"#),
        "{}",
        before.html
    );
    let fields = [
        ("csrf", v.csrf.as_str()),
        ("idem", "form-1"),
        ("account", acc.as_str()),
        ("entitlement", ent.as_str()),
        ("title", "Printer on fire"),
        ("back", "/agent"),
    ];
    let r = v.post("/agent/cases", &fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // The same form sent twice (its idempotency key): one case.
    v.post("/agent/cases", &fields).await;
    let cases = app.get(&format!("/v1/cases?account_id={acc}")).await;
    let items = cases.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["title"], "Printer on fire");
    assert_eq!(items[0]["entitlement_id"], json!(ent));
    assert_eq!(app.balance(&ent).await["remaining"], json!(2));
    app.assert_ledger_matches(&ent).await;
    let after = v.get(&format!("/agent?account={acc}")).await;
    assert!(after.html.contains(r#"<span class="remaining">2</span>"#));
    assert!(
        after.html.contains("opened on"),
        "the flash says what happened"
    );
    // The case page: time logged there goes through the case routes, whose
    // refusals it shows (a cases entitlement counts no hours).
    let case_id = items[0]["id"].as_str().unwrap().to_string();
    let page = v.get(&format!("/cases/{case_id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("Printer on fire"));
    let log = |id: String| {
        let v = &v;
        async move {
            let fields = [("csrf", v.csrf.as_str()), ("minutes", "30")];
            let r = v.post(&format!("/cases/{id}/time"), &fields).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER);
            v.get(&format!("/cases/{id}")).await.html
        }
    };
    let refused = log(case_id.clone()).await;
    assert!(refused.contains("not hours"), "{refused}");
    let hours = app
        .active_entitlement(&acc, json!({ "name": "Hours", "unit": "hours" }))
        .await;
    let opened = app
        .post(
            "/v1/cases",
            json!({ "account_id": acc, "title": "Long call", "entitlement_id": hours }),
        )
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{:?}", opened.body);
    let logged = log(opened.id()).await;
    assert!(logged.contains("Logged 30 minutes"), "{logged}");
    let case = app.get(&format!("/v1/cases/{}", opened.id())).await;
    let entries = case.body["time_entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{:?}", case.body);
    assert_eq!(entries[0]["hours"], json!(0.5));
    let no_token = v
        .post(
            &format!("/cases/{}/time", opened.id()),
            &[("minutes", "30")],
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    // Audited as the agent's key, like any API call.
    let audit = app.get("/v1/audit?action=case.open").await;
    let entries = audit.body["items"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["role"] == "agent"),
        "{:?}",
        audit.body
    );
}

/// The pages read in `no_page_makes_more_calls_when_the_data_grows`.
fn counted_pages(acc: &str, ent: &str) -> Vec<String> {
    vec![
        "/".into(),
        "/accounts".into(),
        "/accounts?q=acme".into(),
        format!("/accounts/{acc}"),
        format!("/entitlements/{ent}"),
        "/reports?report=approaching-limit".into(),
        "/reports?report=expiring&within_days=30".into(),
        "/reports/download?report=consumption".into(),
        "/software".into(),
        format!("/agent?account={acc}"),
        format!("/cases/CASE"),
        "/webhooks".into(),
        "/audit".into(),
    ]
}

/// Each page of `counted_pages` with its calls (all must answer 200).
async fn page_calls(v: &Visitor, acc: &str, ent: &str, case: &str) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for path in counted_pages(acc, ent) {
        let path = path.replace("CASE", case);
        let p = v.get(&path).await;
        assert_eq!(p.status, StatusCode::OK, "{path}: {}", p.html);
        out.push((path, p.calls.expect("every page says its calls")));
    }
    out
}

/// Each page's calls (API handlers and direct store reads, from its
/// `Server-Timing`), with one account, one entitlement and one case, then
/// with many more of everything on that account and others: the same.
async fn no_page_makes_more_calls_when_the_data_grows(app: TestApp) {
    let acc = app.account("Acme").await;
    let ent = app.active_entitlement(&acc, json!({ "total": 10 })).await;
    let opened = app
        .post(
            "/v1/cases",
            json!({ "account_id": acc, "title": "First", "entitlement_id": ent }),
        )
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{:?}", opened.body);
    let case = opened.id();
    let v = sign_in(&app, &app.admin).await;
    let small = page_calls(&v, &acc, &ent, &case).await;
    assert!(small.iter().all(|(_, n)| *n >= 2), "{small:?}");
    // Grow: 30 more entitlements near or past their limit or ending soon
    // (on this account and others), cases, usage, accounts, events, audit.
    for i in 0..30 {
        let owner = if i % 2 == 0 {
            acc.clone()
        } else {
            app.account(&format!("Acme {i}")).await
        };
        let today = allot_store::Clock::today(&app.clock);
        let end = today + Duration::days(10 + i);
        let e = app
            .active_entitlement(
                &owner,
                json!({ "total": 10, "restrict": false, "end_date": end.to_string() }),
            )
            .await;
        app.use_(&e, json!(9 + i % 3)).await;
        app.use_(&ent, json!(0.1)).await;
        let c = app
            .post(
                "/v1/cases",
                json!({ "account_id": owner, "title": format!("Case {i}"), "entitlement_id": e }),
            )
            .await;
        assert_eq!(c.status, StatusCode::CREATED, "{:?}", c.body);
    }
    let large = page_calls(&v, &acc, &ent, &case).await;
    assert_eq!(small, large, "calls per page, small vs large data");
    // A report's first page on the overview: more rows than it shows.
    let home = v.get("/").await.html;
    assert!(home.contains("See all in the report"), "{home}");
}

async fn the_account_search_runs_on_the_server(app: TestApp) {
    for name in ["Alpha Ltd", "Beta GmbH", "Gamma Beta Inc"] {
        app.account(name).await;
    }
    let v = sign_in(&app, &app.admin).await;
    let found = v.get("/accounts?q=BETA").await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(found.html.contains("Beta GmbH") && found.html.contains("Gamma Beta Inc"));
    assert!(!found.html.contains("Alpha Ltd"), "{}", found.html);
    assert!(v
        .get("/accounts?q=zzz")
        .await
        .html
        .contains("No account matches"));
    // An agent searches too; a customer is sent to its own account.
    let agent = app.key("agent", None).await;
    let a = sign_in(&app, &agent).await;
    assert!(a.get("/accounts?q=alpha").await.html.contains("Alpha Ltd"));
}

async fn make_default_and_the_software_pages(app: TestApp) {
    let acc = app.account("Acme").await;
    let ent = app
        .active_entitlement(&acc, json!({ "name": "Support hours" }))
        .await;
    let agent = app.key("agent", None).await;
    let page = sign_in(&app, &agent)
        .await
        .get(&format!("/entitlements/{ent}"))
        .await;
    assert!(!page.html.contains("Make default"), "an agent may not");
    let v = sign_in(&app, &app.admin).await;
    let page = v.get(&format!("/entitlements/{ent}")).await;
    assert!(page.html.contains("Make default"), "{}", page.html);
    let fields = [
        ("csrf", v.csrf.as_str()),
        ("action", "make-default"),
        ("idem", "md-1"),
    ];
    let r = v
        .post(&format!("/entitlements/{ent}/lifecycle"), &fields)
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let e = app.get(&format!("/v1/entitlements/{ent}")).await;
    assert_eq!(e.body["is_default"], json!(true));
    let page = v.get(&format!("/entitlements/{ent}")).await;
    assert!(
        page.html.contains("now its account&#39;s default")
            || page.html.contains("now its account's default")
    );
    assert!(
        !page.html.contains(r#"value="make-default""#),
        "already the default"
    );
    // Without the token: refused.
    let other = app.active_entitlement(&acc, json!({})).await;
    let r = v
        .post(
            &format!("/entitlements/{other}/lifecycle"),
            &[("action", "make-default")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Software: the list with rights allocated, compliance for staff, and
    // an entitlement's allocations.
    let model = app.software_model("Visio", "2024").await;
    let sw = app
        .rights_in_use(
            &model,
            3,
            json!({ "account_id": acc, "display_name": "Visio seats" }),
        )
        .await;
    let a = app
        .allocate(&sw, json!({ "device": "pc-7", "quantity": 2 }))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    let list = v.get("/software").await;
    assert!(list.html.contains("Visio seats"), "{}", list.html);
    assert!(list.html.contains("2 of 3 allocated"), "{}", list.html);
    assert!(list.html.contains(r#"id="compliance""#));
    let one = v.get(&format!("/software/{sw}")).await;
    assert_eq!(one.status, StatusCode::OK);
    assert!(one.html.contains("pc-7"), "{}", one.html);
    let customer = app.key("customer", Some(&acc)).await;
    let c = sign_in(&app, &customer).await;
    let theirs = c.get("/software").await;
    assert!(theirs.html.contains("Visio seats"));
    assert!(!theirs.html.contains(r#"id="compliance""#), "staff only");
    // The compliance report with its filter, and its CSV.
    let report = v
        .get("/reports?report=software-compliance&status=over_licensed")
        .await;
    assert_eq!(report.status, StatusCode::OK);
    assert!(report.html.contains("Visio"), "{}", report.html);
    let csv = v
        .get("/reports/download?report=software-compliance&status=under_licensed")
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(!csv.html.contains("Visio"), "{}", csv.html);
}

/// People's accounts: an email (any case) and a password sign in like a
/// key of the user's role; a wrong password and an unknown email get one
/// message; a customer sees its own account only; a disabled user's
/// session ends at its next request and it cannot sign in again.
async fn people_sign_in_with_a_password(app: TestApp) {
    use allot_server::people::create_user;
    use allot_store::model::Role;
    let acme = app.account("Acme").await;
    let globex = app.account("Globex").await;
    app.active_entitlement(&acme, json!({ "name": "Acme support" }))
        .await;
    app.active_entitlement(&globex, json!({ "name": "Globex support" }))
        .await;
    let store = app.running.state.store.clone();
    let now = allot_store::Clock::now(&app.clock);
    let operator = allot_server::auth::operator();
    let ana = create_user(
        store.as_ref(),
        "Ana@Example.com",
        Role::Manager,
        None,
        "ana's long password",
        now,
        &operator,
    )
    .await
    .unwrap();
    create_user(
        store.as_ref(),
        "bo@client.example",
        Role::Customer,
        Some(acme.clone()),
        "bo's long password",
        now,
        &operator,
    )
    .await
    .unwrap();

    // A manager, by its email in another case: the manager's pages.
    let manager = try_sign_in_with(
        &app,
        &[
            ("email", "ana@example.COM"),
            ("password", "ana's long password"),
        ],
    )
    .await
    .map_err(|(s, _)| s)
    .expect("signed in");
    assert_eq!(manager.get("/audit").await.status, StatusCode::OK);
    let audit = manager.get("/audit").await.html;
    assert!(audit.contains("user.create"), "{audit}");

    // Wrong password, unknown email: one answer, naming neither.
    let refusal = |fields: [(&'static str, &'static str); 2]| {
        let app = &app;
        async move {
            let (status, page) = try_sign_in_with(app, &fields).await.err().expect("refused");
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            let message = page
                .split("role=\"alert\">")
                .nth(1)
                .and_then(|m| m.split('<').next())
                .expect("a message")
                .to_string();
            message
        }
    };
    let wrong = refusal([
        ("email", "ana@example.com"),
        ("password", "not the password"),
    ])
    .await;
    let unknown = refusal([
        ("email", "eve@example.com"),
        ("password", "ana's long password"),
    ])
    .await;
    assert_eq!(wrong, unknown);
    assert!(!wrong.contains("ana") && !wrong.contains("eve"), "{wrong}");

    // A customer: its own account, not another (also by the address).
    let bo = try_sign_in_with(
        &app,
        &[
            ("email", "bo@client.example"),
            ("password", "bo's long password"),
        ],
    )
    .await
    .map_err(|(s, _)| s)
    .expect("signed in");
    let own = bo.get(&format!("/accounts/{acme}")).await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(own.html.contains("Acme support"), "{}", own.html);
    let other = bo.get(&format!("/accounts/{globex}")).await;
    assert!(!other.html.contains("Globex support"), "{}", other.html);
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(bo.get("/audit").await.status, StatusCode::FORBIDDEN);

    // Disabled: the open session ends at its next request, and the right
    // password no longer signs in.
    assert!(store.disable_user(&ana.id, now, &operator).await.unwrap());
    let after = manager.get("/").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.location.as_deref(), Some("/sign-in"));
    let again = refusal([
        ("email", "ana@example.com"),
        ("password", "ana's long password"),
    ])
    .await;
    assert_eq!(again, wrong);
}
