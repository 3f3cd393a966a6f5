-- The expiring report reads active entitlements by end date, a page at a
-- time after the last (end_date, id) shown.
CREATE INDEX entitlements_by_end_date ON entitlements (end_date, id);
-- The approaching-limit report reads the limited entitlements active by
-- their dates: the index holds every column it filters on, so the rows
-- themselves (their terms) are read only for the page it returns.
CREATE INDEX entitlements_active_limited ON entitlements (status, start_date, end_date, total_milli, id)
    WHERE total_milli IS NOT NULL;
-- Approaching-limit also reads the entitlements a period reset may have left
-- at the limit by what they hold alone (or with no allotment at all): few.
CREATE INDEX balances_holding ON balances (entitlement_id) WHERE held_milli > 0;
CREATE INDEX entitlements_without_allotment ON entitlements (id) WHERE total_milli = 0;
