//! `software`: reconciliation of a bulk-loaded fixture (`POST /v1/reconciliations`, and the
//! `software-compliance` report) against a raw SQL aggregate over the same tables in the same
//! run; then 64 clients allocating on one software entitlement, with the invariants checked.
//!
//! Fixture, loaded with `INSERT … SELECT` into the server's stopped database: M models
//! (`swm_b000000`…); E per-device perpetual entitlements (`swe_b0000000`…), entitlement `n` on
//! model `n % M` with ((n / M + n % M) % 7 + 1) × 20 rights at unit cost 1 (the record is that
//! of one entitlement the server created over HTTP, with id, model and rights substituted);
//! I installations, installation `g` on model `g % M`, device `d<g / M>`, seen at midnight UTC
//! (g / M) % 40 days ago (a quarter are older than the 30 stale days).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rusqlite::Connection;
use serde_json::{json, Value};

use crate::allot_target::Started;
use crate::cli::Backend;
use crate::pg::{self, DropList};
use crate::report::{Measurement, ScenarioReport};
use crate::runner::Bench;
use crate::scenario_reports::{
    client, managed, p50_report, server_db, timed, timing_measurement, verdict, RawDb,
};
use crate::scenario_reports_fixture::wait_for_count;
use crate::scenarios::Scenario;
use crate::server_db::ServerDb;
use crate::stats::{new_histogram, record, Counts, Summary};

#[derive(Debug, Clone, Copy)]
struct Sizes {
    models: u64,
    entitlements: u64,
    installations: u64,
    runs: usize,
    allocation_rights: u64,
}

impl Sizes {
    fn of(quick: bool) -> Self {
        if quick {
            Sizes {
                models: 100,
                entitlements: 1_000,
                installations: 100_000,
                runs: 5,
                allocation_rights: 500,
            }
        } else {
            Sizes {
                models: 1_000,
                entitlements: 10_000,
                installations: 1_000_000,
                runs: 3,
                allocation_rights: 2_000,
            }
        }
    }
}

/// Clients allocating at once on one entitlement.
const ALLOCATORS: usize = 64;

/// Owned and needed rights per model, by model id: the hand-written aggregate.
fn aggregate(sqlite: bool) -> String {
    let (rights, state, fresh) = if sqlite {
        (
            "CAST(json_extract(record, '$.terms.active_rights') AS INTEGER)",
            "json_extract(record, '$.state')",
            "strftime('%Y-%m-%dT%H:%M:%S.000000Z', 'now', '-30 days')",
        )
    } else {
        (
            "(record #>> '{terms,active_rights}')::BIGINT",
            "(record #>> '{state}')",
            "now() - INTERVAL '30 days'",
        )
    };
    format!(
        "SELECT m.id, CAST(COALESCE(o.owned, 0) AS BIGINT), CAST(COALESCE(i.needed, 0) AS BIGINT)
         FROM software_models m
         LEFT JOIN (SELECT software_model_id, SUM({rights}) AS owned FROM software_entitlements
                    WHERE {state} = 'in_use' GROUP BY software_model_id) o
                ON o.software_model_id = m.id
         LEFT JOIN (SELECT software_model_id, COUNT(*) AS needed FROM installations
                    WHERE seen_at >= {fresh} GROUP BY software_model_id) i
                ON i.software_model_id = m.id
         WHERE o.owned IS NOT NULL OR i.needed IS NOT NULL
         ORDER BY m.id"
    )
}

/// (model, owned, needed) rows of the aggregate.
async fn sql_rows(raw: &RawDb) -> Result<Vec<(String, i64, i64)>> {
    match raw {
        RawDb::Sqlite(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || -> Result<Vec<(String, i64, i64)>> {
                let conn =
                    Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                conn.busy_timeout(Duration::from_secs(60))?;
                let mut statement = conn.prepare(&aggregate(true))?;
                let rows = statement
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                Ok(rows)
            })
            .await?
        }
        RawDb::Postgres(client) => Ok(client
            .query(&aggregate(false), &[])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()),
    }
}

