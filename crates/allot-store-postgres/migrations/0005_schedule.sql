-- The scheduler (allot_store::schedule). `schedule` holds, per entitlement,
-- the next day something may fall due for it (NULL: nothing will), as of
-- the entitlement row it saw (`seen_update` = its updated_at) and the
-- notice days then configured: an entitlement changed since, or another
-- setting, is looked at again at once.
CREATE TABLE schedule (
    entitlement_id TEXT PRIMARY KEY REFERENCES entitlements(id),
    due_on DATE,
    seen_update TIMESTAMPTZ NOT NULL,
    notice_days TEXT NOT NULL
);
CREATE INDEX schedule_by_due ON schedule (due_on);

-- Each entitlement.expiring_soon sent: once per threshold per end date.
CREATE TABLE expiry_notices (
    entitlement_id TEXT NOT NULL REFERENCES entitlements(id),
    end_date DATE NOT NULL,
    days_before INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (entitlement_id, end_date, days_before)
);

-- renewed_to: the successor of an entitlement, read beside every record.
CREATE INDEX entitlements_by_predecessor ON entitlements (predecessor_id, id);
