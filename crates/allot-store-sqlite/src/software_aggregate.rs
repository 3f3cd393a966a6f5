//! Reconciliation's reads on SQLite (`allot_store::software::aggregate`):
//! the installations are counted per model in SQL; only the counts, the
//! leading names of each model (in byte order: SQLite's `BINARY`, as Rust
//! sorts, read along the primary key) and the allocated names found
//! installed come back.

use allot_core::software::counted::{Identity, InstallsAsk, ModelInstalls};
use allot_core::software::reconcile::AllocationHeld;
use allot_store::software::{ReconciliationReads, Rights};
use rusqlite::{params, Connection, OptionalExtension};

use crate::convert::{all, ts};
use crate::error::{Fail, Res};

/// The reads, on one connection inside a transaction. Every method is
/// synchronous (it never waits), like `SqliteTx`'s.
pub(crate) struct SqliteReads<'a>(pub(crate) &'a Connection);

const COUNTS: &str = "SELECT software_model_id, COUNT(*)
    FROM installations WHERE seen_at >= ?1 GROUP BY software_model_id ORDER BY software_model_id";

const CORES: &str = "SELECT COALESCE(SUM(CASE WHEN cores >= 1 THEN cores END), 0),
        COALESCE(SUM(CASE WHEN cores IS NULL OR cores < 1 THEN 1 ELSE 0 END), 0)
    FROM installations WHERE software_model_id = ?1 AND seen_at >= ?2";

const USERS: &str = "SELECT COUNT(DISTINCT COALESCE(user_name, device)) FROM installations
    WHERE software_model_id = ?1 AND seen_at >= ?2";

// `+seen_at`: walk the primary key in device order (and stop at the
// limit) rather than range-scan `installations_by_model_seen` and sort.
// The table is clustered on that key (`0016`, WITHOUT ROWID): each row's
// seen_at is beside its device, not a lookup elsewhere.
const FIRST_DEVICES: &str = "SELECT device FROM installations
    WHERE software_model_id = ?1 AND +seen_at >= ?2 ORDER BY device LIMIT ?3";

const FIRST_USERS: &str = "SELECT DISTINCT COALESCE(user_name, device) AS name FROM installations
    WHERE software_model_id = ?1 AND seen_at >= ?2 ORDER BY name LIMIT ?3";

const PROBED_DEVICE: &str = "SELECT 1 FROM installations
    WHERE software_model_id = ?1 AND device = ?2 AND seen_at >= ?3";

const PROBED_USER: &str = "SELECT 1 FROM installations
    WHERE software_model_id = ?1 AND COALESCE(user_name, device) = ?2 AND seen_at >= ?3 LIMIT 1";

impl ReconciliationReads for SqliteReads<'_> {
    type Error = Fail;

    async fn load_rights(&self) -> Res<Rights> {
        let c = self.0;
        let entitlements = all(
            &mut *c.prepare_cached("SELECT record FROM software_entitlements")?,
            [],
            |r| Ok(serde_json::from_str(r.get_ref(0)?.as_str()?)?),
        )?;
        let allocations = all(
            &mut *c.prepare_cached(
                "SELECT entitlement_id, user_name, device, quantity FROM software_allocations",
            )?,
            [],
            |r| {
                Ok(AllocationHeld {
                    entitlement_id: r.get(0)?,
                    user: r.get(1)?,
                    device: r.get(2)?,
                    quantity: r.get(3)?,
                })
            },
        )?;
        Ok(Rights {
            entitlements,
            allocations,
        })
    }

    async fn count_installations(&self, ask: &InstallsAsk) -> Res<Vec<ModelInstalls>> {
        let c = self.0;
        let fresh = ts(ask.stale_before);
        let mut counted = all(&mut *c.prepare_cached(COUNTS)?, [&fresh], |r| {
            let installations: i64 = r.get(1)?;
            Ok(ModelInstalls {
                software_model_id: r.get(0)?,
                installations,
                // One row per (model, device): the primary key.
                devices: installations,
                ..ModelInstalls::default()
            })
        })?;
        for m in &mut counted {
            let model = m.software_model_id.as_str();
            if ask.cores.contains(model) {
                (m.cores, m.cores_unknown) = c
                    .prepare_cached(CORES)?
                    .query_row(params![model, fresh], |r| Ok((r.get(0)?, r.get(1)?)))?;
            }
            if ask.users.contains_key(model) {
                m.users = c
                    .prepare_cached(USERS)?
                    .query_row(params![model, fresh], |r| r.get(0))?;
            }
            for (identity, sql) in [
                (Identity::Device, FIRST_DEVICES),
                (Identity::UserOrDevice, FIRST_USERS),
            ] {
                let limit = ask.listed(model, identity) as i64;
                if limit == 0 {
                    continue;
                }
                let names = all(
                    &mut *c.prepare_cached(sql)?,
                    params![model, fresh, limit],
                    |r| Ok(r.get::<_, String>(0)?),
                )?;
                match identity {
                    Identity::Device => m.first_devices = names,
                    Identity::UserOrDevice => m.first_users = names,
                }
            }
            // The probes are in (model, identity, name) order: this model's
            // are one range, not a pass over every model's.
            let from = (model.to_string(), Identity::Device, String::new());
            let probes = ask.probes.range(from..).take_while(|(p, _, _)| p == model);
            for (_, identity, name) in probes {
                let sql = match identity {
                    Identity::Device => PROBED_DEVICE,
                    Identity::UserOrDevice => PROBED_USER,
                };
                let found = c
                    .prepare_cached(sql)?
                    .query_row(params![model, name, fresh], |_| Ok(()))
                    .optional()?;
                if found.is_some() {
                    m.installed.insert((*identity, name.clone()));
                }
            }
        }
        Ok(counted)
    }
}