pub async fn run(
    bench: &Bench,
    backend: Backend,
    drops: &mut DropList,
) -> Result<Vec<ScenarioReport>> {
    let sizes = Sizes::of(bench.args.quick);
    let allot = managed(bench, backend, drops).await?;
    let db = server_db(&allot)?.clone();
    let started = allot.start().await?;
    let http = client()?;
    let setup = async {
        let model = post(
            &http,
            &started,
            "/v1/software-models",
            json!({ "publisher": "Bench", "product": "Template", "version": "1" }),
        )
        .await?;
        let model = model["id"].as_str().context("model id")?.to_owned();
        let template = entitlement(&http, &started, &model, 10).await?;
        let target = entitlement(&http, &started, &model, sizes.allocation_rights).await?;
        Ok::<_, anyhow::Error>((model, template, target))
    }
    .await;
    started.stop().await?;
    let (model, template, target) = setup?;
    let began = Instant::now();
    load(&db, &template, &model, sizes).await?;
    eprintln!(
        "setup: {} models, {} software entitlements, {} installations bulk-loaded in {:.1}s",
        sizes.models,
        sizes.entitlements,
        sizes.installations,
        began.elapsed().as_secs_f64()
    );
    let started = allot.start().await?;
    let result = measure(backend, &db, &started, &target, sizes).await;
    started.stop().await?;
    result
}

async fn post(http: &reqwest::Client, started: &Started, path: &str, body: Value) -> Result<Value> {
    let response = http
        .post(format!("{}{path}", started.url))
        .bearer_auth(&started.key)
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let value: Value = response.json().await?;
    if !status.is_success() {
        bail!("POST {path} -> {status}: {value}");
    }
    Ok(value)
}

/// A published per-device entitlement with `rights`, unit cost 1; its id.
async fn entitlement(
    http: &reqwest::Client,
    started: &Started,
    model: &str,
    rights: u64,
) -> Result<String> {
    let created = post(
        http,
        started,
        "/v1/software-entitlements",
        json!({ "software_model_id": model, "license_metric": "per_device",
                "license_type": "perpetual", "purchased_rights": rights, "unit_cost": 1 }),
    )
    .await?;
    let id = created["id"].as_str().context("entitlement id")?.to_owned();
    post(
        http,
        started,
        &format!("/v1/software-entitlements/{id}/publish"),
        json!({}),
    )
    .await?;
    Ok(id)
}

/// The record with `"@ID@"`, `"@MODEL@"` and `"@RIGHTS@"` markers.
fn template(record: &str, id: &str, model: &str) -> Result<String> {
    fn walk(v: &mut Value, id: &str, model: &str, found: &mut u32) {
        match v {
            Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    if key == "purchased_rights" || key == "active_rights" {
                        *value = Value::String("@RIGHTS@".into());
                        *found += 1;
                    } else {
                        walk(value, id, model, found);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, id, model, found)),
            Value::String(s) if s == id => *s = "@ID@".into(),
            Value::String(s) if s == model => *s = "@MODEL@".into(),
            _ => {}
        }
    }
    let mut value: Value = serde_json::from_str(record)?;
    let mut found = 0;
    walk(&mut value, id, model, &mut found);
    if found != 2 {
        bail!("the template record has {found} rights fields: {record}");
    }
    let text = serde_json::to_string(&value)?;
    if !text.contains("\"@ID@\"") || !text.contains("\"@MODEL@\"") {
        bail!("the template record does not name its id and model: {record}");
    }
    Ok(text)
}

fn record_sql(param: &str) -> String {
    format!(
        "replace(replace(replace({param}, '\"@ID@\"', '\"' || id || '\"'), \
         '\"@MODEL@\"', '\"' || model || '\"'), '\"@RIGHTS@\"', CAST(rights AS TEXT))"
    )
}

