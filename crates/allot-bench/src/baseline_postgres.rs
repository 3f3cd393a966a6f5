//! PostgreSQL baseline: N connections, each running one transaction per use.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;
use tokio_postgres::Client;

use crate::pg;
use crate::scenarios::{Layout, LoadJob};
use crate::stats::{Clock, Outcome, Tally, WorkerResult};
use crate::verify::{BalanceRow, MILLI};

const SCHEMA: &str = "
    CREATE TABLE balances (
        entitlement_id TEXT PRIMARY KEY,
        cap BIGINT,
        used BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE ledger (
        id BIGSERIAL PRIMARY KEY,
        entitlement_id TEXT NOT NULL,
        quantity BIGINT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX ledger_entitlement ON ledger (entitlement_id);
    CREATE TABLE idempotency (
        key TEXT PRIMARY KEY,
        entitlement_id TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
";

pub(crate) const UPDATE: &str = "UPDATE balances SET used = used + $1
    WHERE entitlement_id = $2 AND (cap IS NULL OR used + $1 <= cap)";
pub(crate) const INSERT_LEDGER: &str =
    "INSERT INTO ledger (entitlement_id, quantity) VALUES ($1, $2)";
pub(crate) const INSERT_IDEMPOTENCY: &str =
    "INSERT INTO idempotency (key, entitlement_id) VALUES ($1, $2)";

const ROWS: &str = "
    SELECT b.entitlement_id, b.used, b.cap, COALESCE(s.total, 0)::BIGINT
    FROM balances b
    LEFT JOIN (SELECT entitlement_id, SUM(quantity) AS total FROM ledger GROUP BY entitlement_id) s
        ON s.entitlement_id = b.entitlement_id";

#[derive(Debug, Clone)]
pub struct PgBaseline {
    url: String,
}

impl PgBaseline {
    /// Creates the schema and the layout's entitlements in the (fresh) database at `url`.
    pub async fn create(url: &str, layout: &Layout) -> Result<Self> {
        let client = pg::connect(url).await?;
        client.batch_execute(SCHEMA).await?;
        let ids = layout.baseline_ids();
        let caps = (0..layout.len())
            .map(|index| Ok(i64::try_from(layout.cap_of(index))? * MILLI))
            .collect::<Result<Vec<i64>>>()?;
        client
            .execute(
                "INSERT INTO balances (entitlement_id, cap) SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[])",
                &[&ids, &caps],
            )
            .await?;
        Ok(PgBaseline {
            url: url.to_owned(),
        })
    }

    /// Runs the use loop on `job.concurrency` connections.
    pub async fn run(
        &self,
        ids: Arc<Vec<String>>,
        job: &LoadJob,
        tally: Arc<Tally>,
    ) -> Result<Outcome> {
        let mut clients = Vec::with_capacity(job.concurrency);
        for _ in 0..job.concurrency {
            clients.push(pg::connect(&self.url).await?);
        }
        let clock = Arc::new(Clock::start(job.stop, job.warmup));
        let mut workers = JoinSet::new();
        for (slot, client) in clients.into_iter().enumerate() {
            let seed = rand::thread_rng().gen::<u64>() ^ slot as u64;
            workers.spawn(worker(
                client,
                Arc::clone(&ids),
                job.clone(),
                Arc::clone(&clock),
                Arc::clone(&tally),
                seed,
            ));
        }
        let mut results = Vec::with_capacity(job.concurrency);
        while let Some(joined) = workers.join_next().await {
            results.push(joined.context("postgres baseline worker panicked")??);
        }
        Outcome::merge(&clock, results)
    }

    /// Adds `rows` ledger rows of 1 unit spread round-robin over `pool_ids`, with one
    /// INSERT … SELECT from generate_series, and the same sums into `used`.
    pub async fn prefill_ledger(&self, pool_ids: &[String], rows: u64) -> Result<()> {
        if pool_ids.is_empty() || rows == 0 {
            return Ok(());
        }
        let mut client = pg::connect(&self.url).await?;
        let (rows, pool) = (i64::try_from(rows)?, i64::try_from(pool_ids.len())?);
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO ledger (entitlement_id, quantity)
             SELECT ($1::TEXT[])[(g % $3::BIGINT) + 1], $4::BIGINT
             FROM generate_series(0::BIGINT, $2::BIGINT - 1) AS g",
            &[&pool_ids, &rows, &pool, &MILLI],
        )
        .await?;
        tx.execute(
            "UPDATE balances b SET used = b.used
                 + $4::BIGINT * ($2::BIGINT / $3::BIGINT + CASE WHEN p.n - 1 < $2::BIGINT % $3::BIGINT THEN 1 ELSE 0 END)
             FROM UNNEST($1::TEXT[]) WITH ORDINALITY AS p(id, n) WHERE b.entitlement_id = p.id",
            &[&pool_ids, &rows, &pool, &MILLI],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every balance with its ledger sum.
    pub async fn rows(&self) -> Result<Vec<BalanceRow>> {
        let client = pg::connect(&self.url).await?;
        let rows = client.query(ROWS, &[]).await?;
        Ok(rows
            .iter()
            .map(|row| BalanceRow {
                id: row.get(0),
                used_milli: row.get(1),
                cap_milli: row.get(2),
                ledger_milli: Some(row.get(3)),
                restricted: true,
            })
            .collect())
    }
}

async fn worker(
    mut client: Client,
    ids: Arc<Vec<String>>,
    job: LoadJob,
    clock: Arc<Clock>,
    tally: Arc<Tally>,
    seed: u64,
) -> Result<WorkerResult> {
    let update = client.prepare(UPDATE).await?;
    let insert_ledger = client.prepare(INSERT_LEDGER).await?;
    let insert_idempotency = client.prepare(INSERT_IDEMPOTENCY).await?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut result = WorkerResult::new();
    while clock.next_ticket() {
        let index = job.pick.next(&mut rng);
        let id = &ids[index];
        let key = format!("{:032x}", rng.gen::<u128>());
        tally.sent(index);
        let began = Instant::now();
        let used = async {
            let tx = client.transaction().await?;
            if tx.execute(&update, &[&MILLI, id]).await? == 0 {
                tx.rollback().await?;
                return Ok::<bool, tokio_postgres::Error>(false);
            }
            tx.execute(&insert_ledger, &[id, &MILLI]).await?;
            tx.execute(&insert_idempotency, &[&key, id]).await?;
            tx.commit().await?;
            Ok(true)
        }
        .await;
        let done = Instant::now();
        match used {
            Ok(true) => {
                tally.accepted(index);
                result.answered(&clock, began, done, false);
            }
            Ok(false) => result.answered(&clock, began, done, true),
            Err(err) => {
                tally.in_doubt(index);
                result.counts.add_unexpected(format!("postgres: {err}"));
                if client.is_closed() {
                    break;
                }
            }
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::scenarios::{Op, Pick};
    use crate::stats::Stop;
    use crate::verify::{check, used_by_id};

    /// A fresh database on the server named by `ALLOT_TEST_DATABASE_URL`.
    async fn fresh_db(admin_url: &str) -> (String, String) {
        let name = format!(
            "allot_bench_test_{}",
            hex::encode(rand::random::<[u8; 4]>())
        );
        let url = pg::create_database(admin_url, &name).await.unwrap();
        (name, url)
    }

    allot_store_conformance::postgres_test! {
        #[tokio::test]
        async fn exhaust_stops_exactly_at_cap_and_verifies() {
            let admin_url = allot_store_conformance::postgres_admin_url();
            let (name, url) = fresh_db(&admin_url).await;
            let layout = Layout {
                pool: 5,
                exhaust_cap: 40,
            };
            let base = PgBaseline::create(&url, &layout).await.unwrap();
            let ids = Arc::new(layout.baseline_ids());
            base.prefill_ledger(&ids[..layout.pool], 12).await.unwrap();
            let before = used_by_id(&base.rows().await.unwrap());
            assert_eq!(before["base_00001"], 3 * MILLI);
            assert_eq!(before["base_00004"], 2 * MILLI);
            let tally = Arc::new(Tally::new(ids.len()));
            let job = LoadJob {
                op: Op::Usage,
                pick: Pick::Single(layout.exhaust()),
                concurrency: 8,
                stop: Stop::Requests(80),
                warmup: Duration::ZERO,
            };
            let outcome = base
                .run(Arc::clone(&ids), &job, Arc::clone(&tally))
                .await
                .unwrap();
            assert_eq!(outcome.counts.ok, 40);
            assert_eq!(outcome.counts.refused, 40);
            assert_eq!(outcome.counts.unexpected_total(), 0);
            let verdict = check(
                "database",
                &base.rows().await.unwrap(),
                &ids,
                &before,
                &tally,
            );
            assert!(verdict.valid, "{:?}", verdict.problems);
            pg::drop_database(&admin_url, &name).await.unwrap();
        }
    }
}
