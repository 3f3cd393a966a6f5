-- The ledger summed per entitlement and UTC day, kept in the write
-- transaction: one upsert per entitlement and day a batch touches. The
-- forecast every balance answer carries sums its trailing window here, at
-- most a row a day however much was used, where the ledger holds a row a
-- use; the usage-over-time report reads it too. Filled from the ledger.
CREATE TABLE ledger_days (
    entitlement_id TEXT NOT NULL,
    day TEXT NOT NULL,
    used_milli INTEGER NOT NULL,
    PRIMARY KEY (entitlement_id, day)
) WITHOUT ROWID;
INSERT INTO ledger_days (entitlement_id, day, used_milli)
    SELECT entitlement_id, substr(created_at, 1, 10), SUM(quantity_milli) FROM ledger
    GROUP BY entitlement_id, substr(created_at, 1, 10);
