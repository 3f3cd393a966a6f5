//! The `allot` binary as people and scripts use it, against a real server
//! on SQLite and on PostgreSQL (`on_both_backends!`; the PostgreSQL half is
//! reported ignored when the build saw no `ALLOT_TEST_DATABASE_URL`, and
//! fails without a server under `CI=true`).
//!
//! - `people`: what every client command prints for a person, as insta
//!   snapshots of a terminal session (ids, keys and times masked).
//! - `scripts`: `-o json` is the API's body, `-o csv` its rows, `--all`
//!   every page.
//! - `failures`: each exit code of `src/failure.rs` from a real case.
//! - `login`, `bootstrap`: the credentials file, keys on the database.
//! - `help`, `local`: every command's examples; what needs no server.

mod common;
mod transcript;

mod bootstrap;
mod failures;
mod help;
mod imports;
mod local;
mod login;
mod people;
mod reports;
mod scripts;
mod usage_import;
