-- Reconciliation counts installations in SQL (allot_core::software::counted):
-- each model's leading devices in byte order (COLLATE "C", as Rust sorts),
-- the fresh ones read from the index alone.
CREATE INDEX installations_by_device_bytes
    ON installations (software_model_id, device COLLATE "C") INCLUDE (seen_at);
