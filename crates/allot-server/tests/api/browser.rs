//! The dashboard in a real browser: Debian's headless chromium driven
//! through WebDriver (`chromedriver`, `webdriver.rs`) against the real
//! server on a random port. One browser session for the whole walk, so
//! the suite stays fast. Screenshots of every page at 1280 and 390 px go
//! to `target/screenshots/`.
//!
//! Under `CI=true` a browser that cannot start fails the test; elsewhere
//! the test says why it skipped (`scripts/browser-deps` installs both).

use serde_json::json;

use crate::common::{spawn_app, Backend, TestApp};
use crate::webdriver::Driver;

const WIDTHS: [u32; 2] = [1280, 390];

fn screenshots_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshots directory");
    dir
}

/// The page's controls a person cannot use: inputs without a label (their
/// own `<label>` or `aria-label`), and controls out of the keyboard's tab
/// order (a negative `tabIndex`).
async fn unusable_controls(d: &Driver) -> serde_json::Value {
    d.script(
        "const done = arguments[0]; const bad = [];
         for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
           if (el.labels.length === 0 && !el.getAttribute('aria-label')) bad.push('no label: ' + el.outerHTML);
         }
         for (const el of document.querySelectorAll('a[href], button:not([disabled]), input:not([type=hidden]), select, textarea')) {
           if (el.tabIndex < 0) bad.push('not in the tab order: ' + el.outerHTML);
         }
         done(bad);",
    )
    .await
}

/// Shoots the page at both widths (whole page) and checks that nothing
/// overflows sideways at either, that every input has a label and every
/// control is in the keyboard's tab order.
async fn shoot(d: &Driver, name: &str) {
    assert_eq!(unusable_controls(d).await, json!([]), "{name}");
    for w in WIDTHS {
        d.resize(w, 900).await;
        let h = d.page_height().await.clamp(600, 4000);
        d.resize(w, h).await;
        let png = d.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "{name} at {w}");
        std::fs::write(screenshots_dir().join(format!("{name}-{w}.png")), png).unwrap();
        assert!(
            d.overflow_x().await <= 0,
            "{name} overflows sideways at {w} px"
        );
    }
    d.resize(1280, 900).await;
}

