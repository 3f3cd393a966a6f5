//! Storage for Allot: the `Store` trait both backends implement, the row
//! models, the backend interface (`backend::WriteTx`) and the write
//! sequences written once over it, the shared batch planner and the
//! batching write path.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod answer;
pub mod audit;
pub mod backend;
pub mod clock;
pub mod contracts;
pub mod dashboard;
pub mod error;
pub mod ids;
pub mod imports;
pub mod model;
pub mod plan;
pub mod reports;
pub mod schedule;
pub mod sequences;
pub mod software;
pub mod store;
pub mod users;
pub mod write_path;

pub use answer::{Answering, StoredAnswer};
pub use audit::{AuditContext, AuditEntry};
pub use clock::{Clock, ManualClock, SystemClock, ZonedClock};
pub use error::{StoreError, StoreResult};
pub use schedule::ScheduleStore;
pub use store::{Store, TransitionResult};
pub use write_path::{KeyHold, SubmitError, WritePath, WritePathConfig};
