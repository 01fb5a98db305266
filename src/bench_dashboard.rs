//! `prescient bench dashboard`: API latency of the dashboard under load.
//!
//! Seeds a private PostgreSQL (or `--database-url`) with SQL
//! (`generate_series`): `--days` of per-minute `service_minute` rows for
//! `--services` services, `metrics_minute` rows for services × endpoints ×
//! tenants over the last `--metrics-hours`, the latest forecasts and a day
//! of decisions; starts the dashboard in this process and drives it with
//! `wrk` (Debian package) at `--connections` connections: the overview, and
//! one service's 24-hour and 7-day series, then the overview and 7-day series
//! of a tenant-bound token (read from `metrics_minute`). Each route runs twice: flat out
//! (closed loop: every connection sends its next request as soon as the
//! answer arrives, so the tail is queueing at whatever rate the machine
//! saturates) and paced at `--rate` requests/s over the same connections
//! (the condition, "p99 at ≥ 1,000 requests/s"). Prints requests/s
//! and latency percentiles per route and pass.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use prescient_dashboard::auth::{self, Role};
use prescient_dashboard::{Dashboard, DashboardConfig};
use prescient_infra::postgres::PgInstance;

/// Flags of `prescient bench dashboard`.
#[derive(Debug, Clone, clap::Args)]
pub struct DashboardBenchArgs {
    /// Services.
    #[arg(long, default_value_t = 100)]
    pub services: i32,
    /// Endpoints per service (metrics_minute).
    #[arg(long, default_value_t = 10)]
    pub endpoints: i32,
    /// Tenants (metrics_minute).
    #[arg(long, default_value_t = 5)]
    pub tenants: i32,
    /// Days of service_minute history.
    #[arg(long, default_value_t = 7)]
    pub days: i32,
    /// Hours of metrics_minute history (services × endpoints × tenants rows per
    /// minute: 5,000 with the defaults, so a full week is 50 M rows; bounded by
    /// default because the routes measured read service_minute).
    #[arg(long, default_value_t = 2)]
    pub metrics_hours: i32,
    /// wrk connections.
    #[arg(long, default_value_t = 200)]
    pub connections: u32,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// Seconds per route and pass.
    #[arg(long, default_value_t = 15)]
    pub seconds: u32,
    /// Requests/s of the paced pass, spread over all connections (0: flat out only).
    #[arg(long, default_value_t = 1000)]
    pub rate: u32,
    /// Use this PostgreSQL instead of a private one (it is seeded: use a scratch database).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// With `--database-url`: the database was seeded by an earlier run with
    /// the same sizes; skip seeding (a week of metrics_minute takes minutes).
    #[arg(long, requires = "database_url")]
    pub seeded: bool,
}

/// One route's result.
#[derive(Debug, Clone)]
pub struct WrkResult {
    /// What was measured.
    pub name: String,
    /// Requests per second.
    pub rps: f64,
    /// Latency percentiles in ms: p50, p90, p99.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Non-2xx answers and socket errors.
    pub errors: u64,
}

fn wrk_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, factor) = if let Some(v) = s.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1000.0)
    } else if let Some(v) = s.strip_suffix('m') {
        (v, 60_000.0)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|v| v * factor)
}

