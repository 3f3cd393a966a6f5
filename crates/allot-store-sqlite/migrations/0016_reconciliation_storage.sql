-- Reconciliation lists each model's leading devices along the primary key
-- and reads the seen_at of each (src/software_aggregate.rs). In a rowid
-- table every one of those rows was a lookup elsewhere in the table (a
-- model's devices are spread over all of it); clustered on
-- (software_model_id, device), WITHOUT ROWID, they sit side by side, and
-- the primary key stays the one index an upsert walks to find its row.
-- Same columns, same constraint, same secondary index. (PostgreSQL's 0016
-- stores kept reconciliations as json instead: here they are text already.)
CREATE TABLE installations_clustered (
    software_model_id TEXT NOT NULL REFERENCES software_models (id),
    device TEXT NOT NULL,
    user_name TEXT,
    cores INTEGER,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (software_model_id, device)
) WITHOUT ROWID;
INSERT INTO installations_clustered (software_model_id, device, user_name, cores, seen_at)
    SELECT software_model_id, device, user_name, cores, seen_at FROM installations;
DROP TABLE installations;
ALTER TABLE installations_clustered RENAME TO installations;
CREATE INDEX installations_by_model_seen ON installations (software_model_id, seen_at, cores);
