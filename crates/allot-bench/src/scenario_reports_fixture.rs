//! The `reports` fixture, bulk-loaded into the server's stopped database (shapes in
//! `scenario_reports.rs`). The terms of every entitlement are those of one entitlement the
//! server created over HTTP, with the account, dates and total substituted.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection};
use serde_json::Value;

use crate::pg;
use crate::scenario_reports::Sizes;
use crate::server_db::ServerDb;

const PER_ACCOUNT: u64 = 100;

/// The template's terms with `"@ACC@"`, `"@START@"`, `"@END@"` and `"@TOTAL@"` markers, and
/// whether the total is written as a string.
fn template(terms: &str) -> Result<(String, bool)> {
    let mut value: Value = serde_json::from_str(terms).context("template terms")?;
    let object = value.as_object_mut().context("terms are an object")?;
    let quoted = object.get("total").is_some_and(Value::is_string);
    for (field, marker) in [
        ("account_id", "@ACC@"),
        ("start_date", "@START@"),
        ("end_date", "@END@"),
        ("total", "@TOTAL@"),
    ] {
        if !object.contains_key(field) {
            bail!("template terms have no {field}: {terms}");
        }
        object.insert(field.to_owned(), Value::String(marker.to_owned()));
    }
    Ok((serde_json::to_string(&value)?, quoted))
}

/// SQL text of the terms of a row whose `acc`, `start`, `end` and `total` columns are text.
fn terms_sql(param: &str, quoted: bool) -> String {
    let q = |e: &str| format!("'\"' || {e} || '\"'");
    let total = if quoted {
        q("CAST(total AS TEXT)")
    } else {
        "CAST(total AS TEXT)".to_owned()
    };
    format!(
        "replace(replace(replace(replace({param}, '\"@ACC@\"', {}), '\"@START@\"', {}), \
         '\"@END@\"', {}), '\"@TOTAL@\"', {total})",
        q("acc"),
        q("start"),
        q("end_d")
    )
}

pub async fn load(db: &ServerDb, template_id: &str, sizes: Sizes) -> Result<()> {
    match db {
        ServerDb::Sqlite(path) => {
            let (path, id) = (path.clone(), template_id.to_owned());
            tokio::task::spawn_blocking(move || load_sqlite(&path, &id, sizes)).await?
        }
        ServerDb::Postgres(url) => load_postgres(url, template_id, sizes).await,
    }
}

