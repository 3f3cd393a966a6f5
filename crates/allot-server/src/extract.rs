//! Request parsing at the edge: JSON bodies and query strings become typed
//! values or a 4xx naming the field, never a 500.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use allot_store::ids::TypedId;

use crate::error::ApiError;

/// A JSON body. Syntax errors are 400 `malformed_json`; a well-formed body
/// of the wrong shape is 422 naming the field.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("application/json")
            });
        if json_type == Some(false) {
            return Err(ApiError::BadRequest {
                code: "unsupported_media_type",
                message: "Content-Type must be application/json".into(),
            });
        }
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The whole body, within the server's size limit.
pub async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::BadRequest {
                code: "unreadable_body",
                message: "the request body could not be read".into(),
            }
        }
    })
}

/// A body that may be absent: the default then, else parsed like any other.
pub fn parse_optional_json<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(bytes)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest {
            code: "malformed_json",
            message: "a JSON body is required".into(),
        });
    }
    // serde reads a struct from an array too (`[null]` as a body of optional
    // fields); every body of this API is an object.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(
        first,
        Some(b'[' | b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9')
    ) {
        return Err(ApiError::field("body", "must be a JSON object"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(value) => Ok(value),
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            if inner.is_syntax() || inner.is_eof() || inner.is_io() {
                return Err(ApiError::BadRequest {
                    code: "malformed_json",
                    message: format!("malformed JSON: {inner}"),
                });
            }
            let message = strip_position(&inner.to_string());
            let field = match named_field(&message) {
                // serde_path_to_error already ends the path with an unknown field's name.
                Some(f) if path == f || path.ends_with(&format!(".{f}")) => path.clone(),
                Some(f) => join_path(&path, &f),
                None => display_path(&path),
            };
            Err(ApiError::field(&field, message))
        }
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// serde reports unknown and missing fields against the enclosing object;
/// the client wants the field's own name.
fn named_field(message: &str) -> Option<String> {
    for prefix in ["unknown field `", "missing field `", "duplicate field `"] {
        if let Some(rest) = message.strip_prefix(prefix) {
            return rest.split('`').next().map(str::to_string);
        }
    }
    None
}

fn display_path(path: &str) -> String {
    if path == "." || path.is_empty() {
        "body".to_string()
    } else {
        path.to_string()
    }
}

fn join_path(path: &str, field: &str) -> String {
    if path == "." || path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// Query parameters, read one by one so each failure names its parameter.
pub struct Query(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(raw).map_err(|_| ApiError::BadRequest {
                code: "malformed_query",
                message: "the query string could not be read".into(),
            })?;
        Ok(Query(pairs.into_iter().collect()))
    }
}

/// Most rows one page may hold.
pub const MAX_LIMIT: u32 = 1000;
pub const DEFAULT_LIMIT: u32 = 100;
/// Longest cursor this service issues (an id) and accepts.
pub const MAX_CURSOR: usize = 128;

/// The paging parameters of every listing, as the document states them
/// (the bounds are `MAX_LIMIT` and `MAX_CURSOR`, checked in `Query::page`
/// and by the OpenAPI test).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageParams {
    /// Rows per page; 100 when absent.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 128)]
    cursor: Option<String>,
}

impl Query {
    /// A parameter as given; an empty value is a value (`?status=` is not
    /// "any status"), so a filter refuses it like any other bad value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn page(&self) -> Result<allot_store::model::Page, ApiError> {
        let limit = match self.get("limit") {
            None => DEFAULT_LIMIT,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::field(
                        "limit",
                        format!("must be a whole number from 1 to {MAX_LIMIT}"),
                    ))
                }
            },
        };
        let after = self
            .get("cursor")
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        if after
            .as_ref()
            .is_some_and(|c| c.chars().count() > MAX_CURSOR)
        {
            return Err(ApiError::field(
                "cursor",
                "is not a cursor this service issued",
            ));
        }
        Ok(allot_store::model::Page { after, limit })
    }
}

/// The id in a path, parsed into its kind: a malformed one names nothing and
/// is a 404 for that kind before any query runs.
pub struct PathId<T>(pub T);

impl<S: Send + Sync, T: TypedId + Send> FromRequestParts<S> for PathId<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::not_found(T::NOUN, ""))?;
        T::parse(&raw)
            .map(PathId)
            .ok_or_else(|| ApiError::not_found(T::NOUN, &raw))
    }
}
