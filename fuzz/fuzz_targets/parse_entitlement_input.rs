//! An entitlement body as POST /v1/entitlements reads it:
//! `parse_json::<EntitlementInput>`, then `into_terms` (the domain checks),
//! then the error answer. Never panics.
#![no_main]

use allot_server::extract::parse_json;
use allot_server::inputs::EntitlementInput;
use axum::response::IntoResponse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let result = parse_json::<EntitlementInput>(data).and_then(EntitlementInput::into_terms);
    if let Err(err) = result {
        let response = err.into_response();
        assert!(
            response.status().is_client_error(),
            "a bad body answered {}",
            response.status()
        );
    }
});
