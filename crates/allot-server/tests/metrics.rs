//! `/metrics`. The recorder is one per process, so this test is a binary
//! of its own: every sample it reads was caused by its own requests, and
//! it can assert exact counts.

#[allow(dead_code)]
#[path = "api/common.rs"]
mod common;

use common::{spawn_app, Backend};
use reqwest::StatusCode;
use serde_json::json;

/// The value of the sample `name` whose labels include `labels`, if any.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            let wanted = labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            (metric == name && wanted).then(|| value.parse().unwrap())
        })
}

#[tokio::test]
async fn health_readiness_and_metrics_count_this_tests_requests() {
    let app = spawn_app(Backend::Sqlite).await;
    let get = |p: &str| app.http.get(format!("{}{p}", app.url)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), StatusCode::OK);
    assert_eq!(get("/readyz").await.unwrap().status(), StatusCode::OK);
    assert_eq!(get("/readyz").await.unwrap().status(), StatusCode::OK);
    let acc = app.account("Acme").await;
    let id = app.active_entitlement(&acc, json!({ "total": 1 })).await;
    assert_eq!(app.use_(&id, json!(1)).await.status, StatusCode::CREATED);
    assert_eq!(app.use_(&id, json!(1)).await.status, StatusCode::CONFLICT);

    let text = get("/metrics").await.unwrap().text().await.unwrap();
    let requests = |method: &str, route: &str, status: &str| {
        sample(
            &text,
            "allot_http_requests_total",
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    let usage = "/v1/entitlements/{id}/usage";
    assert_eq!(requests("GET", "/healthz", "200"), Some(1.0), "{text}");
    assert_eq!(requests("GET", "/readyz", "200"), Some(2.0), "{text}");
    assert_eq!(requests("POST", "/v1/accounts", "201"), Some(1.0), "{text}");
    assert_eq!(requests("POST", usage, "201"), Some(1.0), "{text}");
    assert_eq!(requests("POST", usage, "409"), Some(1.0), "{text}");
    let timed = sample(
        &text,
        "allot_http_request_duration_seconds_count",
        &[("method", "POST"), ("route", usage)],
    );
    assert_eq!(timed, Some(2.0), "{text}");
    assert_eq!(
        sample(&text, "allot_usage_writes_total", &[]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "allot_refusals_total",
            &[("code", "entitlement_exhausted")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "allot_write_batch_size_count", &[]),
        Some(2.0),
        "{text}"
    );
    // Labels are route templates: no id, and never a key.
    assert!(!text.contains(&id), "no raw path in metrics");
    assert!(!text.contains(&app.admin), "no key in metrics");
}
