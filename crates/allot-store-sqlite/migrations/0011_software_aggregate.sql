-- Reconciliation counts installations in SQL (allot_core::software::counted):
-- the per-model counts of the fresh ones read from this index alone. The
-- leading devices in byte order come from the primary key (BINARY).
CREATE INDEX installations_by_model_seen ON installations (software_model_id, seen_at, cores);
