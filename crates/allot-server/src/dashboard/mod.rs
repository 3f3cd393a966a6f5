//! The web dashboard: server-rendered pages at `/`, one module per page.
//!
//! Pages read and write through the API's own handlers, called in process
//! (`Dash::call`) with the signed-in key's `Principal`: the same permission
//! checks, the same customer confinement (another account's page is the
//! API's 404), the same write path for a case opened here as for
//! `POST /v1/cases`. No rule is decided twice. Each page makes a fixed
//! number of such calls, whatever the data size.

mod accounts;
mod admin;
mod agent;
mod case;
mod entitlement;
mod layout;
mod overview;
mod reports;
pub mod session;
mod signin;
mod software;
mod svg;
mod timing;

use std::collections::HashMap;

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::Value;
use tower::ServiceExt;

use crate::auth::{hash_secret, Principal};
use crate::state::AppState;
use session::{Flash, Sessions};

pub use layout::Nav;

/// What every page handler shares: the API's routes (without the bearer
/// layer: the dashboard resolves the key itself) and the sessions.
#[derive(Clone)]
pub struct Dash {
    api: Router,
    sessions: Sessions,
}

/// The dashboard's routes; `api` is the `/v1` router with its state.
pub fn router(api: Router) -> Router<AppState> {
    let dash = Dash {
        api,
        sessions: Sessions::default(),
    };
    Router::new()
        .route("/", get(overview::page))
        .route("/sign-in", get(signin::form).post(signin::submit))
        .route("/sign-out", post(signin::sign_out))
        .route("/accounts", get(accounts::list))
        .route("/accounts/{id}", get(accounts::page))
        .route("/entitlements/{id}", get(entitlement::page))
        .route("/entitlements/{id}/lifecycle", post(entitlement::lifecycle))
        .route("/entitlements/{id}/adjust", post(entitlement::adjust))
        .route("/agent", get(agent::page))
        .route("/agent/cases", post(agent::open_case))
        .route("/cases/{id}", get(case::page))
        .route("/cases/{id}/action", post(case::action))
        .route("/cases/{id}/time", post(case::time))
        .route("/reports", get(reports::page))
        .route("/reports/download", get(reports::download))
        .route("/webhooks", get(admin::webhooks))
        .route("/audit", get(admin::audit))
        .route("/assets/style.css", get(layout::stylesheet))
        .route("/software", get(software::list))
        .route("/software/{id}", get(software::page))
        .layer(axum::middleware::from_fn(timing::server_timing))
        .layer(Extension(dash))
}

/// The signed-in caller of a page.
pub struct Signed {
    pub principal: Principal,
    pub csrf: String,
    pub flash: Option<Flash>,
    session_id: String,
    pub dash: Dash,
    calls: timing::Calls,
}

impl Signed {
    pub fn nav(&self) -> Nav<'_> {
        Nav {
            principal: &self.principal,
            csrf: &self.csrf,
            flash: self.flash.as_ref(),
        }
    }

    /// A message for the next page this session shows.
    pub fn flash(&self, flash: Flash) {
        self.dash.sessions.flash(&self.session_id, flash);
    }

    /// Counts a store read the page makes itself (not through the API).
    pub fn store_call(&self) {
        self.calls.count();
    }

    /// Calls the API as the signed-in key.
    pub async fn call(&self, method: Method, uri: &str, body: Option<&Value>) -> Reply {
        self.call_keyed(method, uri, body, None).await
    }

    /// Calls the API with an `Idempotency-Key` (a form's own, so sending it
    /// twice changes nothing twice).
    pub async fn call_keyed(
        &self,
        method: Method,
        uri: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(k) = key.filter(|k| !k.is_empty() && k.len() <= 128) {
            req = req.header(crate::idempotency::HEADER, format!("dashboard-{k}"));
        }
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let mut req = match req.body(body) {
            Ok(r) => r,
            Err(e) => return Reply::failed(e.to_string()),
        };
        req.extensions_mut().insert(self.principal.clone());
        if let Some(id) = &self.principal.request_id {
            req.extensions_mut()
                .insert(crate::request_id::RequestId(id.clone()));
        }
        self.calls.count();
        let response = match self.dash.api.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = response.status();
        let csv = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/csv"));
        let bytes = to_bytes(response.into_body(), 64 << 20)
            .await
            .unwrap_or_default();
        if csv {
            return Reply {
                status,
                body: Value::Null,
                raw: bytes.to_vec(),
            };
        }
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            raw: Vec::new(),
        }
    }

    /// A GET whose failure ends the page (404 stays 404: another account's
    /// objects do not exist for a customer).
    pub async fn get(&self, uri: &str) -> Result<Value, Response> {
        let reply = self.call(Method::GET, uri, None).await;
        if reply.status.is_success() {
            Ok(reply.body)
        } else {
            Err(layout::failure(self, &reply))
        }
    }
}

