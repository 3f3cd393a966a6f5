-- Reports sum the ledger of an entitlement over a span of days.
CREATE INDEX ledger_by_entitlement_time ON ledger (entitlement_id, created_at);
