//! Reconciliation's reads on PostgreSQL (`allot_store::software::aggregate`):
//! the installations are counted per model in SQL; only the counts, the
//! leading names of each model (in byte order: `COLLATE "C"`, as Rust
//! sorts, read from `installations_by_device_bytes`) and the allocated
//! names found installed come back.

use std::collections::BTreeMap;

use allot_core::software::counted::{Identity, InstallsAsk, ModelInstalls};
use allot_core::software::reconcile::AllocationHeld;
use allot_core::software::SoftwareEntitlement;
use allot_store::software::{ReconciliationReads, Rights};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::Json;

use crate::error::{Error, Res};

/// The reads, on any client: a write transaction or a read-only snapshot.
pub(crate) struct PgReads<'a, C>(pub(crate) &'a C);

const COUNTS: &str = "SELECT software_model_id, COUNT(*)
    FROM installations WHERE seen_at >= $1 GROUP BY software_model_id";

const CORES: &str = "SELECT software_model_id,
        COALESCE(SUM(cores) FILTER (WHERE cores >= 1), 0)::INT8,
        COUNT(*) FILTER (WHERE cores IS NULL OR cores < 1)
    FROM installations WHERE seen_at >= $1 AND software_model_id = ANY($2)
    GROUP BY software_model_id";

const USERS: &str = "SELECT software_model_id, COUNT(DISTINCT COALESCE(user_name, device))
    FROM installations WHERE seen_at >= $1 AND software_model_id = ANY($2)
    GROUP BY software_model_id";

