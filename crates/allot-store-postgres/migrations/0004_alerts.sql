-- Alerts that reach people: who to tell, webhooks, and the delivery of
-- every outbox event to its webhooks and mailboxes.

ALTER TABLE accounts ADD COLUMN manager_name TEXT;
ALTER TABLE accounts ADD COLUMN manager_email TEXT;

-- When an event was turned into its deliveries. Events written before
-- alerts existed were promised to nobody: they count as done.
ALTER TABLE events ADD COLUMN fanned_out_at TIMESTAMPTZ;
UPDATE events SET fanned_out_at = created_at;
CREATE INDEX events_to_fan_out ON events (id) WHERE fanned_out_at IS NULL;

CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    event_types JSONB NOT NULL,
    account_id TEXT REFERENCES accounts(id),
    description TEXT,
    secret TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    failing_since TIMESTAMPTZ,
    disabled_reason TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- One row per (event, channel, target): a webhook id, or an e-mail address.
CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES events(id),
    channel TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
    target TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    tries INTEGER NOT NULL,
    next_attempt_at TIMESTAMPTZ,
    attempts JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (event_id, channel, target)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_by_target ON deliveries (channel, target, id);