async fn load(db: &ServerDb, template_id: &str, model: &str, sizes: Sizes) -> Result<()> {
    let (m, e, i) = (
        i64::try_from(sizes.models)?,
        i64::try_from(sizes.entitlements)?,
        i64::try_from(sizes.installations)?,
    );
    match db {
        ServerDb::Sqlite(path) => {
            let (path, template_id, model) =
                (path.clone(), template_id.to_owned(), model.to_owned());
            tokio::task::spawn_blocking(move || -> Result<()> {
                let mut conn = Connection::open(&path)?;
                conn.busy_timeout(Duration::from_secs(60))?;
                let record: String = conn.query_row(
                    "SELECT record FROM software_entitlements WHERE id = ?1",
                    [&template_id],
                    |r| r.get(0),
                )?;
                let tmpl = template(&record, &template_id, &model)?;
                let now = "2026-01-01T00:00:00.000000Z";
                let tx = conn.transaction()?;
                tx.execute(
                    "WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n + 1 < ?1)
                     INSERT INTO software_models (id, publisher, product, version, created_at, updated_at)
                     SELECT printf('swm_b%06d', n), 'Bench', printf('Product %d', n), '1', ?2, ?2 FROM s",
                    rusqlite::params![m, now],
                )?;
                tx.execute(
                    &format!(
                        "WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n + 1 < :e),
                         f AS (SELECT printf('swe_b%07d', n) AS id, printf('swm_b%06d', n % :m) AS model,
                               ((n / :m + n % :m) % 7 + 1) * 20 AS rights FROM s)
                         INSERT INTO software_entitlements (id, software_model_id, account_id, record,
                             created_at, updated_at)
                         SELECT id, model, NULL, {}, :now, :now FROM f",
                        record_sql(":tmpl")
                    ),
                    rusqlite::named_params! { ":e": e, ":m": m, ":tmpl": tmpl, ":now": now },
                )
                .context("software entitlements")?;
                tx.execute(
                    "WITH RECURSIVE s(g) AS (SELECT 0 UNION ALL SELECT g + 1 FROM s WHERE g + 1 < ?1)
                     INSERT INTO installations (software_model_id, device, user_name, cores, seen_at)
                     SELECT printf('swm_b%06d', g % ?2), printf('d%d', g / ?2), NULL, NULL,
                         strftime('%Y-%m-%dT00:00:00.000000Z', 'now', printf('-%d days', (g / ?2) % 40))
                     FROM s",
                    rusqlite::params![i, m],
                )
                .context("installations")?;
                tx.commit()?;
                conn.execute_batch("ANALYZE")?;
                Ok(())
            })
            .await?
        }
        ServerDb::Postgres(url) => {
            let mut client = pg::connect(url).await?;
            client.batch_execute("SET TIME ZONE 'UTC'").await?;
            let record: String = client
                .query_one(
                    "SELECT record::text FROM software_entitlements WHERE id = $1",
                    &[&template_id],
                )
                .await?
                .get(0);
            let tmpl = template(&record, template_id, model)?;
            let tx = client.transaction().await?;
            tx.execute(
                "INSERT INTO software_models (id, publisher, product, version, created_at, updated_at)
                 SELECT 'swm_b' || lpad(n::text, 6, '0'), 'Bench', 'Product ' || n, '1', now(), now()
                 FROM generate_series(0, $1::BIGINT - 1) AS n",
                &[&m],
            )
            .await?;
            tx.execute(
                &format!(
                    "WITH f AS (SELECT 'swe_b' || lpad(n::text, 7, '0') AS id,
                         'swm_b' || lpad((n % $2::BIGINT)::text, 6, '0') AS model,
                         ((n / $2::BIGINT + n % $2::BIGINT) % 7 + 1) * 20 AS rights
                         FROM generate_series(0, $1::BIGINT - 1) AS n)
                     INSERT INTO software_entitlements (id, software_model_id, account_id, record,
                         created_at, updated_at)
                     SELECT id, model, NULL, ({})::jsonb, now(), now() FROM f",
                    record_sql("$3::text")
                ),
                &[&e, &m, &tmpl],
            )
            .await
            .context("software entitlements")?;
            tx.execute(
                "INSERT INTO installations (software_model_id, device, user_name, cores, seen_at)
                 SELECT 'swm_b' || lpad((g % $2::BIGINT)::text, 6, '0'), 'd' || (g / $2::BIGINT),
                     NULL, NULL,
                     (CURRENT_DATE - ((g / $2::BIGINT) % 40)::int)::timestamp AT TIME ZONE 'UTC'
                 FROM generate_series(0, $1::BIGINT - 1) AS g",
                &[&i, &m],
            )
            .await
            .context("installations")?;
            tx.commit().await?;
            client.batch_execute("VACUUM ANALYZE").await?;
            Ok(())
        }
    }
}

