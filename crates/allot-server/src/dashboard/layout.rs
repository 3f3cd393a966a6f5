//! The page shell (header, role-aware navigation, sign-out, messages) and
//! the small pieces every page uses.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

use super::session::Flash;
use super::{Reply, Signed};
use crate::auth::{allows, Permission, Principal};

const CSS: &str = include_str!("assets/style.css");

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// What the shell needs of the signed-in caller.
pub struct Nav<'a> {
    pub principal: &'a Principal,
    pub csrf: &'a str,
    pub flash: Option<&'a Flash>,
}

/// The links a role sees: what its permissions let it open.
pub fn links(p: &Principal) -> Vec<(&'static str, String)> {
    let mut out = vec![("Overview", "/".to_string())];
    if allows(p.role, Permission::Read) {
        match p.confined_to() {
            Some(own) => out.push(("My account", format!("/accounts/{own}"))),
            None => out.push(("Accounts", "/accounts".into())),
        }
    }
    if allows(p.role, Permission::OpenCases) {
        out.push(("Open a case", "/agent".into()));
    }
    if allows(p.role, Permission::Read) {
        out.push(("Reports", "/reports".into()));
    }
    if allows(p.role, Permission::Read) {
        out.push(("Software", "/software".into()));
    }
    if allows(p.role, Permission::Manage) {
        out.push(("Webhooks", "/webhooks".into()));
        out.push(("Audit", "/audit".into()));
    }
    out
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Allot" }
            link rel="stylesheet" href="/assets/style.css";
        }
    }
}

/// A whole page for the signed-in caller.
pub fn page(nav: Nav<'_>, current: &str, title: &str, body: Markup) -> Response {
    let role = nav.principal.role.as_str();
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
        (head(title))
        body {
            a.skip href="#main" { "Skip to content" }
            header.top {
                a.brand href="/" { "Allot" }
                nav aria-label="Main" {
                    ul {
                        @for (label, href) in links(nav.principal) {
                            li { a href=(href) aria-current=[(current == label).then_some("page")] { (label) } }
                        }
                    }
                }
                form.signout method="post" action="/sign-out" {
                    input type="hidden" name="csrf" value=(nav.csrf);
                    span.who { (role) }
                    button type="submit" { "Sign out" }
                }
            }
            main id="main" {
                h1 { (title) }
                @if let Some(f) = nav.flash {
                    @match f {
                        Flash::Notice(m) => p.flash.notice role="status" { (m) },
                        Flash::Warning(m) => p.flash.warning role="status" { (m) },
                        Flash::Error(m) => p.flash.error role="alert" { (m) },
                    }
                }
                (body)
            }
        }
        }
    };
    no_store(markup.into_response())
}

/// A page outside a session (sign-in, refusals).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
        (head(title))
        body {
            header.top { a.brand href="/" { "Allot" } }
            main id="main" { h1 { (title) } (body) }
        }
        }
    }
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

/// The page for an API refusal: 404 stays 404 (a customer editing the
/// address to another account's finds nothing), 403 says so.
pub fn failure(signed: &Signed, reply: &Reply) -> Response {
    let (status, title, text) = match reply.status {
        StatusCode::NOT_FOUND => (
            StatusCode::NOT_FOUND,
            "Not found",
            "There is nothing here, or nothing you may see.".to_string(),
        ),
        StatusCode::FORBIDDEN => (
            StatusCode::FORBIDDEN,
            "Not allowed",
            format!("Your key may not open this page: {}", reply.message()),
        ),
        s if s.is_client_error() => (s, "Cannot show this", reply.message()),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The service could not answer; try again.".to_string(),
        ),
    };
    let mut r = page(
        signed.nav(),
        "",
        title,
        html! { p { (text) } p { a href="/" { "Back to the overview" } } },
    );
    *r.status_mut() = status;
    r
}

/// A number, a string or nothing, as text.
/// A stored time as people read it: `2026-11-30 14:05:09` (UTC).
pub fn moment(v: &Value) -> String {
    text(v).replace('T', " ").chars().take(19).collect()
}

pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        other => other.to_string(),
    }
}

pub fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// A gauge of what is used: `used` of `total` (held counts as used).
pub fn gauge(label: &str, used: f64, total: Option<f64>) -> Markup {
    match total {
        Some(t) if t > 0.0 => {
            let pct = (used / t * 100.0).clamp(0.0, 100.0);
            let class = if used >= t {
                "full"
            } else if pct >= 80.0 {
                "near"
            } else {
                "ok"
            };
            html! {
                span.gauge role="meter" aria-label=(label) aria-valuemin="0" aria-valuemax=(t) aria-valuenow=(used.min(t)) {
                    span class=(format!("fill {class}")) style=(format!("width:{pct:.1}%")) {}
                }
            }
        }
        _ => html! { span.muted { "unlimited" } },
    }
}

/// A state as a badge (overage, exhausted, approaching, statuses).
pub fn badge(state: &str) -> Markup {
    html! { span class=(format!("badge b-{}", state.replace(['.', ' '], "-"))) { (state) } }
}

/// Link to an entitlement.
pub fn ent_link(id: &Value, name: &Value) -> Markup {
    let id = id.as_str().unwrap_or_default();
    html! { a href=(format!("/entitlements/{id}")) { (text(name)) } }
}

/// "Next page" link when the listing has a cursor.
pub fn next_link(body: &Value, base: &str, param: &str) -> Markup {
    match body["next_cursor"].as_str() {
        Some(c) => {
            let sep = if base.contains('?') { '&' } else { '?' };
            html! { p { a href=(format!("{base}{sep}{param}={}", super::q(c))) { "Next page →" } } }
        }
        None => html! {},
    }
}

/// Raw markup (an SVG made here).
pub fn raw(s: String) -> Markup {
    PreEscaped(s)
}
