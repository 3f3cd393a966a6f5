-- Software entitlements: models, rights (the entitlement as JSON beside the
-- columns lists filter on), allocations, installations, reconciliations.
CREATE TABLE software_models (
    id TEXT PRIMARY KEY,
    publisher TEXT NOT NULL,
    product TEXT NOT NULL,
    version TEXT,
    edition TEXT,
    platform TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE software_entitlements (
    id TEXT PRIMARY KEY,
    software_model_id TEXT NOT NULL REFERENCES software_models (id),
    account_id TEXT REFERENCES accounts (id),
    record JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX software_entitlements_by_model ON software_entitlements (software_model_id, id);
CREATE INDEX software_entitlements_by_account ON software_entitlements (account_id, id);
CREATE TABLE software_allocations (
    id TEXT PRIMARY KEY,
    entitlement_id TEXT NOT NULL REFERENCES software_entitlements (id),
    user_name TEXT,
    device TEXT,
    quantity INT8 NOT NULL CHECK (quantity > 0),
    license_key TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX software_allocations_by_entitlement ON software_allocations (entitlement_id, id);
CREATE TABLE installations (
    software_model_id TEXT NOT NULL REFERENCES software_models (id),
    device TEXT NOT NULL,
    user_name TEXT,
    cores INT8,
    seen_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (software_model_id, device)
);
CREATE TABLE reconciliations (
    id TEXT PRIMARY KEY,
    software_model_id TEXT,
    run_at TIMESTAMPTZ NOT NULL,
    items JSONB NOT NULL
);