/// What the API answered.
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    /// A CSV answer's bytes.
    pub raw: Vec<u8>,
}

impl Reply {
    fn failed(detail: String) -> Reply {
        tracing::error!(%detail, "dashboard call");
        Reply {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: Value::Null,
            raw: Vec::new(),
        }
    }

    /// The API's error message (its code's text), for a person.
    pub fn message(&self) -> String {
        let e = &self.body["error"];
        let mut m = e["message"]
            .as_str()
            .unwrap_or("the request failed")
            .to_string();
        if let Some(details) = e["details"].as_object() {
            if let Some(field) = details.get("field").and_then(Value::as_str) {
                m = format!("{m} ({field})");
            }
        }
        m
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let to_sign_in = || Redirect::to("/sign-in").into_response();
        let dash = parts
            .extensions
            .get::<Dash>()
            .cloned()
            .ok_or_else(to_sign_in)?;
        let id = session::cookie(&parts.headers, session::COOKIE)
            .ok_or_else(to_sign_in)?
            .to_string();
        let now = state.clock.now();
        let live = dash.sessions.touch(&id, now).ok_or_else(to_sign_in)?;
        let calls = parts
            .extensions
            .get::<timing::Calls>()
            .cloned()
            .unwrap_or_default();
        calls.count();
        // The key or user again: revoked or disabled ends the session.
        let found = match &live.owner {
            session::Owner::Key(hash) => state.store.api_key_by_hash(hash).await.map(|k| {
                k.filter(|k| k.revoked_at.is_none())
                    .map(|k| (k.id, k.role, k.account_id))
            }),
            session::Owner::User(id) => state.store.user_by_id(id).await.map(|u| {
                u.filter(|u| u.disabled_at.is_none())
                    .map(|u| (u.id, u.role, u.account_id))
            }),
        };
        let (actor, role, account_id) = match found {
            Ok(Some(who)) => who,
            Ok(None) => {
                dash.sessions.end(&id);
                return Err(to_sign_in());
            }
            Err(e) => {
                tracing::error!(error = %e, "dashboard session owner");
                return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
            }
        };
        let request_id = parts
            .extensions
            .get::<crate::request_id::RequestId>()
            .map(|r| r.0.clone());
        Ok(Signed {
            principal: Principal {
                key_id: actor,
                role,
                account_id,
                request_id,
            },
            csrf: live.csrf,
            flash: live.flash,
            session_id: id,
            dash,
            calls,
        })
    }
}

/// A form's fields, after its CSRF token was checked: a POST without the
/// session's token is refused (403) before anything else is read.
pub struct Form(pub HashMap<String, String>);

impl Form {
    pub fn parse(signed: &Signed, body: &[u8]) -> Result<Form, Refused> {
        let fields: HashMap<String, String> =
            serde_urlencoded::from_bytes(body).map_err(|_| Refused)?;
        match fields.get("csrf") {
            Some(t) if session::same_secret(t, &signed.csrf) => Ok(Form(fields)),
            _ => Err(Refused),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
    }
}

/// A form without the session's CSRF token: 403, nothing read or done.
pub struct Refused;

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        refused_csrf()
    }
}

fn refused_csrf() -> Response {
    (
        StatusCode::FORBIDDEN,
        layout::bare(
            "Refused",
            maud::html! { p { "This form was not sent from a page of this dashboard (its security token is missing or stale). Go back, reload the page and try again." } },
        ),
    )
        .into_response()
}

/// Percent-encodes a query value.
pub fn q(value: &str) -> String {
    serde_urlencoded::to_string([("", value)])
        .map(|s| s.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

/// Where to go after a form: the same page, read again.
pub fn back(to: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The signed-in key's hash, for a new session.
pub fn key_hash(secret: &str) -> String {
    hash_secret(secret)
}
