-- Contracts (entitlements hang off them: contract -> lines -> entitlements),
-- entitlement templates, and background jobs with their progress. Each row
-- is JSON (`record`) beside the columns lookups, constraints and locks use.
CREATE TABLE contracts (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    number TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    end_date DATE NOT NULL,
    predecessor_id TEXT REFERENCES contracts (id),
    record JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX contracts_by_account ON contracts (account_id, id);
CREATE INDEX contracts_due ON contracts (end_date, id) WHERE status IN ('active', 'suspended');

CREATE TABLE contract_lines (
    id TEXT PRIMARY KEY,
    contract_id TEXT NOT NULL REFERENCES contracts (id),
    record JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX contract_lines_by_contract ON contract_lines (contract_id, id);

CREATE TABLE entitlement_templates (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    record JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    record JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- The entitlements of a contract (the contract is named in the terms).
CREATE INDEX entitlements_by_contract ON entitlements ((terms ->> 'contract_id'), id);

-- A suspended entitlement stays its account's default while it is paused.
DROP INDEX entitlements_one_default;
CREATE UNIQUE INDEX entitlements_one_default ON entitlements (account_id)
    WHERE is_default AND status IN ('draft', 'waiting', 'active', 'suspended');
