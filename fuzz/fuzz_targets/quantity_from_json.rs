//! `Quantity::from_json` on arbitrary JSON text (numbers, strings, anything):
//! never panics, and an accepted quantity, written as the API writes it in a
//! response, reads back as the same quantity.
#![no_main]

use allot_core::Quantity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let parsed = Quantity::from_json(&value);
    // The Deserialize impl the request types use must agree with from_json.
    let via_serde = serde_json::from_value::<Quantity>(value.clone()).ok();
    assert_eq!(
        parsed.clone().ok(),
        via_serde,
        "from_json and Deserialize disagree on {value}"
    );
    if let Ok(q) = parsed {
        let written = serde_json::to_value(q).expect("a quantity serializes");
        assert_eq!(
            Quantity::from_json(&written),
            Ok(q),
            "{value} parsed to {q:?}, written as {written}"
        );
    }
});
