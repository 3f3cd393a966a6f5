//! A usage body as POST /v1/entitlements/{id}/usage reads it before the write
//! path: `parse_json::<RecordUsage>`, then the text checks, then the error
//! answer. Never panics.
#![no_main]

use allot_server::error::ApiError;
use allot_server::extract::parse_json;
use allot_server::inputs::{short_text, RecordUsage};
use axum::response::IntoResponse;
use libfuzzer_sys::fuzz_target;

fn edge(data: &[u8]) -> Result<(), ApiError> {
    let input: RecordUsage = parse_json(data)?;
    short_text("reference", &input.reference)?;
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