const FIRST_DEVICES: &str = "SELECT a.model, l.name
    FROM unnest($1::TEXT[], $2::INT8[]) AS a(model, lim)
    CROSS JOIN LATERAL (SELECT i.device COLLATE \"C\" AS name FROM installations i
        WHERE i.software_model_id = a.model AND i.seen_at >= $3
        ORDER BY i.device COLLATE \"C\" LIMIT a.lim) l";

const FIRST_USERS: &str = "SELECT a.model, l.name
    FROM unnest($1::TEXT[], $2::INT8[]) AS a(model, lim)
    CROSS JOIN LATERAL (SELECT DISTINCT COALESCE(i.user_name, i.device) COLLATE \"C\" AS name
        FROM installations i WHERE i.software_model_id = a.model AND i.seen_at >= $3
        ORDER BY 1 LIMIT a.lim) l";

const PROBED_DEVICES: &str =
    "SELECT p.model, p.name FROM unnest($1::TEXT[], $2::TEXT[]) AS p(model, name)
    WHERE EXISTS (SELECT 1 FROM installations i WHERE i.software_model_id = p.model
        AND i.device = p.name AND i.seen_at >= $3)";

const PROBED_USERS: &str =
    "SELECT p.model, p.name FROM unnest($1::TEXT[], $2::TEXT[]) AS p(model, name)
    WHERE EXISTS (SELECT 1 FROM installations i WHERE i.software_model_id = p.model
        AND COALESCE(i.user_name, i.device) = p.name AND i.seen_at >= $3)";

impl<C: GenericClient + Sync> ReconciliationReads for PgReads<'_, C> {
    type Error = Error;

    async fn load_rights(&self) -> Res<Rights> {
        let c = self.0;
        let stmt = c
            .prepare_cached("SELECT record FROM software_entitlements")
            .await?;
        let entitlements = c
            .query(&stmt, &[])
            .await?
            .iter()
            .map(|r| Ok(r.try_get::<_, Json<SoftwareEntitlement>>(0)?.0))
            .collect::<Res<_>>()?;
        let stmt = c
            .prepare_cached(
                "SELECT entitlement_id, user_name, device, quantity FROM software_allocations",
            )
            .await?;
        let allocations = c
            .query(&stmt, &[])
            .await?
            .iter()
            .map(|r| {
                Ok(AllocationHeld {
                    entitlement_id: r.try_get(0)?,
                    user: r.try_get(1)?,
                    device: r.try_get(2)?,
                    quantity: r.try_get(3)?,
                })
            })
            .collect::<Res<_>>()?;
        Ok(Rights {
            entitlements,
            allocations,
        })
    }

    async fn count_installations(&self, ask: &InstallsAsk) -> Res<Vec<ModelInstalls>> {
        let c = self.0;
        let fresh = &ask.stale_before;
        let mut counted: BTreeMap<String, ModelInstalls> = BTreeMap::new();
        for r in c.query(&c.prepare_cached(COUNTS).await?, &[fresh]).await? {
            let model: String = r.try_get(0)?;
            let installations: i64 = r.try_get(1)?;
            counted.insert(
                model.clone(),
                ModelInstalls {
                    software_model_id: model,
                    installations,
                    // One row per (model, device): the primary key.
                    devices: installations,
                    ..ModelInstalls::default()
                },
            );
        }
        let by_cores: Vec<&str> = ask
            .cores
            .iter()
            .filter(|m| counted.contains_key(*m))
            .map(String::as_str)
            .collect();
        if !by_cores.is_empty() {
            for r in c
                .query(&c.prepare_cached(CORES).await?, &[fresh, &by_cores])
                .await?
            {
                let model: String = r.try_get(0)?;
                if let Some(m) = counted.get_mut(&model) {
                    m.cores = r.try_get(1)?;
                    m.cores_unknown = r.try_get(2)?;
                }
            }
        }
        let by_user: Vec<&str> = ask
            .users
            .keys()
            .filter(|m| counted.contains_key(*m))
            .map(String::as_str)
            .collect();
        if !by_user.is_empty() {
            for r in c
                .query(&c.prepare_cached(USERS).await?, &[fresh, &by_user])
                .await?
            {
                let model: String = r.try_get(0)?;
                if let Some(m) = counted.get_mut(&model) {
                    m.users = r.try_get(1)?;
                }
            }
        }
        for identity in [Identity::Device, Identity::UserOrDevice] {
            let (models, limits): (Vec<&str>, Vec<i64>) = counted
                .keys()
                .map(|m| (m.as_str(), ask.listed(m, identity) as i64))
                .filter(|(_, limit)| *limit > 0)
                .unzip();
            if models.is_empty() {
                continue;
            }
            let sql = match identity {
                Identity::Device => FIRST_DEVICES,
                Identity::UserOrDevice => FIRST_USERS,
            };
            let rows = c
                .query(&c.prepare_cached(sql).await?, &[&models, &limits, fresh])
                .await?;
            for r in rows {
                let model: String = r.try_get(0)?;
                if let Some(m) = counted.get_mut(&model) {
                    let list = match identity {
                        Identity::Device => &mut m.first_devices,
                        Identity::UserOrDevice => &mut m.first_users,
                    };
                    list.push(r.try_get(1)?);
                }
            }
            let probes: (Vec<&str>, Vec<&str>) = ask
                .probes
                .iter()
                .filter(|(m, i, _)| *i == identity && counted.contains_key(m))
                .map(|(m, _, name)| (m.as_str(), name.as_str()))
                .unzip();
            if probes.0.is_empty() {
                continue;
            }
            let sql = match identity {
                Identity::Device => PROBED_DEVICES,
                Identity::UserOrDevice => PROBED_USERS,
            };
            let rows = c
                .query(
                    &c.prepare_cached(sql).await?,
                    &[&probes.0, &probes.1, fresh],
                )
                .await?;
            for r in rows {
                let model: String = r.try_get(0)?;
                if let Some(m) = counted.get_mut(&model) {
                    m.installed.insert((identity, r.try_get(1)?));
                }
            }
        }
        let mut counted: Vec<ModelInstalls> = counted.into_values().collect();
        for m in &mut counted {
            // Chosen in byte order by SQL; the order within rows is not promised.
            m.first_devices.sort_unstable();
            m.first_users.sort_unstable();
        }
        Ok(counted)
    }
}
