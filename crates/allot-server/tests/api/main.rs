//! The HTTP-level suite: every test runs against SQLite and against
//! PostgreSQL (`on_both_backends!`), each on a fresh database, through the
//! real server on a random port. The PostgreSQL half is reported ignored
//! when the build saw no `ALLOT_TEST_DATABASE_URL` (and fails under
//! `CI=true`). `/metrics` is tested in `tests/metrics.rs`, alone in its
//! process.

mod common;

mod access;
mod alerts;
mod audit;
mod browser;
mod case_model;
mod cases;
mod concurrency;
mod connections;
mod contracts;
mod dashboard;
mod entitlements;
mod errors;
mod imports;
mod openapi;
mod parties;
mod reports;
mod roles;
mod schedule;
mod software;
mod software_compliance;
mod usage;
mod usage_batch;
mod webdriver;
