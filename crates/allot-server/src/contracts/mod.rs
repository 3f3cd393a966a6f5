//! Contracts, entitlement templates and jobs at the edge: what requests
//! carry (`inputs`) and what responses look like (`views`). The handlers
//! are in `routes::contracts` and `routes::templates`.

pub mod inputs;
pub mod views;
