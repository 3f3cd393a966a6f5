//! Lists and reports as CSV: `Accept: text/csv` or `?format=csv`. The
//! header names are the JSON field names and each line is one JSON item,
//! so a spreadsheet and a program read the same page. The page is the same
//! as the JSON one; the cursor of the next page is in the `next-cursor`
//! header (absent on the last page).

use std::future::Future;
use std::marker::PhantomData;

use axum::body::{Body, Bytes};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tokio::sync::mpsc;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::views::Listing;

/// The header carrying the next page's cursor on a CSV answer.
pub const NEXT_CURSOR: &str = "next-cursor";

/// A flat row: every field a string, number, boolean, date or null, named
/// in `COLUMNS` in the order it serializes.
pub trait CsvRow: Serialize {
    const COLUMNS: &'static [&'static str];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    /// `?format=` wins over `Accept`; JSON unless CSV is asked for.
    pub fn of(query: &Query, headers: &HeaderMap) -> ApiResult<Format> {
        match query.get("format") {
            Some("csv") => return Ok(Format::Csv),
            Some("json") => return Ok(Format::Json),
            Some(_) => return Err(ApiError::field("format", "must be json or csv")),
            None => {}
        }
        let accepts_csv = headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|media| {
                media
                    .split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv"))
            });
        Ok(if accepts_csv {
            Format::Csv
        } else {
            Format::Json
        })
    }
}

/// The page in the format asked for.
pub fn respond<T: CsvRow + ToSchema>(format: Format, page: Listing<T>) -> ApiResult<Response> {
    match format {
        Format::Json => Ok(Json(page).into_response()),
        Format::Csv => {
            let body = csv_text(&page.items)?;
            let mut response = (StatusCode::OK, body).into_response();
            let headers = response.headers_mut();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            if let Some(cursor) = page
                .next_cursor
                .and_then(|c| HeaderValue::from_str(&c).ok())
            {
                headers.insert(NEXT_CURSOR, cursor);
            }
            Ok(response)
        }
    }
}

/// The header line, then one line per row.
pub fn csv_text<T: CsvRow>(rows: &[T]) -> ApiResult<String> {
    let mut bytes = csv_lines::<&str>(&[], Some(T::COLUMNS))?;
    bytes.extend(csv_lines(rows, None)?);
    String::from_utf8(bytes).map_err(|e| ApiError::Internal(format!("csv: {e}")))
}

/// `header` (when given), then one line per row.
fn csv_lines<T: Serialize>(rows: &[T], header: Option<&[&str]>) -> ApiResult<Vec<u8>> {
    let internal = |e: csv::Error| ApiError::Internal(format!("csv: {e}"));
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    if let Some(header) = header {
        out.write_record(header).map_err(internal)?;
    }
    for row in rows {
        out.serialize(row).map_err(internal)?;
    }
    out.into_inner()
        .map_err(|e| ApiError::Internal(format!("csv: {e}")))
}

/// Where a streamed CSV answer's rows go (`streamed`).
pub struct RowSink<T> {
    lines: mpsc::Sender<Result<Bytes, std::io::Error>>,
    rows: PhantomData<fn(T)>,
}

impl<T: CsvRow> RowSink<T> {
    /// Writes `rows` as lines; `false` once the client has gone.
    pub async fn send(&self, rows: &[T]) -> ApiResult<bool> {
        let bytes = csv_lines(rows, None)?;
        Ok(self.lines.send(Ok(Bytes::from(bytes))).await.is_ok())
    }
}

/// A whole CSV list in one answer, its lines written as `produce` sends
/// them (memory holds what it sends at a time), without a `next-cursor`.
/// An error of `produce` cuts the body short: the client sees an
/// incomplete transfer, never a silently short file.
pub fn streamed<T, F, Fut>(produce: F) -> Response
where
    T: CsvRow + Send + 'static,
    F: FnOnce(RowSink<T>) -> Fut,
    Fut: Future<Output = ApiResult<()>> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    let header = csv_lines::<&str>(&[], Some(T::COLUMNS));
    let failed = tx.clone();
    let work = produce(RowSink {
        lines: tx.clone(),
        rows: PhantomData,
    });
    tokio::spawn(async move {
        let outcome = match header {
            Ok(header) => match tx.send(Ok(Bytes::from(header))).await {
                Ok(()) => work.await,
                Err(_) => Ok(()),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            let _ = failed.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        name: String,
        total: Option<allot_core::Quantity>,
        on: chrono::NaiveDate,
        active: bool,
    }

    impl CsvRow for Row {
        const COLUMNS: &'static [&'static str] = &["name", "total", "on", "active"];
    }

    #[test]
    fn rows_are_lines_under_their_field_names() {
        let rows = [
            Row {
                name: "Gold, \"plus\"".into(),
                total: Some(allot_core::Quantity::from_milli(1500)),
                on: chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
                active: true,
            },
            Row {
                name: "Silver".into(),
                total: None,
                on: chrono::NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
                active: false,
            },
        ];
        assert_eq!(
            csv_text(&rows).unwrap(),
            "name,total,on,active\n\"Gold, \"\"plus\"\"\",1.5,2026-03-01,true\nSilver,,2026-04-01,false\n"
        );
        assert_eq!(csv_text::<Row>(&[]).unwrap(), "name,total,on,active\n");
    }

    fn query(pairs: &[(&str, &str)]) -> Query {
        Query(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn csv_is_asked_for_by_format_or_accept() {
        let mut accept = HeaderMap::new();
        accept.insert(
            ACCEPT,
            HeaderValue::from_static("application/json;q=0.5, text/csv"),
        );
        let none = HeaderMap::new();
        assert_eq!(Format::of(&query(&[]), &none).unwrap(), Format::Json);
        assert_eq!(Format::of(&query(&[]), &accept).unwrap(), Format::Csv);
        assert_eq!(
            Format::of(&query(&[("format", "csv")]), &none).unwrap(),
            Format::Csv
        );
        assert_eq!(
            Format::of(&query(&[("format", "json")]), &accept).unwrap(),
            Format::Json
        );
        assert!(Format::of(&query(&[("format", "xml")]), &none).is_err());
    }
}
