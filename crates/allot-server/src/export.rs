//! CSV export of every list and report: `Accept: text/csv` or
//! `?format=csv` (`csv_response::Format`) on any `GET` whose answer is a
//! listing (`{"items", "next_cursor"}` in the document) answers the whole
//! list as one streamed CSV file, with the same filters as the JSON.
//!
//! It is a layer over the routes: it runs the route itself page after page
//! (the same request, `cursor` moved on each time, so the same
//! authentication, permissions and filters), and writes each page's rows
//! as it comes; memory holds one page. A route that answers CSV itself
//! (the reports, `csv_response.rs`) is followed by its `next-cursor`
//! header, its pages' lines passed on as they are; a JSON route's items
//! are flattened under header names taken from the document's schema of
//! its items: the JSON field names, nested ones dotted (`balance.used`),
//! a list one cell of JSON. An error on the first page is answered as it
//! is; one later cuts the body short (the client sees an incomplete
//! transfer, never a silently short file).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tower::{Layer, Service, ServiceExt};
use utoipa::openapi::schema::{ArrayItems, Schema};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::OpenApi;

use crate::csv_response::{Format, NEXT_CURSOR};
use crate::error::ApiError;
use crate::extract::{Query, MAX_LIMIT};

/// Marks a page request of the export: a route that can answer its whole
/// list in one ordered pass (`csv_response::streamed`) may do so instead
/// of a page, and then sends no `next-cursor`.
#[derive(Debug, Clone, Copy)]
pub struct WholeList;

/// A listing route: its path template's segments and its CSV columns.
#[derive(Debug)]
struct Listing {
    segments: Vec<String>,
    columns: Vec<String>,
}

/// Every listing route of the document, with its columns.
fn listings() -> &'static [Listing] {
    static LISTINGS: OnceLock<Vec<Listing>> = OnceLock::new();
    LISTINGS.get_or_init(|| {
        let doc = crate::openapi::ApiDoc::openapi();
        let mut out = Vec::new();
        for (path, item) in doc.paths.paths.iter() {
            let Some(get) = &item.get else { continue };
            let Some(RefOr::T(ok)) = get.responses.responses.get("200") else {
                continue;
            };
            let Some(schema) = ok
                .content
                .get("application/json")
                .and_then(|c| c.schema.as_ref())
            else {
                continue;
            };
            if let Some(item) = listed_item(&doc, schema) {
                let mut columns = Vec::new();
                flatten(&doc, item, "", 0, &mut columns);
                out.push(Listing {
                    segments: path.split('/').map(str::to_string).collect(),
                    columns,
                });
            }
        }
        out
    })
}

/// Follows `$ref`s to the schema itself.
fn resolve<'d>(doc: &'d Document, schema: &'d RefOr<Schema>) -> Option<&'d Schema> {
    match schema {
        RefOr::T(s) => Some(s),
        RefOr::Ref(r) => {
            let name = r.ref_location.rsplit('/').next()?;
            let found = doc.components.as_ref()?.schemas.get(name)?;
            resolve(doc, found)
        }
    }
}

/// The schema of a listing's items: `{"items": [item], "next_cursor"}`.
fn listed_item<'d>(doc: &'d Document, schema: &'d RefOr<Schema>) -> Option<&'d RefOr<Schema>> {
    let Schema::Object(listing) = resolve(doc, schema)? else {
        return None;
    };
    if !listing.properties.contains_key("next_cursor") {
        return None;
    }
    match resolve(doc, listing.properties.get("items")?)? {
        Schema::Array(array) => match &array.items {
            ArrayItems::RefOrSchema(item) => Some(item),
            ArrayItems::False => None,
        },
        _ => None,
    }
}

fn is_null(doc: &Document, schema: &RefOr<Schema>) -> bool {
    matches!(resolve(doc, schema), Some(Schema::Object(o))
        if o.schema_type == utoipa::openapi::schema::SchemaType::Type(utoipa::openapi::Type::Null))
}

/// The dotted names of the leaves of an item's schema, in its order.
fn flatten(
    doc: &Document,
    schema: &RefOr<Schema>,
    prefix: &str,
    depth: usize,
    out: &mut Vec<String>,
) {
    let leaf = |out: &mut Vec<String>| {
        if !prefix.is_empty() {
            out.push(prefix.to_string());
        }
    };
    if depth > 4 {
        return leaf(out);
    }
    match resolve(doc, schema) {
        Some(Schema::Object(object)) if !object.properties.is_empty() => {
            for (name, property) in &object.properties {
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                flatten(doc, property, &path, depth + 1, out);
            }
        }
        Some(Schema::AllOf(all)) => {
            for part in &all.items {
                flatten(doc, part, prefix, depth + 1, out);
            }
        }
        // A nullable object (`null` or the object): its fields.
        Some(Schema::OneOf(one)) => {
            let real: Vec<&RefOr<Schema>> = one.items.iter().filter(|s| !is_null(doc, s)).collect();
            match real.as_slice() {
                [only] if !prefix.is_empty() => flatten(doc, only, prefix, depth + 1, out),
                _ => leaf(out),
            }
        }
        _ => leaf(out),
    }
}

/// The listing route `path` names, if any.
fn listing_of(path: &str) -> Option<&'static Listing> {
    let segments: Vec<&str> = path.split('/').collect();
    listings().iter().find(|l| {
        l.segments.len() == segments.len()
            && l.segments
                .iter()
                .zip(&segments)
                .all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
    })
}

/// One JSON value as a CSV cell.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The layer: wraps the `/v1` routes.
#[derive(Clone, Default)]
pub struct CsvExportLayer;

impl<S> Layer<S> for CsvExportLayer {
    type Service = CsvExport<S>;
    fn layer(&self, inner: S) -> CsvExport<S> {
        CsvExport { inner }
    }
}