async fn sign_in(d: &Driver, app: &TestApp, key: &str) {
    d.goto(&format!("{}/sign-in", app.url)).await;
    d.type_into("#key", key).await;
    d.click("#sign-in-key button[type=submit]").await;
    assert_eq!(
        d.url_ending("/").await,
        format!("{}/", app.url),
        "signed in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser() {
    let d = match Driver::start().await {
        Ok(d) => d,
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("the browser must start in CI: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED the browser tests: {why}. Run scripts/browser-deps.");
            return;
        }
    };
    let app = spawn_app(Backend::Sqlite).await;
    let acme = app.account("Acme Corp").await;
    let globex = app.account("Globex").await;
    // Acme: a restricted allotment near its limit (8 of 10: 80%), and an
    // unrestricted one with nothing left (a case there is overage).
    let premier = app
        .active_entitlement(
            &acme,
            json!({ "name": "Premier cases", "total": 10, "is_default": true }),
        )
        .await;
    app.use_(&premier, json!(8)).await;
    let overflow = app
        .active_entitlement(
            &acme,
            json!({ "name": "Overflow cases", "total": 1, "restrict": false }),
        )
        .await;
    app.use_(&overflow, json!(1)).await;
    // Globex: restricted and exhausted.
    let visits = app
        .active_entitlement(
            &globex,
            json!({ "name": "On-site visits", "total": 2, "unit": "visits" }),
        )
        .await;
    app.use_(&visits, json!(2)).await;
    let customer = app.key("customer", Some(&acme)).await;
    // Software: Acme's seats, two of three allocated.
    let model = app.software_model("Visio", "2024").await;
    let seats = app
        .rights_in_use(
            &model,
            3,
            json!({ "account_id": acme, "display_name": "Visio seats" }),
        )
        .await;
    let allocated = app
        .allocate(&seats, json!({ "device": "pc-7", "quantity": 2 }))
        .await;
    assert_eq!(allocated.status.as_u16(), 201, "{:?}", allocated.body);

    // Sign in; the overview lists what needs attention.
    d.goto(&app.url).await;
    assert!(d.url().await.ends_with("/sign-in"), "no session: the form");
    shoot(&d, "sign-in").await;
    sign_in(&d, &app, &app.admin).await;
    let overview = d.text().await;
    assert!(overview.contains("Approaching the limit"), "{overview}");
    assert!(overview.contains("Premier cases"), "{overview}");
    assert!(overview.contains("On-site visits"), "{overview}");
    assert_eq!(
        d.count("#approaching ~ div a[href*='/entitlements/']")
            .await,
        1
    );
    shoot(&d, "overview").await;

    // Accounts, an account, an entitlement with its burn-down.
    d.goto(&format!("{}/accounts", app.url)).await;
    assert!(d.text().await.contains("Globex"));
    shoot(&d, "accounts").await;
    d.goto(&format!("{}/accounts/{acme}", app.url)).await;
    assert!(d.text().await.contains("Premier cases"));
    shoot(&d, "account").await;
    d.goto(&format!("{}/entitlements/{premier}", app.url)).await;
    assert_eq!(d.count("svg.chart").await, 1, "the burn-down is drawn");
    assert!(d.text().await.contains("Ledger"));
    shoot(&d, "entitlement").await;
    for (page, name) in [
        ("/reports", "reports"),
        ("/reports?report=software-compliance", "reports-compliance"),
        ("/webhooks", "webhooks"),
        ("/audit", "audit"),
    ] {
        d.goto(&format!("{}{page}", app.url)).await;
        shoot(&d, name).await;
    }

    // Make default: the button on another entitlement moves the default.
    d.goto(&format!("{}/entitlements/{overflow}", app.url))
        .await;
    d.click("form:has(input[value='make-default']) button")
        .await;
    let moved = d.source_with("now its account").await;
    assert!(moved.contains("now its account"), "{moved}");
    let e = app.get(&format!("/v1/entitlements/{overflow}")).await;
    assert_eq!(e.body["is_default"], json!(true));

    // The accounts search, answered by the server.
    d.goto(&format!("{}/accounts", app.url)).await;
    d.type_into("#q", "glob").await;
    d.click("form[role=search] button").await;
    // The answer's own field holds the search (typing sets no attribute).
    let found = d.source_with(r#"value="glob""#).await;
    assert!(found.contains("Globex"), "{found}");
    assert!(!found.contains("Acme Corp"), "only the match");
    shoot(&d, "accounts-search").await;

    // Software: the list with allocated rights, one entitlement's allocations.
    d.goto(&format!("{}/software", app.url)).await;
    assert!(d.text().await.contains("2 of 3 allocated"));
    shoot(&d, "software").await;
    d.goto(&format!("{}/software/{seats}", app.url)).await;
    assert!(d.text().await.contains("pc-7"));
    shoot(&d, "software-entitlement").await;

    // The agent flow: account → covering entitlements with live remaining.
    d.goto(&format!("{}/agent", app.url)).await;
    d.click(&format!("#account option[value='{acme}']")).await;
    d.click("main form.row button[type=submit]").await;
    let li = format!("li[data-entitlement='{premier}']");
    let remaining = |html: &str| -> Option<String> {
        let at = html.find(&format!("data-entitlement=\"{premier}\""))?;
        let rest = &html[at..];
        let s = rest.find("class=\"remaining\">")? + "class=\"remaining\">".len();
        Some(rest[s..].split('<').next()?.to_string())
    };
    let listed = d
        .source_with(&format!("data-entitlement=\"{premier}\""))
        .await;
    assert_eq!(remaining(&listed).as_deref(), Some("2"));
    shoot(&d, "agent").await;
    d.type_into(&format!("{li} input[name=title]"), "Printer on fire")
        .await;
    d.click(&format!("{li} button[type=submit]")).await;
    let after = d.source_with("opened on").await;
    assert!(after.contains("opened on"), "{after}");
    assert_eq!(
        remaining(&after).as_deref(),
        Some("1"),
        "the counter changed"
    );
    let b = app.balance(&premier).await;
    assert_eq!(b["remaining"], json!(1));

    // Unrestricted with nothing left: a warning, and the case still opens.
    let oli = format!("li[data-entitlement='{overflow}']");
    let source = d.source().await;
    assert!(source.contains("goes into overage"), "the overage warning");
    d.type_into(&format!("{oli} input[name=title]"), "After hours")
        .await;
    d.click(&format!("{oli} button[type=submit]")).await;
    let warned = d.source_with("Warning:").await;
    assert!(warned.contains("Warning:"), "{warned}");

    // Restricted and exhausted: why, and no way to open a case on it.
    d.goto(&format!("{}/agent?account={globex}", app.url)).await;
    let vli = format!("li[data-entitlement='{visits}']");
    assert_eq!(d.count(&format!("{vli} button[disabled]")).await, 1);
    assert_eq!(d.count(&format!("{vli} input[name=title]")).await, 0);
    assert!(d
        .text()
        .await
        .contains("restricted, so no case can be opened"));
    shoot(&d, "agent-exhausted").await;

    // A form post without the CSRF token, from the page itself: refused.
    let status = d
        .script(&format!(
            "const done = arguments[0]; fetch('/agent/cases', {{ method: 'POST', headers: {{ 'content-type': 'application/x-www-form-urlencoded' }}, body: 'account={acme}&title=forged&entitlement={premier}' }}).then(r => done(r.status));"
        ))
        .await;
    assert_eq!(status, json!(403));
    assert_eq!(
        app.balance(&premier).await["remaining"],
        json!(1),
        "nothing changed"
    );

    // Sign out: back to the form, and the pages are closed again.
    d.click("form.signout button").await;
    assert!(d.url_ending("/sign-in").await.ends_with("/sign-in"));
    d.goto(&format!("{}/accounts", app.url)).await;
    assert!(d.url().await.ends_with("/sign-in"));

    // A customer: its own account only, also by editing the address.
    sign_in(&d, &app, &customer).await;
    let home = d.text().await;
    assert!(home.contains("Premier cases"));
    assert!(!home.contains("On-site visits"), "{home}");
    assert!(d.text().await.contains("My account"));
    for page in [
        format!("/accounts/{globex}"),
        format!("/entitlements/{visits}"),
    ] {
        d.goto(&format!("{}{page}", app.url)).await;
        let t = d.text().await;
        assert!(t.contains("Not found"), "{page}: {t}");
        assert!(!t.contains("On-site visits"));
    }
    d.goto(&format!("{}/accounts/{acme}", app.url)).await;
    shoot(&d, "customer-account").await;

    // A person signs in with an email and a password (`allot users create`).
    d.click("form.signout button").await;
    assert!(d.url_ending("/sign-in").await.ends_with("/sign-in"));
    allot_server::people::create_user(
        app.running.state.store.as_ref(),
        "ana@example.com",
        allot_store::model::Role::Manager,
        None,
        "ana's long password",
        allot_store::Clock::now(&app.clock),
        &allot_server::auth::operator(),
    )
    .await
    .unwrap();
    d.type_into("#email", "ana@example.com").await;
    d.type_into("#password", "ana's long password").await;
    d.click("#sign-in-password button[type=submit]").await;
    assert_eq!(
        d.url_ending("/").await,
        format!("{}/", app.url),
        "signed in with a password"
    );
    let home = d.text().await;
    assert!(
        home.contains("On-site visits"),
        "a manager sees every account: {home}"
    );
    drop(d);
}