/// (model, rights owned, rights needed) of each item of an answer.
fn owned_and_needed(answer: &Value) -> Result<Vec<(String, i64, i64)>> {
    let items = answer["items"].as_array().context("items")?;
    Ok(items
        .iter()
        .map(|i| {
            (
                i["software_model_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                i["rights_owned"].as_i64().unwrap_or(-1),
                i["rights_needed"].as_i64().unwrap_or(-1),
            )
        })
        .collect())
}

/// Waits for the reconciliation the server's schedule runs at start (at most 15 minutes).
async fn scheduled_reconciliation(db: &ServerDb) -> Result<()> {
    const KEPT: &str = "SELECT COUNT(*) FROM reconciliations";
    let late = |_| "no scheduled reconciliation after 15 minutes".to_string();
    wait_for_count(db, KEPT, Duration::from_millis(500), |kept| kept > 0, late).await
}

async fn measure(
    backend: Backend,
    db: &ServerDb,
    started: &Started,
    target: &str,
    sizes: Sizes,
) -> Result<Vec<ScenarioReport>> {
    let began = Instant::now();
    scheduled_reconciliation(db).await?;
    eprintln!(
        "setup: the scheduled reconciliation at start finished after {:.1}s",
        began.elapsed().as_secs_f64()
    );
    let raw = RawDb::open(db).await?;
    let http = client()?;
    let mut reports = Vec::new();
    let fixture = format!(
        "{} installations, {} software entitlements, {} models",
        sizes.installations, sizes.entitlements, sizes.models
    );

    eprintln!("[{}] software: reconcile", backend.name());
    let (allot_times, run) = timed(sizes.runs, || {
        post(&http, started, "/v1/reconciliations", json!({}))
    })
    .await?;
    let (sql_times, sql) = timed(sizes.runs, || sql_rows(&raw)).await?;
    let allot_rows = owned_and_needed(&run)?;
    let mut problems = Vec::new();
    if allot_rows != sql {
        let at = allot_rows.iter().zip(&sql).position(|(a, b)| a != b);
        problems.push(format!(
            "reconciliation gave {} rows, SQL {}; first difference at {at:?}: {:?} vs {:?}",
            allot_rows.len(),
            sql.len(),
            at.and_then(|i| allot_rows.get(i)),
            at.and_then(|i| sql.get(i))
        ));
    }
    let under = run["items"].as_array().map_or(0, |items| {
        items
            .iter()
            .filter(|i| i["status"] == "under_licensed")
            .count()
    });
    reports.push(p50_report(
        backend,
        Scenario::Software,
        timing_measurement(
            "reconcile",
            &allot_times,
            verdict("owned+needed", allot_rows.len(), problems.clone()),
        ),
        timing_measurement("sql aggregate", &sql_times, verdict("owned+needed", sql.len(), problems)),
        format!(
            "POST /v1/reconciliations (all models, kept as history) over {fixture}; {under} of {} rows under-licensed",
            allot_rows.len()
        ),
    ));
    print_last(&reports);

    eprintln!("[{}] software: software-compliance report", backend.name());
    let (allot_times, page) = timed(sizes.runs, || async {
        let url = format!("{}/v1/reports/software-compliance?limit=1000", started.url);
        let response = http.get(&url).bearer_auth(&started.key).send().await?;
        let status = response.status();
        let value: Value = response.json().await?;
        if !status.is_success() {
            bail!("GET software-compliance -> {status}: {value}");
        }
        Ok(value)
    })
    .await?;
    let (sql_times, _) = timed(sizes.runs, || sql_rows(&raw)).await?;
    let listed = owned_and_needed(&page)?;
    let expected: Vec<_> = sql.iter().take(1000).cloned().collect();
    let problems = if listed == expected {
        Vec::new()
    } else {
        vec![format!(
            "the report's first 1000 rows differ from SQL ({} vs {} rows)",
            listed.len(),
            expected.len()
        )]
    };
    reports.push(p50_report(
        backend,
        Scenario::Software,
        timing_measurement(
            "compliance p1",
            &allot_times,
            verdict("owned+needed", listed.len(), problems.clone()),
        ),
        timing_measurement("sql aggregate", &sql_times, verdict("owned+needed", sql.len(), problems)),
        format!("GET /v1/reports/software-compliance?limit=1000 (reconciled live, nothing kept) over {fixture}"),
    ));
    print_last(&reports);

    eprintln!(
        "[{}] software: {ALLOCATORS} clients allocating",
        backend.name()
    );
    reports.push(allocations(backend, db, started, target, sizes).await?);
    print_last(&reports);
    Ok(reports)
}

fn print_last(reports: &[ScenarioReport]) {
    if let Some(last) = reports.last() {
        for line in crate::report::scenario_lines(last) {
            println!("{line}");
        }
    }
}

/// 64 clients allocate 1 right each on one entitlement until 2 × its rights were asked for.
async fn allocations(
    backend: Backend,
    db: &ServerDb,
    started: &Started,
    target: &str,
    sizes: Sizes,
) -> Result<ScenarioReport> {
    let http = client()?;
    let attempts = sizes.allocation_rights * 2;
    let next = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..ALLOCATORS {
        let (http, next, url, key) = (
            http.clone(),
            Arc::clone(&next),
            format!(
                "{}/v1/software-entitlements/{target}/allocations",
                started.url
            ),
            started.key.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut hist = new_histogram();
            let mut counts = Counts::default();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= attempts {
                    break;
                }
                let sent = Instant::now();
                let answer = http
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({ "device": format!("alloc-{n}"), "quantity": 1 }))
                    .send()
                    .await;
                match answer {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body: Value = response.json().await.unwrap_or(Value::Null);
                        record(&mut hist, sent.elapsed());
                        match (status, body["error"]["code"].as_str()) {
                            (201, _) => counts.ok += 1,
                            (409, Some("rights_exhausted")) => counts.refused += 1,
                            (status, code) => counts.add_unexpected(format!("{status} {code:?}")),
                        }
                    }
                    Err(err) => counts.add_unexpected(format!("transport: {err}")),
                }
            }
            (hist, counts)
        }));
    }
    let mut hist = new_histogram();
    let mut counts = Counts::default();
    for task in tasks {
        let (h, c) = task.await?;
        hist.add(&h)?;
        counts.merge(c);
    }
    let elapsed = began.elapsed();
    // The invariants, from the API and from the database.
    let view: Value = http
        .get(format!("{}/v1/software-entitlements/{target}", started.url))
        .bearer_auth(&started.key)
        .send()
        .await?
        .json()
        .await?;
    let (allocated, active) = (
        view["allocated_rights"].as_i64().unwrap_or(-1),
        view["active_rights"].as_i64().unwrap_or(-1),
    );
    let (rows, sum) = allocation_rows(db, target).await?;
    let mut problems = Vec::new();
    let rights = sizes.allocation_rights as i64;
    if allocated > active {
        problems.push(format!(
            "allocated {allocated} above the {active} active rights"
        ));
    }
    if allocated != sum || sum != counts.ok as i64 || rows != counts.ok as i64 {
        problems.push(format!(
            "allocated_rights {allocated}, Σ allocations {sum} ({rows} rows), acknowledged {}",
            counts.ok
        ));
    }
    if counts.ok as i64 != rights || counts.refused as i64 != rights {
        problems.push(format!(
            "{} allocated / {} refused, expected {rights} / {rights}",
            counts.ok, counts.refused
        ));
    }
    if counts.unexpected_total() > 0 {
        problems.push(format!("unexpected answers: {:?}", counts.unexpected));
    }
    let measured = Measurement {
        target: "allocate".to_owned(),
        summary: Summary::new(&hist, elapsed),
        counts,
        peak_rss_kib: None,
        bench_cpu_cores: None,
        server_cpu_cores: None,
        db_cpu_cores: None,
        verdict: Some(verdict("api+database", rows as usize, problems)),
    };
    let mut report = ScenarioReport::new(backend, Scenario::Software, measured, None);
    report.notes.push(format!(
        "{ALLOCATORS} clients, {attempts} allocations of 1 asked on one entitlement of {rights} rights; \
         checked: allocated_rights ({allocated}) <= active_rights ({active}), == Σ allocation rows ({sum}) == 201s"
    ));
    Ok(report)
}

async fn allocation_rows(db: &ServerDb, target: &str) -> Result<(i64, i64)> {
    const SQL: &str = "SELECT COUNT(*), CAST(COALESCE(SUM(quantity), 0) AS BIGINT) \
        FROM software_allocations WHERE entitlement_id = ";
    match db {
        ServerDb::Sqlite(path) => {
            let (path, target) = (path.clone(), target.to_owned());
            tokio::task::spawn_blocking(move || -> Result<(i64, i64)> {
                let conn =
                    Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                Ok(conn.query_row(&format!("{SQL}?1"), [&target], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?)
            })
            .await?
        }
        ServerDb::Postgres(url) => {
            let row = pg::connect(url)
                .await?
                .query_one(&format!("{SQL}$1"), &[&target])
                .await?;
            Ok((row.get(0), row.get(1)))
        }
    }
}
