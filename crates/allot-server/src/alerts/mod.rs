//! Alerts that reach people: the wire shapes of webhooks and deliveries,
//! the SSRF guard, the webhook and e-mail senders, and the delivery worker
//! that takes outbox events to them (`worker`).

pub mod guard;
pub mod inputs;
pub mod mail;
pub mod openapi;
pub mod views;
pub mod webhook;
pub mod worker;
