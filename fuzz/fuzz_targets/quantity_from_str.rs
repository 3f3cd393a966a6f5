//! `Quantity: FromStr` on arbitrary text: never panics, and whatever it
//! accepts prints back to text that parses to the same quantity.
#![no_main]

use allot_core::Quantity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(q) = text.parse::<Quantity>() {
        let shown = q.to_string();
        assert_eq!(
            shown.parse::<Quantity>(),
            Ok(q),
            "{text:?} parsed to {q:?}, shown as {shown:?}"
        );
    }
});