/// Parses `wrk --latency` output.
pub fn parse_wrk(name: &str, out: &str) -> Option<WrkResult> {
    let pct = |p: &str| {
        out.lines()
            .map(str::trim)
            .find(|l| l.starts_with(p))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(wrk_ms)
    };
    let rps = out
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let non2xx: u64 = out
        .lines()
        .find(|l| l.trim().starts_with("Non-2xx or 3xx responses:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let socket: u64 = out
        .lines()
        .find(|l| l.trim().starts_with("Socket errors:"))
        .map(|l| {
            l.split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Some(WrkResult {
        name: name.to_string(),
        rps,
        p50_ms: pct("50%")?,
        p90_ms: pct("90%")?,
        p99_ms: pct("99%")?,
        errors: non2xx + socket,
    })
}

async fn seed(pool: &sqlx::PgPool, a: &DashboardBenchArgs) -> anyhow::Result<()> {
    let steps: [(&str, &str); 5] = [
        (
            "service_minute",
            "INSERT INTO service_minute (service, minute, requests, errors, latency_p50_ms, latency_p95_ms, latency_p99_ms, active_users)
             SELECT 'svc' || s, m, 1000 + (s * 7 + extract(epoch FROM m)::bigint / 60 % 300), s % 7, 20, 80, 150, 300
             FROM generate_series(1, $1) AS s,
                  generate_series(date_trunc('minute', now()) - make_interval(days => $2), date_trunc('minute', now()) - interval '1 minute', interval '1 minute') AS m",
        ),
        (
            "metrics_minute",
            "INSERT INTO metrics_minute (tenant, service, endpoint, minute, requests, errors, latency_p50_ms, latency_p95_ms, latency_p99_ms, active_users)
             SELECT 'tenant' || t, 'svc' || s, '/e' || e, m, 20 + e, e % 2, 20, 80, 150, 6
             FROM generate_series(1, $1) AS s, generate_series(1, $3) AS e, generate_series(1, $4) AS t,
                  generate_series(date_trunc('minute', now()) - make_interval(hours => $2), date_trunc('minute', now()) - interval '1 minute', interval '1 minute') AS m",
        ),
        (
            "forecasts",
            "INSERT INTO forecasts (service, issued_at, target_minute, horizon_min, p10, p50, p90, model)
             SELECT 'svc' || s, i, i + (h - 1) * interval '1 minute', h, 900, 1100, 1300, 'auto'
             FROM generate_series(1, $1) AS s, generate_series(1, 60) AS h,
                  generate_series(date_trunc('minute', now()) - interval '30 minutes', date_trunc('minute', now()), interval '1 minute') AS i",
        ),
        (
            "scaling_decisions",
            "INSERT INTO scaling_decisions (id, service, issued_at, expires_at, target, current_size, desired, min_size, max_size,
                                            policy, reason, fallback, forecast, mode, decision)
             SELECT md5(s || '/' || m::text)::uuid, 'svc' || s, m, m + interval '5 minutes', '{}', 3, 4, 1, 20,
                    'predictive', 'bench', false, '{\"horizon\":5,\"p50\":1100.0,\"p90\":1300.0}', 'dry-run', '{}'
             FROM generate_series(1, $1) AS s,
                  generate_series(date_trunc('minute', now()) - interval '1 day', date_trunc('minute', now()) - interval '1 minute', interval '1 minute') AS m",
        ),
        ("analyze", "ANALYZE"),
    ];
    for (what, sql) in steps {
        let started = Instant::now();
        let q = sqlx::query(sql);
        let q = match what {
            "service_minute" => q.bind(a.services).bind(a.days),
            "metrics_minute" => q
                .bind(a.services)
                .bind(a.metrics_hours)
                .bind(a.endpoints)
                .bind(a.tenants),
            "forecasts" | "scaling_decisions" => q.bind(a.services),
            _ => q,
        };
        let rows = q
            .execute(pool)
            .await
            .with_context(|| format!("seeding {what}"))?
            .rows_affected();
        eprintln!(
            "  seeded {what}: {rows} rows in {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
    sqlx::query(
        "INSERT INTO ingest_frontier (topic, frontier_ms, bucket_ms, lateness_ms)
         VALUES ('user-events', (extract(epoch FROM date_trunc('minute', now())) * 1000)::bigint, 60000, 600000)",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// A wrk script that waits `delay_ms` before each request of a connection,
/// so `connections` connections offer about `connections * 1000 / delay_ms`
/// requests/s. wrk's latency excludes the wait.
fn pacing_script(delay_ms: u32) -> String {
    format!("function delay()\n  return {delay_ms}\nend\n")
}

/// The per-connection wait that offers 5 % more than `rate` requests/s over
/// `connections`, so the rate achieved, which each answer's own latency
/// lowers a little, stays at or above `rate`.
fn pacing_delay_ms(connections: u32, rate: u32) -> u32 {
    (u64::from(connections) * 1000 * 100 / (u64::from(rate.max(1)) * 105)).max(1) as u32
}

fn wrk(
    args: &DashboardBenchArgs,
    name: &str,
    url: &str,
    token: &str,
    script: Option<&std::path::Path>,
) -> anyhow::Result<WrkResult> {
    let mut command = std::process::Command::new("wrk");
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let out = command
        .args([
            "-t",
            &args.threads.to_string(),
            "-c",
            &args.connections.to_string(),
            "-d",
            &format!("{}s", args.seconds),
            "--timeout",
            "5s",
            "--latency",
            "-H",
            &format!("Authorization: Bearer {token}"),
            // As every browser does: cached answers are served pre-compressed.
            "-H",
            "Accept-Encoding: gzip",
            url,
        ])
        .output()
        .context("running wrk (apt-get install -y wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    parse_wrk(name, &text).with_context(|| format!("unreadable wrk output:\n{text}"))
}

/// Milliseconds from sending one `GET path` (HTTP/1.1, gzip accepted) to
/// the end of its answer, which must be `200`.
fn first_request_ms(addr: std::net::SocketAddr, path: &str, token: &str) -> anyhow::Result<f64> {
    use std::io::{Read, Write};
    let started = Instant::now();
    let mut conn = std::net::TcpStream::connect(addr)?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Accept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer)?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if !answer.starts_with(b"HTTP/1.1 200") {
        let head = String::from_utf8_lossy(&answer[..answer.len().min(200)]).into_owned();
        bail!("GET {path}: {head}");
    }
    Ok(ms)
}

/// Runs the benchmark and prints a table.
pub fn run(args: DashboardBenchArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let (_pg, url) = match &args.database_url {
        Some(u) => (None, u.clone()),
        None => {
            let pg = rt.block_on(PgInstance::start())?;
            let url = pg.url();
            (Some(pg), url)
        }
    };
    let (dashboard, token, tenant_token) = rt.block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(32)
            .connect(&url)
            .await?;
        prescient_infra::migrate::run(&pool).await?;
        eprintln!(
            "seeding: {} services x {} days per minute; metrics_minute {} services x {} endpoints x {} tenants x {} h",
            args.services, args.days, args.services, args.endpoints, args.tenants, args.metrics_hours
        );
        if args.seeded {
            eprintln!("  --seeded: using the rows already there");
        } else {
            seed(&pool, &args).await?;
        }
        // What a running dashboard keeps up to date in the background (one
        // hour an hour): the hourly rollup tenant views over days read.
        let started = Instant::now();
        let rolled = prescient_dashboard::roll_up(&pool, None).await?;
        eprintln!(
            "  rolled up {} final hours of metrics_minute in {:.1}s (the dashboard's background rollup, caught up once)",
            rolled.hours,
            started.elapsed().as_secs_f64()
        );
        let (_, token) = auth::create_token(&pool, "bench", Role::Viewer, None, None).await?;
        // A tenant-bound viewer: its views read metrics_minute.
        let (_, tenant_token) =
            auth::create_token(&pool, "bench-tenant", Role::Viewer, Some("tenant1"), None).await?;
        let dashboard = Dashboard::start(
            DashboardConfig::new("127.0.0.1:0".parse()?),
            pool,
            prometheus::Registry::new(),
        )
        .await?;
        anyhow::Ok((dashboard, token, tenant_token))
    })?;
    let base = format!("http://{}", dashboard.addr());
    let routes = [
        ("overview", "/api/v1/overview", &token),
        (
            "service 24h",
            "/api/v1/services/svc1/series?range=24h",
            &token,
        ),
        (
            "service 7d",
            "/api/v1/services/svc1/series?range=7d",
            &token,
        ),
        // Tenant-scoped: from metrics_minute (--metrics-hours of it).
        ("tenant overview", "/api/v1/overview", &tenant_token),
        (
            "tenant service 7d",
            "/api/v1/services/svc1/series?range=7d",
            &tenant_token,
        ),
    ];
    let script =
        std::env::temp_dir().join(format!("prescient-wrk-pace-{}.lua", std::process::id()));
    let delay = pacing_delay_ms(args.connections, args.rate);
    std::fs::write(&script, pacing_script(delay))
        .with_context(|| format!("writing {}", script.display()))?;
    let mut passes = vec![("flat out".to_string(), None)];
    if args.rate > 0 {
        passes.push((format!("paced {}/s", args.rate), Some(script.as_path())));
    }
    let mut results = Vec::new();
    let mut cold = Vec::new();
    for (name, path, token) in &routes {
        // The first request computes the answer every later one shares.
        cold.push((name, first_request_ms(dashboard.addr(), path, token)?));
        for (pass, script) in &passes {
            eprintln!(
                "wrk: {name} ({path}), {pass}, {} connections, {} s",
                args.connections, args.seconds
            );
            let r = wrk(&args, name, &format!("{base}{path}"), token, *script)?;
            results.push((pass.clone(), r));
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    println!(
        "\n| route | load | requests/s | p50 ms | p90 ms | p99 ms | errors |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    );
    for (pass, r) in &results {
        println!(
            "| {} | {pass} | {:.0} | {:.1} | {:.1} | {:.1} | {} |",
            r.name, r.rps, r.p50_ms, r.p90_ms, r.p99_ms, r.errors
        );
    }
    println!("\n| route | first request (cold cache) ms |\n| --- | ---: |");
    for (name, ms) in &cold {
        println!("| {name} | {ms:.1} |");
    }
    let _ = std::fs::remove_file(&script);
    drop(rt);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_pass_offers_at_least_the_rate() {
        assert_eq!(pacing_delay_ms(200, 1000), 190); // 1,053/s offered
        assert_eq!(pacing_delay_ms(200, 3000), 63); // 3,175/s offered
        assert_eq!(pacing_delay_ms(10, 100_000), 1);
        assert!(pacing_script(200).contains("return 200"));
    }

    #[test]
    fn reads_wrk_latency_output() {
        let out = "Running 10s test @ http://127.0.0.1:1/x
  2 threads and 200 connections
  Latency Distribution
     50%    3.21ms
     75%    5.00ms
     90%    8.10ms
     99%    1.02s
  12000 requests in 10.00s, 1.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 4
Requests/sec:   1200.50
Transfer/sec:    100.00KB
";
        let r = parse_wrk("x", out).unwrap();
        assert_eq!(r.rps, 1200.5);
        assert_eq!(r.p50_ms, 3.21);
        assert_eq!(r.p99_ms, 1020.0);
        assert_eq!(r.errors, 9);
        assert_eq!(wrk_ms("250us"), Some(0.25));
    }
}
