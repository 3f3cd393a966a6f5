//! A case body as POST /v1/cases reads it before touching the store:
//! `parse_json::<OpenCase>`, then the text checks, then the error answer.
//! Never panics.
#![no_main]

use allot_server::error::ApiError;
use allot_server::extract::parse_json;
use allot_server::inputs::{short_text, text, OpenCase, MAX_TEXT};
use axum::response::IntoResponse;
use libfuzzer_sys::fuzz_target;

fn edge(data: &[u8]) -> Result<(), ApiError> {
    let input: OpenCase = parse_json(data)?;
    text("title", &input.title, MAX_TEXT)?;
    short_text("channel", &input.channel)?;
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    if let Err(err) = edge(data) {
        let response = err.into_response();
        assert!(
            response.status().is_client_error(),
            "a bad body answered {}",
            response.status()
        );
    }
});
