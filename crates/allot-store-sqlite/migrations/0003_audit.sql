-- The audit trail: one row per change, written in the change's transaction.
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    before TEXT,
    after TEXT,
    request_id TEXT,
    at TEXT NOT NULL
);
CREATE INDEX audit_by_target ON audit_log (target_id, id);
CREATE INDEX audit_by_actor ON audit_log (actor, id);