fn load_sqlite(path: &std::path::Path, template_id: &str, sizes: Sizes) -> Result<()> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(60))?;
    let terms: String = conn.query_row(
        "SELECT terms FROM entitlements WHERE id = ?1",
        [template_id],
        |r| r.get(0),
    )?;
    let (tmpl, quoted) = template(&terms)?;
    let (n, l) = (
        i64::try_from(sizes.entitlements)?,
        i64::try_from(sizes.ledger_rows)?,
    );
    let accounts = (sizes.entitlements.div_ceil(PER_ACCOUNT)) as i64;
    let now = "2026-01-01T00:00:00.000000Z";
    let tx = conn.transaction()?;
    tx.execute(
        "WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n + 1 < ?1)
         INSERT INTO accounts (id, name, created_at)
         SELECT printf('acc_b%06d', n), printf('bench %d', n), ?2 FROM s",
        params![accounts, now],
    )?;
    let sql = format!(
        "WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n + 1 < :n),
         f AS (SELECT n, printf('ent_b%07d', n) AS id, printf('acc_b%06d', n / {PER_ACCOUNT}) AS acc,
                CASE WHEN n % 10 = 9 THEN 'expired' ELSE 'active' END AS status,
                CASE WHEN n % 10 = 9 THEN date('now', '-400 days') ELSE date('now', '-180 days') END AS start,
                CASE WHEN n % 10 = 9 THEN date('now', printf('-%d days', 1 + n % 30))
                     ELSE date('now', printf('+%d days', n % 400)) END AS end_d,
                CASE n % 5 WHEN 0 THEN 100 WHEN 1 THEN 120 WHEN 2 THEN 90 ELSE 1000 END AS total
               FROM s)
         INSERT INTO entitlements (id, account_id, unit, owner, status, is_default, start_date,
             end_date, total_milli, restrict, terms, predecessor_id, created_at, updated_at)
         SELECT id, acc, 'cases', NULL, status, 0, start, end_d, total * 1000, 1, {}, NULL, :now, :now
         FROM f",
        terms_sql(":tmpl", quoted)
    );
    tx.execute(
        &sql,
        rusqlite::named_params! { ":n": n, ":tmpl": tmpl, ":now": now },
    )
    .context("entitlements")?;
    // The ledger's secondary indexes are dropped during the load and made again after.
    let indexes: Vec<(String, String)> = tx
        .prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ledger' \
             AND sql IS NOT NULL",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, _) in &indexes {
        tx.execute_batch(&format!("DROP INDEX {name}"))?;
    }
    tx.execute(
        "WITH RECURSIVE s(g) AS (SELECT 0 UNION ALL SELECT g + 1 FROM s WHERE g + 1 < ?1)
         INSERT INTO ledger (id, entitlement_id, period_index, channel, quantity_milli, reason,
             reference, actor, created_at)
         SELECT printf('use_b%010d', g), printf('ent_b%07d', g % ?2), 0, NULL, 1000, 'usage', NULL,
             'allot-bench', strftime('%Y-%m-%dT12:00:00.000000Z', 'now',
                 printf('-%d days', 1 + (g / ?2) % 60))
         FROM s",
        params![l, n],
    )?;
    for (_, sql) in &indexes {
        tx.execute_batch(sql)?;
    }
    tx.execute(
        "INSERT INTO ledger_days (entitlement_id, day, used_milli)
         SELECT entitlement_id, substr(created_at, 1, 10), SUM(quantity_milli) FROM ledger
         WHERE entitlement_id LIKE 'ent_b%' GROUP BY 1, 2",
        [],
    )?;
    tx.execute(
        "INSERT INTO balances (entitlement_id, period_index, used_milli, held_milli, carried_milli,
             channels)
         SELECT e.id, 0, COALESCE((SELECT SUM(l.quantity_milli) FROM ledger l
             WHERE l.entitlement_id = e.id), 0), 0, 0, '{}'
         FROM entitlements e WHERE e.id LIKE 'ent_b%'",
        [],
    )?;
    tx.commit()?;
    conn.execute_batch("ANALYZE")?;
    Ok(())
}