#[derive(Clone)]
pub struct CsvExport<S> {
    inner: S,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S> Service<Request> for CsvExport<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> BoxFuture {
        let wanted = req.method() == Method::GET && listing_of(req.uri().path()).is_some() && {
            let query = query_of(req.uri());
            matches!(Format::of(&query, req.headers()), Ok(Format::Csv))
        };
        if !wanted {
            let future = self.inner.call(req);
            return Box::pin(future);
        }
        let inner = self.inner.clone();
        Box::pin(async move { Ok(export(inner, req).await) })
    }
}

fn query_of(uri: &Uri) -> Query {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    Query(pairs.into_iter().collect())
}

/// The request for one page: the client's, `cursor` set, JSON unless the
/// route answers CSV itself.
fn page_request(parts: &axum::http::request::Parts, cursor: Option<&str>, csv: bool) -> Request {
    let mut pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(parts.uri.query().unwrap_or("")).unwrap_or_default();
    pairs.retain(|(k, _)| k != "cursor" && k != "format");
    if !pairs.iter().any(|(k, _)| k == "limit") {
        pairs.push(("limit".into(), MAX_LIMIT.to_string()));
    }
    if let Some(cursor) = cursor {
        pairs.push(("cursor".into(), cursor.to_string()));
    }
    if csv {
        pairs.push(("format".into(), "csv".into()));
    }
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    let uri = format!("{}?{query}", parts.uri.path());
    let mut builder = Request::builder().method(Method::GET).uri(uri);
    for (name, value) in parts.headers.iter() {
        if name != ACCEPT {
            builder = builder.header(name, value);
        }
    }
    let accept = if csv { "text/csv" } else { "application/json" };
    let mut req = builder
        .header(ACCEPT, accept)
        .body(Body::empty())
        .unwrap_or_default();
    *req.extensions_mut() = parts.extensions.clone();
    req.extensions_mut().insert(WholeList);
    req
}

async fn body_bytes(response: Response) -> Option<Bytes> {
    axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
        .await
        .ok()
}

/// One page of a JSON listing as CSV lines, and the next cursor.
fn json_page(bytes: &[u8], columns: &[String]) -> Option<(Vec<u8>, Option<String>)> {
    let page: Value = serde_json::from_slice(bytes).ok()?;
    let items = page.get("items")?.as_array()?;
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for item in items {
        let cells = columns.iter().map(|c| {
            let pointer = format!("/{}", c.replace('.', "/"));
            cell(item.pointer(&pointer))
        });
        out.write_record(cells).ok()?;
    }
    let next = page
        .get("next_cursor")
        .and_then(Value::as_str)
        .map(str::to_string);
    Some((out.into_inner().ok()?, next))
}

/// Drops a CSV text's first line (a later page's header).
fn without_header(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|b| *b == b'\n') {
        Some(i) => &bytes[i + 1..],
        None => &[],
    }
}

async fn export<S>(inner: S, req: Request) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let Some(listing) = listing_of(req.uri().path()) else {
        return ApiError::Internal("export of a route that is no listing".into()).into_response();
    };
    let (parts, _) = req.into_parts();
    // The first page decides: an error is answered as it is; a CSV answer
    // means the route pages CSV itself.
    let first = match inner
        .clone()
        .oneshot(page_request(&parts, query_cursor(&parts).as_deref(), true))
        .await
    {
        Ok(r) => r,
        Err(never) => match never {},
    };
    if first.status() != StatusCode::OK {
        return first;
    }
    let native = first
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv"));
    // A route's own CSV without a next page is the whole file already.
    if native && !first.headers().contains_key(NEXT_CURSOR) {
        return first;
    }
    let columns = Arc::new(listing.columns.clone());
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::spawn(async move {
        let fail = |what: &str| Err(std::io::Error::other(what.to_string()));
        if !native {
            let mut header = csv::Writer::from_writer(Vec::new());
            let _ = header.write_record(columns.iter());
            let bytes = header.into_inner().unwrap_or_default();
            if tx.send(Ok(Bytes::from(bytes))).await.is_err() {
                return;
            }
        }
        let mut response = first;
        let mut pages = 0u64;
        loop {
            pages += 1;
            let next_header = response
                .headers()
                .get(NEXT_CURSOR)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let Some(bytes) = body_bytes(response).await else {
                let _ = tx.send(fail("a page could not be read")).await;
                return;
            };
            let (lines, next) = if native {
                let lines = if pages == 1 {
                    bytes.to_vec()
                } else {
                    without_header(&bytes).to_vec()
                };
                (lines, next_header)
            } else {
                match json_page(&bytes, &columns) {
                    Some(page) => page,
                    None => {
                        let _ = tx.send(fail("a page was not a listing")).await;
                        return;
                    }
                }
            };
            if tx.send(Ok(Bytes::from(lines))).await.is_err() {
                return;
            }
            let Some(cursor) = next else { return };
            let request = page_request(&parts, Some(&cursor), native);
            response = match inner.clone().oneshot(request).await {
                Ok(r) if r.status() == StatusCode::OK => r,
                _ => {
                    let _ = tx.send(fail("a later page failed")).await;
                    return;
                }
            };
        }
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut response = Response::new(Body::from_stream(stream.boxed()));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    response
}

/// The cursor the client asked to start from.
fn query_cursor(parts: &axum::http::request::Parts) -> Option<String> {
    query_of(&parts.uri).0.get("cursor").cloned()
}

/// The columns of each listing route (for the document and tests).
pub fn columns() -> HashMap<String, Vec<String>> {
    listings()
        .iter()
        .map(|l| (l.segments.join("/"), l.columns.clone()))
        .collect()
}
