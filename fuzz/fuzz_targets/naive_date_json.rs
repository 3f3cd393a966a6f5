//! Dates as the API reads them: `chrono::NaiveDate` deserialized by serde
//! from JSON (`"start_date": "2026-01-01"`). Arbitrary JSON text, and
//! arbitrary text as a JSON string; never panics, and an accepted date
//! written back as JSON reads back as the same date.
#![no_main]

use chrono::NaiveDate;
use libfuzzer_sys::fuzz_target;

fn round_trips(date: NaiveDate) {
    let written = serde_json::to_string(&date).expect("a date serializes");
    let back: NaiveDate = serde_json::from_str(&written)
        .unwrap_or_else(|e| panic!("{date:?} written as {written} does not read back: {e}"));
    assert_eq!(back, date, "{date:?} written as {written}");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(date) = serde_json::from_slice::<NaiveDate>(data) {
        round_trips(date);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let value = serde_json::Value::String(text.to_string());
        if let Ok(date) = serde_json::from_value::<NaiveDate>(value) {
            round_trips(date);
        }
    }
});
