//! Sign-in with an API key or as a person (email and password), and
//! sign-out.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use maud::html;

use super::layout::bare;
use super::session::{self, behind_tls, cookie, same_secret, set_cookie, Owner};
use super::{Dash, Form, Signed};
use crate::auth::{allows, hash_secret, Permission};
use crate::state::AppState;

fn form_page(token: &str, error: Option<&str>) -> maud::Markup {
    bare(
        "Sign in",
        html! {
            @if let Some(e) = error { p.flash.error role="alert" { (e) } }
            form.stack id="sign-in-password" method="post" action="/sign-in" aria-label="With your email" {
                input type="hidden" name="csrf" value=(token);
                label for="email" { "Email" }
                input id="email" name="email" type="email" autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
            p.muted { "People get an account from an administrator (" code { "allot users create" } ")." }
            form.stack id="sign-in-key" method="post" action="/sign-in" aria-label="With an API key" {
                input type="hidden" name="csrf" value=(token);
                label for="key" { "Or an API key" }
                input id="key" name="key" type="password" autocomplete="off" required;
                button type="submit" { "Sign in with the key" }
            }
            p.muted { "Sign in with an Allot API key (" code { "allot keys create" } " makes one; " code { "allot demo" } " prints one). The key is checked and forgotten: the browser keeps only a session, which ends after 30 minutes without use or when you sign out." }
        },
    )
}

/// The one answer to a wrong email or password, whichever it was.
const NO_MATCH: &str = "That email and password do not match an active account.";

/// The sign-in form, with a fresh token for its own CSRF cookie.
pub async fn form(headers: HeaderMap, uri: Uri) -> Response {
    let token = session::token();
    let secure = behind_tls(&headers, &uri);
    (
        [
            (
                header::SET_COOKIE,
                set_cookie(session::SIGNIN_COOKIE, &token, secure, Some(900)),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        form_page(&token, None),
    )
        .into_response()
}

fn refused(status: StatusCode, message: &str, headers: &HeaderMap, uri: &Uri) -> Response {
    let token = session::token();
    let secure = behind_tls(headers, uri);
    (
        status,
        [(
            header::SET_COOKIE,
            set_cookie(session::SIGNIN_COOKIE, &token, secure, Some(900)),
        )],
        form_page(&token, Some(message)),
    )
        .into_response()
}

pub async fn submit(
    State(state): State<AppState>,
    Extension(dash): Extension<Dash>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let fields: std::collections::HashMap<String, String> =
        serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let expected = cookie(&headers, session::SIGNIN_COOKIE).unwrap_or("");
    let sent = fields.get("csrf").map(String::as_str).unwrap_or("");
    if expected.is_empty() || !same_secret(expected, sent) {
        return refused(
            StatusCode::FORBIDDEN,
            "The form expired or was not sent from this page: try again.",
            &headers,
            &uri,
        );
    }
    let owner = if let Some(email) = fields.get("email").filter(|e| !e.trim().is_empty()) {
        let password = fields.get("password").map(String::as_str).unwrap_or("");
        if password.len() > crate::people::MAX_PASSWORD * 4 {
            return refused(StatusCode::UNAUTHORIZED, NO_MATCH, &headers, &uri);
        }
        match crate::people::sign_in(state.store.as_ref(), email, password).await {
            Ok(Some(user)) if allows(user.role, Permission::Read) => Owner::User(user.id),
            Ok(Some(_)) => {
                return refused(
                    StatusCode::FORBIDDEN,
                    "This account may not read: the dashboard has nothing to show it.",
                    &headers,
                    &uri,
                )
            }
            Ok(None) => return refused(StatusCode::UNAUTHORIZED, NO_MATCH, &headers, &uri),
            Err(e) => {
                tracing::error!(error = %e, "dashboard sign-in");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        }
    } else {
        match key_owner(&state, fields.get("key")).await {
            Ok(owner) => owner,
            Err((status, message)) if status == StatusCode::SERVICE_UNAVAILABLE => {
                tracing::error!(error = %message, "dashboard sign-in");
                return status.into_response();
            }
            Err((status, message)) => return refused(status, &message, &headers, &uri),
        }
    };
    let id = dash.sessions.start(owner, state.clock.now());
    let secure = behind_tls(&headers, &uri);
    let mut r = Redirect::to("/").into_response();
    let h = r.headers_mut();
    if let Ok(v) = set_cookie(session::COOKIE, &id, secure, None).parse() {
        h.append(header::SET_COOKIE, v);
    }
    if let Ok(v) = set_cookie(session::SIGNIN_COOKIE, "", secure, Some(0)).parse() {
        h.append(header::SET_COOKIE, v);
    }
    r
}

/// The session owner of an API key that may read, or why not.
async fn key_owner(state: &AppState, key: Option<&String>) -> Result<Owner, (StatusCode, String)> {
    let secret = key.map(|k| k.trim()).unwrap_or("");
    if secret.is_empty() || secret.len() > 256 {
        return Err((StatusCode::UNAUTHORIZED, "Enter an API key.".into()));
    }
    let hash = hash_secret(secret);
    match state.store.api_key_by_hash(&hash).await {
        Ok(Some(k)) if k.revoked_at.is_none() => {
            if allows(k.role, Permission::Read) {
                Ok(Owner::Key(hash))
            } else {
                Err((
                    StatusCode::FORBIDDEN,
                    "This key may not read (an integration key): the dashboard has nothing to show it."
                        .into(),
                ))
            }
        }
        Ok(_) => Err((
            StatusCode::UNAUTHORIZED,
            "That key is unknown or revoked.".into(),
        )),
        Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

pub async fn sign_out(signed: Signed, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    if let Err(r) = Form::parse(&signed, &body) {
        return r.into_response();
    }
    signed.dash.sessions.end(&signed.session_id);
    let secure = behind_tls(&headers, &uri);
    (
        [(
            header::SET_COOKIE,
            set_cookie(session::COOKIE, "", secure, Some(0)),
        )],
        Redirect::to("/sign-in"),
    )
        .into_response()
}
