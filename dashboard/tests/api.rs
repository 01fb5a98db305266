//! The dashboard API against a real PostgreSQL with seeded rows: shapes,
//! ranges and bucket choice, forecasts, decisions and outcomes, pipeline
//! health, ops routes, and hostile parameter values.

mod common;

use common::{Env, ms};
use prescient_dashboard::auth::Role;
use serde_json::Value;

fn nums(v: &Value) -> Vec<Option<f64>> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64())
        .collect()
}

/// Buckets of `b` ms covering `[from, to)`, the first aligned down.
fn buckets(from: i64, to: i64, b: i64) -> usize {
    let first = from.div_euclid(b) * b;
    ((to - first + b - 1) / b) as usize
}

#[tokio::test]
async fn series_ranges_pick_buckets_and_keep_gaps() {
    let env = Env::start(|_| {}).await;
    env.seed().await;
    // A gap: one minute without a row.
    sqlx::query("DELETE FROM service_minute WHERE service = 'checkout' AND minute = $1")
        .bind(env.t0 - chrono::Duration::minutes(30))
        .execute(&env.pool)
        .await
        .unwrap();
    let (_, admin) = env.token("admin", Role::Admin, None).await;
    let t0 = ms(env.t0);
    let hour = 3_600_000;

    // 1 hour: per minute, 60 buckets, the gap is null.
    let (status, s) = env
        .get(
            &format!(
                "/api/v1/services/checkout/series?from={}&to={t0}",
                t0 - hour
            ),
            Some(&admin),
        )
        .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["bucket_s"], 60);
    let t = s["t"].as_array().unwrap();
    assert_eq!(t.len(), 60);
    assert_eq!(t[0].as_i64().unwrap(), t0 - hour);
    let req = nums(&s["requests"]);
    assert_eq!(req[30], None, "the missing minute stays a gap");
    assert!(
        req.iter()
            .enumerate()
            .all(|(i, r)| i == 30 || *r == Some(100.0))
    );
    for col in [
        "errors",
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
        "active_users",
    ] {
        assert_eq!(s[col].as_array().unwrap().len(), 60, "{col}");
    }
    assert_eq!(nums(&s["latency_p99_ms"])[0], Some(50.0));

    // 24 hours: 5-minute buckets, per-minute means; p95 is the bucket's max.
    let (_, s) = env
        .get(
            &format!(
                "/api/v1/services/checkout/series?from={}&to={t0}",
                t0 - 24 * hour
            ),
            Some(&admin),
        )
        .await;
    assert_eq!(s["bucket_s"], 300);
    assert_eq!(
        s["t"].as_array().unwrap().len(),
        buckets(t0 - 24 * hour, t0, 300_000)
    );
    assert!(nums(&s["requests"]).iter().all(|r| *r == Some(100.0)));
    // Every full bucket has a minute with p95 = 24 (the newest bucket may be
    // partial), except the bucket of the deleted minute when that minute was
    // its 24 (minute % 5 == 4): its max is then 23.
    let p95 = nums(&s["latency_p95_ms"]);
    let starts: Vec<i64> = s["t"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let gap = t0 - 30 * 60_000;
    let gap_max = if (gap / 60_000) % 5 == 4 { 23.0 } else { 24.0 };
    for (i, r) in p95[..p95.len() - 1].iter().enumerate() {
        let expected = if (starts[i]..starts[i] + 300_000).contains(&gap) {
            gap_max
        } else {
            24.0
        };
        assert_eq!(*r, Some(expected), "bucket {i} of {p95:?}");
    }

    // 7 days: hourly buckets.
    let (_, s) = env
        .get(
            &format!(
                "/api/v1/services/checkout/series?from={}&to={t0}",
                t0 - 7 * 24 * hour
            ),
            Some(&admin),
        )
        .await;
    assert_eq!(s["bucket_s"], 3600);
    assert_eq!(
        s["t"].as_array().unwrap().len(),
        buckets(t0 - 7 * 24 * hour, t0, hour)
    );
    assert!(nums(&s["errors"]).iter().all(|r| *r == Some(2.0)));

    // Named ranges end now.
    for (range, bucket) in [("1h", 60), ("6h", 60), ("24h", 300), ("7d", 3600)] {
        let (status, s) = env
            .get(
                &format!("/api/v1/services/checkout/series?range={range}"),
                Some(&admin),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(s["bucket_s"], bucket, "{range}");
        assert!(s["to_ms"].as_i64().unwrap() >= t0);
    }
    // A service without rows: all gaps, not an error.
    let (status, s) = env
        .get(
            "/api/v1/services/nothing-here/series?range=1h",
            Some(&admin),
        )
        .await;
    assert_eq!(status, 200);
    assert!(nums(&s["requests"]).iter().all(Option::is_none));
}

#[tokio::test]
async fn overview_forecasts_decisions_and_pipeline_have_their_shapes() {
    let env = Env::start(|_| {}).await;
    env.seed().await;
    let (_, viewer) = env.token("viewer", Role::Viewer, None).await;
    let t0 = ms(env.t0);

    let (status, o) = env.get("/api/v1/overview", Some(&viewer)).await;
    assert_eq!(status, 200, "{o}");
    // A client that accepts gzip gets the same answer, pre-compressed.
    for path in [
        "/api/v1/overview",
        "/api/v1/services/checkout/series?range=24h",
    ] {
        let with_encoding = |accepted: &'static str| {
            env.http
                .get(format!("{}{path}", env.base))
                .bearer_auth(&viewer)
                .header("accept-encoding", accepted)
                .send()
        };
        let res = with_encoding("br, gzip;q=0.8").await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-encoding"], "gzip", "{path}");
        assert_eq!(res.headers()["vary"], "accept-encoding");
        let zipped = res.bytes().await.unwrap();
        let mut json = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&zipped[..]), &mut json)
            .unwrap();
        let plain = env.get(path, Some(&viewer)).await.1;
        let unzipped: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(unzipped["services"], plain["services"], "{path}");
        assert_eq!(unzipped["requests"], plain["requests"], "{path}");
        assert!(
            zipped.len() * 2 < json.len(),
            "{path}: {} of {}",
            zipped.len(),
            json.len()
        );
        let refused = with_encoding("gzip;q=0, identity").await.unwrap();
        assert!(
            refused.headers().get("content-encoding").is_none(),
            "{path}"
        );
    }
    assert_eq!(o["frontier_ms"], t0);
    assert_eq!(o["minute_ms"], t0 - 60_000, "the last closed minute");
    assert_eq!(o["events_per_s"].as_f64().unwrap(), 110.0 / 60.0);
    assert_eq!(o["error_rate"].as_f64().unwrap(), 2.0 / 110.0);
    assert_eq!(o["active_users"], 33);
    assert_eq!(o["freshness_p99_ms"].as_f64().unwrap(), 1900.0);
    let services = o["services"].as_array().unwrap();
    assert_eq!(services.len(), 2);
    let checkout = &services[0];
    assert_eq!(checkout["service"], "checkout", "busiest first");
    assert_eq!(checkout["requests_per_min"], 100);
    assert_eq!(checkout["spark"]["t"].as_array().unwrap().len(), 60);
    assert!(
        nums(&checkout["spark"]["requests"])
            .iter()
            .all(|r| *r == Some(100.0))
    );
    let band = &checkout["forecast"];
    assert_eq!(band["t"].as_array().unwrap().len(), 60);
    assert_eq!(
        band["t"][0], t0,
        "the latest forecast starts at the open minute"
    );
    assert_eq!(band["p50"][0].as_f64().unwrap(), 101.0);
    assert_eq!(checkout["no_forecast_reason"], Value::Null);
    assert_eq!(checkout["desired"], 3);
    assert_eq!(checkout["current"], 5);
    let search = &services[1];
    assert_eq!(search["forecast"], Value::Null);
    assert!(
        search["no_forecast_reason"]
            .as_str()
            .unwrap()
            .starts_with("no forecast yet"),
        "{search}"
    );

    let (_, list) = env.get("/api/v1/services", Some(&viewer)).await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["checkout", "search"]);
    assert_eq!(list[0]["last_minute_ms"], t0 - 60_000);

    let (status, f) = env
        .get("/api/v1/services/checkout/forecast", Some(&viewer))
        .await;
    assert_eq!(status, 200);
    assert_eq!(f["issued_at_ms"], t0);
    assert_eq!(f["model"], "auto");
    assert_eq!(f["p90"].as_array().unwrap().len(), 60);
    let (status, f) = env
        .get("/api/v1/services/search/forecast", Some(&viewer))
        .await;
    assert_eq!(status, 404);
    assert!(
        f["reason"].as_str().unwrap().contains("minutes of history"),
        "{f}"
    );

    let (status, h) = env
        .get(
            &format!(
                "/api/v1/services/checkout/forecast-history?horizon=15&from={}&to={t0}",
                t0 - 3_600_000
            ),
            Some(&viewer),
        )
        .await;
    assert_eq!(status, 200, "{h}");
    assert_eq!(h["horizon"], 15);
    assert!(nums(&h["p50"]).iter().all(|p| *p == Some(115.0)), "{h}");
    let (status, _) = env
        .get(
            "/api/v1/services/checkout/forecast-history?horizon=0",
            Some(&viewer),
        )
        .await;
    assert_eq!(status, 400);

    let (_, d) = env.get("/api/v1/decisions?range=1h", Some(&viewer)).await;
    let d = d.as_array().unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(
        d[0]["id"], "00000000-0000-0000-0000-000000000002",
        "newest first"
    );
    assert_eq!(d[0]["outcome"], Value::Null);
    assert_eq!(d[0]["forecast"], Value::Null);
    assert_eq!(d[1]["outcome"], "clamped");
    assert_eq!(d[1]["applied"], 5);
    assert_eq!(d[1]["outcome_reason"], "max is 5");
    assert_eq!(d[1]["forecast"]["horizon"], 5);
    // 5 replicas until the next decision 30 minutes later.
    assert!((d[1]["replica_hours"].as_f64().unwrap() - 2.5).abs() < 1e-9);
    // 3 replicas until it expires 5 minutes later.
    assert!((d[0]["replica_hours"].as_f64().unwrap() - 0.25).abs() < 1e-9);
    let (_, d) = env
        .get(
            "/api/v1/decisions?range=1h&service=search&limit=5",
            Some(&viewer),
        )
        .await;
    assert_eq!(d.as_array().unwrap().len(), 0);

    let (_, r) = env
        .get("/api/v1/services/checkout/replicas?range=1h", Some(&viewer))
        .await;
    assert_eq!(r["desired"], serde_json::json!([6, 3]));
    assert_eq!(r["current"], serde_json::json!([2, 5]));
    assert_eq!(r["applied"], serde_json::json!([5, null]));

    let (status, p) = env.get("/api/v1/pipeline?range=1h", Some(&viewer)).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["keys_held"], 42);
    assert_eq!(p["partitions"][0]["lag"], 10);
    assert_eq!(p["partitions"][1]["lag"], Value::Null);
    let dl = &p["dead_letters"];
    let by = &dl["by_reason"];
    let total = |reason: &str| -> i64 {
        by[reason]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .sum()
    };
    assert_eq!(total("invalid_json"), 5);
    assert_eq!(total("too_late"), 1);
    assert_eq!(
        by["invalid_json"].as_array().unwrap().len(),
        dl["t"].as_array().unwrap().len()
    );
    assert_eq!(
        p["accuracy"][0]["mase"].as_f64().unwrap(),
        0.8,
        "latest row"
    );
    assert!(
        nums(&p["events"]["per_s"])
            .iter()
            .flatten()
            .all(|v| *v == 100.0)
    );
}

