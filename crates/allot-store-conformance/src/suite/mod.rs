//! The conformance tests, by subject. Each takes a fresh `TestDatabase`;
//! `conformance_tests!` lists them all.

pub mod alerts;
pub mod audit;
pub mod batch;
pub mod cases;
pub mod contracts;
pub mod dashboard;
pub mod imports;
pub mod keys;
pub mod lifecycle;
pub mod records;
pub mod reports;
pub mod schedule;
pub mod software;
pub mod users;
