//! The recorded lifecycle transitions of an entitlement (written by the
//! shared sequences through `transaction`).

use allot_store::model::Transition;
use deadpool_postgres::Pool;

use crate::error::Res;
use crate::rows::{self, TRANSITION_COLS};

pub(crate) async fn list_transitions(pool: &Pool, entitlement_id: &str) -> Res<Vec<Transition>> {
    let client = pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {TRANSITION_COLS} FROM transitions WHERE entitlement_id = $1 ORDER BY id"
        ))
        .await?;
    client
        .query(&stmt, &[&entitlement_id])
        .await?
        .iter()
        .map(rows::transition)
        .collect()
}
