//! Lists and reports as CSV: `Accept: text/csv` or `?format=csv`. The
//! header names are the JSON field names and each line is one JSON item,
//! so a spreadsheet and a program read the same page. The page is the same
//! as the JSON one; the cursor of the next page is in the `next-cursor`
//! header (absent on the last page).

use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
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
    let internal = |e: csv::Error| ApiError::Internal(format!("csv: {e}"));
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    out.write_record(T::COLUMNS).map_err(internal)?;
    for row in rows {
        out.serialize(row).map_err(internal)?;
    }
    let bytes = out
        .into_inner()
        .map_err(|e| ApiError::Internal(format!("csv: {e}")))?;
    String::from_utf8(bytes).map_err(|e| ApiError::Internal(format!("csv: {e}")))
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