async fn load_postgres(url: &str, template_id: &str, sizes: Sizes) -> Result<()> {
    let mut client = pg::connect(url).await?;
    client.batch_execute("SET TIME ZONE 'UTC'").await?;
    let terms: String = client
        .query_one(
            "SELECT terms::text FROM entitlements WHERE id = $1",
            &[&template_id],
        )
        .await?
        .get(0);
    let (tmpl, quoted) = template(&terms)?;
    let (n, l) = (
        i64::try_from(sizes.entitlements)?,
        i64::try_from(sizes.ledger_rows)?,
    );
    let accounts = (sizes.entitlements.div_ceil(PER_ACCOUNT)) as i64;
    let tx = client.transaction().await?;
    tx.execute(
        "INSERT INTO accounts (id, name, created_at)
         SELECT 'acc_b' || lpad(n::text, 6, '0'), 'bench ' || n, now()
         FROM generate_series(0, $1::BIGINT - 1) AS n",
        &[&accounts],
    )
    .await?;
    let sql = format!(
        "WITH f AS (SELECT n, 'ent_b' || lpad(n::text, 7, '0') AS id,
                'acc_b' || lpad((n / {PER_ACCOUNT})::text, 6, '0') AS acc,
                CASE WHEN n % 10 = 9 THEN 'expired' ELSE 'active' END AS status,
                CASE WHEN n % 10 = 9 THEN CURRENT_DATE - 400 ELSE CURRENT_DATE - 180 END AS start_day,
                CASE WHEN n % 10 = 9 THEN CURRENT_DATE - (1 + n % 30)::int
                     ELSE CURRENT_DATE + (n % 400)::int END AS end_day,
                CASE n % 5 WHEN 0 THEN 100 WHEN 1 THEN 120 WHEN 2 THEN 90 ELSE 1000 END AS total
               FROM generate_series(0, $1::BIGINT - 1) AS n),
         g AS (SELECT f.*, start_day::text AS start, end_day::text AS end_d FROM f)
         INSERT INTO entitlements (id, account_id, unit, owner, status, is_default, start_date,
             end_date, total_milli, restrict, terms, predecessor_id, created_at, updated_at)
         SELECT id, acc, 'cases', NULL, status, false, start_day, end_day, total * 1000, true,
             ({})::jsonb, NULL, now(), now()
         FROM g",
        terms_sql("$2::text", quoted)
    );
    tx.execute(&sql, &[&n, &tmpl])
        .await
        .context("entitlements")?;
    let indexes: Vec<(String, String)> = tx
        .query(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'ledger' \
             AND indexname <> 'ledger_pkey'",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (name, _) in &indexes {
        tx.batch_execute(&format!("DROP INDEX {name}")).await?;
    }
    tx.execute(
        "INSERT INTO ledger (id, entitlement_id, period_index, channel, quantity_milli, reason,
             reference, actor, created_at)
         SELECT 'use_b' || lpad(g::text, 10, '0'), 'ent_b' || lpad((g % $2::BIGINT)::text, 7, '0'),
             0, NULL, 1000, 'usage', NULL, 'allot-bench',
             (CURRENT_DATE - (1 + (g / $2::BIGINT) % 60)::int)::timestamp AT TIME ZONE 'UTC'
                 + INTERVAL '12 hours'
         FROM generate_series(0, $1::BIGINT - 1) AS g",
        &[&l, &n],
    )
    .await
    .context("ledger")?;
    for (_, sql) in &indexes {
        tx.batch_execute(sql).await?;
    }
    tx.execute(
        "INSERT INTO ledger_days (entitlement_id, day, used_milli)
         SELECT entitlement_id, (created_at AT TIME ZONE 'UTC')::DATE, SUM(quantity_milli)
         FROM ledger WHERE entitlement_id LIKE 'ent_b%' GROUP BY 1, 2",
        &[],
    )
    .await
    .context("ledger days")?;
    tx.execute(
        "INSERT INTO balances (entitlement_id, period_index, used_milli, held_milli, carried_milli,
             channels)
         SELECT e.id, 0, COALESCE(s.used, 0), 0, 0, '{}'::jsonb
         FROM entitlements e LEFT JOIN (SELECT entitlement_id, SUM(quantity_milli) AS used
             FROM ledger WHERE entitlement_id LIKE 'ent_b%' GROUP BY entitlement_id) s
             ON s.entitlement_id = e.id
         WHERE e.id LIKE 'ent_b%'",
        &[],
    )
    .await
    .context("balances")?;
    tx.commit().await?;
    client.batch_execute("VACUUM ANALYZE").await?;
    Ok(())
}

/// Waits until the server's scheduler has looked at every entitlement once (at most 15 min).
pub async fn settle(db: &ServerDb) -> Result<()> {
    const LEFT: &str = "SELECT COUNT(*) FROM entitlements e \
        WHERE NOT EXISTS (SELECT 1 FROM schedule s WHERE s.entitlement_id = e.id)";
    wait_for_count(
        db,
        LEFT,
        Duration::from_secs(1),
        |left| left == 0,
        |left| format!("the scheduler left {left} entitlements unseen after 15 minutes"),
    )
    .await
}

/// Reads the count `sql` every `every` until `done` holds of it; after 15
/// minutes, fails with what `late` says of the last count.
pub async fn wait_for_count(
    db: &ServerDb,
    sql: &'static str,
    every: Duration,
    done: impl Fn(i64) -> bool,
    late: impl Fn(i64) -> String,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let count: i64 = match db {
            ServerDb::Sqlite(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || -> Result<i64> {
                    let conn = Connection::open_with_flags(
                        &path,
                        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                    )?;
                    conn.busy_timeout(Duration::from_secs(60))?;
                    Ok(conn.query_row(sql, [], |r| r.get(0))?)
                })
                .await??
            }
            ServerDb::Postgres(url) => pg::connect(url).await?.query_one(sql, &[]).await?.get(0),
        };
        if done(count) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(late(count));
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_marks_the_substituted_fields() {
        let (tmpl, quoted) = template(
            r#"{"account_id":"acc_1","start_date":"2026-01-01","end_date":"2030-12-31","total":5,"name":"x"}"#,
        )
        .unwrap();
        assert!(!quoted);
        assert!(tmpl.contains(r#""account_id":"@ACC@""#) && tmpl.contains(r#""total":"@TOTAL@""#));
        assert!(template(r#"{"account_id":"a"}"#).is_err());
    }
}
