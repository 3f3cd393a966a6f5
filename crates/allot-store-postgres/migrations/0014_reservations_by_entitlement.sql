-- An entitlement's reservations, listed in id order (the entitlement page, GET /v1/entitlements/{id}/reservations).
CREATE INDEX reservations_by_entitlement ON reservations (entitlement_id, id);
