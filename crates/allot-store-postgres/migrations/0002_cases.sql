-- Cases. `record` holds allot_store::plan::CaseRecord as JSON (state, time
-- entries, notes); the columns beside it are copies for filtering.
CREATE TABLE cases (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    entitlement_id TEXT REFERENCES entitlements(id),
    status TEXT NOT NULL,
    record JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    deleted_at TIMESTAMPTZ
);
CREATE INDEX cases_by_account ON cases (account_id, id);
CREATE INDEX cases_by_entitlement ON cases (entitlement_id, id);

-- A work order number is recorded once per entitlement: looked up per batch.
CREATE INDEX ledger_by_reference ON ledger (entitlement_id, reference) WHERE reference IS NOT NULL;
