-- Quantities are integer thousandths (*_milli).
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    parent_id TEXT REFERENCES accounts(id),
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE contacts (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    email TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX contacts_by_account ON contacts (account_id, id);

CREATE TABLE products (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    sku TEXT,
    created_at TIMESTAMPTZ NOT NULL
);

-- `terms` holds allot_core::Terms as JSON; the columns beside it are copies
-- kept for filtering, constraints and the benchmark's checks.
CREATE TABLE entitlements (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    unit TEXT NOT NULL,
    owner TEXT,
    status TEXT NOT NULL,
    is_default BOOLEAN NOT NULL,
    start_date DATE NOT NULL,
    end_date DATE NOT NULL,
    total_milli BIGINT,
    restrict BOOLEAN NOT NULL,
    terms JSONB NOT NULL,
    predecessor_id TEXT REFERENCES entitlements(id),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX entitlements_by_account ON entitlements (account_id, id);
CREATE INDEX entitlements_by_status ON entitlements (status, id);
CREATE UNIQUE INDEX entitlements_one_default ON entitlements (account_id)
    WHERE is_default AND status IN ('draft', 'waiting', 'active');

-- Counters beside the ledger: used_milli == sum(ledger.quantity_milli) of period_index.
CREATE TABLE balances (
    entitlement_id TEXT PRIMARY KEY REFERENCES entitlements(id),
    period_index BIGINT NOT NULL,
    used_milli BIGINT NOT NULL,
    held_milli BIGINT NOT NULL,
    carried_milli BIGINT NOT NULL,
    channels JSONB NOT NULL
);

CREATE TABLE ledger (
    id TEXT PRIMARY KEY,
    entitlement_id TEXT NOT NULL REFERENCES entitlements(id),
    period_index BIGINT NOT NULL,
    channel TEXT,
    quantity_milli BIGINT NOT NULL,
    reason TEXT NOT NULL,
    reference TEXT,
    actor TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX ledger_by_entitlement ON ledger (entitlement_id, id);

CREATE TABLE reservations (
    id TEXT PRIMARY KEY,
    entitlement_id TEXT NOT NULL REFERENCES entitlements(id),
    quantity_milli BIGINT NOT NULL,
    channel TEXT,
    reference TEXT,
    status TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    settled_at TIMESTAMPTZ,
    committed_milli BIGINT
);
CREATE INDEX reservations_held_by_expiry ON reservations (expires_at) WHERE status = 'held';

-- answer is NULL while the first request is in flight.
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    answer JSONB,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    entitlement_id TEXT,
    data JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_by_entitlement ON events (entitlement_id, id);

CREATE TABLE transitions (
    id BIGSERIAL PRIMARY KEY,
    entitlement_id TEXT NOT NULL REFERENCES entitlements(id),
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX transitions_by_entitlement ON transitions (entitlement_id, id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    name TEXT,
    role TEXT NOT NULL,
    account_id TEXT REFERENCES accounts(id),
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