#[tokio::test]
async fn ops_routes_openapi_and_hostile_values() {
    let env = Env::start(|_| {}).await;
    env.seed().await;
    let (_, admin) = env.token("admin", Role::Admin, None).await;
    let (status, body) = env.get("/healthz", None).await;
    assert_eq!((status, body.as_str()), (200, Some("ok\n")));
    let (status, _) = env.get("/readyz", None).await;
    assert_eq!(status, 200);

    let (status, doc) = env.get("/api/openapi.json", None).await;
    assert_eq!(status, 200);
    for path in [
        "/api/v1/overview",
        "/api/v1/services/{service}/series",
        "/api/v1/decisions",
        "/api/v1/pipeline",
        "/api/v1/stream",
        "/api/v1/tokens",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    // SQL-looking values are data, never SQL.
    for path in [
        "/api/v1/services/x'%3B%20DROP%20TABLE%20service_minute%3B%20--/series",
        "/api/v1/services/checkout/series?range=1h'%20OR%20'1'%3D'1",
        "/api/v1/services/checkout/series?from=0%20OR%201%3D1&to=5",
        "/api/v1/decisions?service='%20OR%20''%3D'",
        "/api/v1/decisions?limit=1;DELETE",
        "/api/v1/services/checkout/forecast-history?horizon=15%20OR%201%3D1",
    ] {
        let (status, body) = env.get(path, Some(&admin)).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: JSON error body");
    }
    let (status, _) = env
        .get(
            "/api/v1/services/checkout/series?range=1h&service=x'--",
            Some(&admin),
        )
        .await;
    assert_eq!(status, 200, "unknown parameters are ignored");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM service_minute")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert!(rows > 11_000, "tables intact");
    let (status, body) = env.get("/api/v1/nope", Some(&admin)).await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
    // The web app is not built in tests: the page says how.
    let (status, body) = env.get("/services/checkout", None).await;
    assert_eq!(status, 503);
    assert!(body.as_str().unwrap().contains("npm ci"));

    let (status, metrics) = env.get("/metrics", None).await;
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains(
            "prescient_dashboard_http_requests_total{method=\"GET\",route=\"/api/v1/services/{service}/series\",status=\"400\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("prescient_dashboard_http_request_duration_seconds_bucket"));
    assert!(metrics.contains("prescient_dashboard_sse_clients 0"));
}

/// The start of `t`'s hour.
fn hour_of(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t.timestamp().div_euclid(3600) * 3600, 0).unwrap()
}

#[tokio::test]
async fn tenant_week_view_reads_the_hourly_rollup_and_agrees_with_raw_minutes() {
    let env = Env::start(|c| c.rollup_interval = None).await;
    env.seed().await;
    // Three days of varied rows for acme/checkout on a third endpoint (mm =
    // the minute's number since the epoch): latencies missing every 7th
    // minute, errors and users varying.
    sqlx::query(
        "INSERT INTO metrics_minute (tenant, service, endpoint, minute, requests, errors, latency_p50_ms, latency_p95_ms, latency_p99_ms, active_users)
         SELECT 'acme', 'checkout', '/c', m, 1 + mm % 13, mm % 3,
                CASE WHEN mm % 7 = 0 THEN NULL ELSE 5 + mm % 11 END,
                CASE WHEN mm % 7 = 0 THEN NULL ELSE 20 + mm % 17 END,
                CASE WHEN mm % 7 = 0 THEN NULL ELSE 40 + mm % 19 END, 1 + mm % 5
         FROM generate_series($1 - interval '3 days', $1 - interval '1 minute', interval '1 minute') AS m,
              LATERAL (SELECT (extract(epoch FROM m)::bigint / 60) AS mm) AS n",
    )
    .bind(env.t0)
    .execute(&env.pool)
    .await
    .unwrap();
    let (_, acme) = env.token("acme", Role::Viewer, Some("acme")).await;
    let (t0, week) = (ms(env.t0), 7 * 24 * 3_600_000);
    let series = |from: i64| {
        let path = format!("/api/v1/services/checkout/series?from={from}&to={t0}");
        let (env, acme) = (&env, &acme);
        async move {
            let (status, s) = env.get(&path, Some(acme)).await;
            assert_eq!(status, 200, "{s}");
            assert_eq!(s["bucket_s"], 3600);
            s
        }
    };
    // Nothing rolled up yet: every bucket from the raw minutes. (Each
    // request below moves `from` by a millisecond, a new cache key with
    // the same buckets.)
    let raw = series(t0 - week).await;

    let rolled = prescient_dashboard::roll_up(&env.pool, None).await.unwrap();
    // The frontier is t0 with 10 minutes of lateness: hours ending at or
    // before t0 - 10 min are final, from the oldest row's hour.
    let until = hour_of(env.t0 - chrono::Duration::minutes(10));
    let first = hour_of(env.t0 - chrono::Duration::days(3));
    assert_eq!(rolled.until, Some(until));
    assert_eq!(i64::from(rolled.hours), (until - first).num_hours());
    let unfinal: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tenant_service_hour WHERE hour >= $1")
            .bind(until)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(unfinal, 0, "an hour that is not final is never rolled up");
    let again = prescient_dashboard::roll_up(&env.pool, None).await.unwrap();
    assert_eq!(again.hours, 0, "nothing to do twice");

    let combined = series(t0 - week + 1).await;
    let starts: Vec<i64> = combined["t"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    for col in [
        "requests",
        "errors",
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
        "active_users",
    ] {
        let (a, b) = (nums(&raw[col]), nums(&combined[col]));
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            match (x, y) {
                (Some(x), Some(y)) => assert!(
                    (x - y).abs() <= 1e-9 * x.abs().max(1.0),
                    "{col} bucket {i}: raw {x}, rolled {y}"
                ),
                _ => assert_eq!(x, y, "{col} bucket {i}"),
            }
        }
    }

    // One rolled-up hour from first principles: the mean per minute of the
    // requests, and p50 weighted by the requests of the minutes that have one.
    let h = first + chrono::Duration::hours(1);
    let i = starts.iter().position(|&s| s == ms(h)).unwrap();
    let minutes: Vec<i64> = (0..60).map(|k| h.timestamp() / 60 + k).collect();
    let mean = minutes.iter().map(|mm| (1 + mm % 13) as f64).sum::<f64>() / 60.0;
    let (num, den) = minutes
        .iter()
        .filter(|mm| *mm % 7 != 0)
        .fold((0.0, 0.0), |(n, d), mm| {
            let r = (1 + mm % 13) as f64;
            (n + (5 + mm % 11) as f64 * r, d + r)
        });
    let max_p99 = minutes
        .iter()
        .filter(|mm| *mm % 7 != 0)
        .map(|mm| (40 + mm % 19) as f64)
        .fold(0.0, f64::max);
    let close = |got: Option<f64>, want: f64| {
        assert!((got.unwrap() - want).abs() < 1e-9, "{got:?} against {want}")
    };
    close(nums(&combined["requests"])[i], mean);
    close(nums(&combined["latency_p50_ms"])[i], num / den);
    close(nums(&combined["latency_p99_ms"])[i], max_p99);

    // Rows in hours after the rollup still count: a new endpoint in the
    // last minute shows in the newest bucket, and again once its hour is
    // final and rolled up.
    sqlx::query(
        "INSERT INTO metrics_minute (tenant, service, endpoint, minute, requests, errors, active_users)
         VALUES ('acme', 'checkout', '/d', $1 - interval '1 minute', 6000, 0, 1)",
    )
    .bind(env.t0)
    .execute(&env.pool)
    .await
    .unwrap();
    let last = |s: &Value| *nums(&s["requests"]).last().unwrap();
    let before = last(&combined).unwrap();
    let fresh = series(t0 - week + 2).await;
    let minutes_in_last_bucket = (t0 - *starts.last().unwrap()) / 60_000;
    close(
        last(&fresh),
        before + 6000.0 / minutes_in_last_bucket as f64,
    );
    sqlx::query("UPDATE ingest_frontier SET frontier_ms = frontier_ms + 7200000")
        .execute(&env.pool)
        .await
        .unwrap();
    let rolled = prescient_dashboard::roll_up(&env.pool, None).await.unwrap();
    assert!(rolled.hours >= 1 && rolled.until > Some(env.t0));
    close(last(&series(t0 - week + 3).await), last(&fresh).unwrap());
}
