//! The HTTP-level suite: every test runs against SQLite and, when
//! `ALLOT_TEST_DATABASE_URL` names a PostgreSQL server, against PostgreSQL
//! too, each on a fresh database, through the real server on a random port.

mod common;

mod access;
mod audit;
mod case_model;
mod cases;
mod concurrency;
mod entitlements;
mod errors;
mod openapi;
mod parties;
mod roles;
mod usage;
