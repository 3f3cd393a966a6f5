//! Software entitlements at the edge: what requests carry (`inputs`) and
//! what responses look like (`views`). The handlers are in
//! `routes::software` and `routes::installations`.

pub mod inputs;
pub mod views;
