//! The dataflow against a real Kafka-protocol broker (in its own process)
//! and a real PostgreSQL: correctness against a reference computation,
//! crashes, a 2×2 cluster, a database outage, and bad input.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use prescient_contracts::event::Reason;
use rand::{Rng, SeedableRng};

const TOPICS: [(&str, i32); 2] = [("user-events", 4), ("user-events-dlq", 1)];

/// Produces `records` to `user-events`, then runs the dataflow with `args`
/// and `--until-caught-up` until it has committed them all (within `limit`).
fn produce_and_catch_up(
    broker: &Broker,
    url: &str,
    records: &[TestRecord],
    args: &[&str],
    limit: Duration,
) {
    produce(&broker.bootstrap, "user-events", records);
    run_to_end(
        dataflow(&broker.bootstrap, url)
            .args(args)
            .arg("--until-caught-up"),
        limit,
    );
}

/// A run's whole output against the reference: the rows, every rejected
/// record dead-lettered exactly once with its reason, and the dead-letter
/// counts per minute (the dashboard's pipeline table, written with the rows).
async fn assert_exact_output(
    url: &str,
    bootstrap: &str,
    records: &[TestRecord],
    expected: &Rows,
    rejected: &BTreeMap<(i32, i64), Reason>,
) {
    assert_rows_match(&actual_rows(url).await, expected);
    let letters = dead_letters(bootstrap);
    assert_eq!(
        letters.len(),
        rejected.len(),
        "each rejected record is dead-lettered exactly once"
    );
    assert_eq!(dead_letter_set(&letters), labels(rejected));
    assert_eq!(
        actual_dead_letter_minutes(url).await,
        expected_dead_letter_minutes(records, rejected)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_match_a_reference_computation() {
    let pg = postgres().await;
    let broker = Broker::start(&TOPICS);
    let records = seeded_stream(7, 6_000, 4);
    produce(&broker.bootstrap, "user-events", &records);
    let (expected, rejected) = reference(&records);
    for r in [
        Reason::TooLate,
        Reason::TsInFuture,
        Reason::TsOutOfRange,
        Reason::InvalidJson,
        Reason::MissingField,
    ] {
        assert!(reasons(&rejected).contains(&r), "the stream exercises {r}");
    }
    let mut listener = sqlx::postgres::PgListener::connect(&pg.url())
        .await
        .unwrap();
    listener.listen("prescient_rows").await.unwrap();
    run_to_end(
        dataflow(&broker.bootstrap, &pg.url()).args(["-w", "2", "--until-caught-up"]),
        Duration::from_secs(120),
    );
    assert_exact_output(&pg.url(), &broker.bootstrap, &records, &expected, &rejected).await;
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    let ends: Vec<(i64, Option<i64>)> =
        sqlx::query_as("SELECT next_offset, end_offset FROM ingest_offsets ORDER BY partition")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(ends.len(), 4);
    assert!(ends.iter().all(|(n, e)| Some(*n) == *e), "{ends:?}");
    let (events, rejected_n, commits, written): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT sum(events)::int8, sum(rejected)::int8, sum(commits)::int8, sum(rows_written)::int8
         FROM ingest_stats_minute",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (events, rejected_n),
        (records.len() as i64, rejected.len() as i64)
    );
    assert!(commits > 0 && written >= expected.metrics.len() as i64);
    let note = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("a prescient_rows notification")
        .unwrap();
    let payload: serde_json::Value = serde_json::from_str(note.payload()).unwrap();
    assert_eq!(payload["topic"], "user-events");
    assert!(payload["minute_ms"].as_i64().unwrap() >= T0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_gives_identical_rows() {
    let pg = postgres().await;
    // Four dead-letter partitions: each kill re-sends the dead letters past
    // its last commit, and the embedded broker keeps only 5 MiB a partition
    // (evicting the oldest), which one partition overran on a loaded machine.
    let broker = Broker::start(&[("user-events", 4), ("user-events-dlq", 4)]);
    let records = seeded_stream(11, 60_000, 4);
    produce(&broker.bootstrap, "user-events", &records);
    let (expected, rejected) = reference(&records);
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    for kill in 0..3 {
        let mut child = dataflow(&broker.bootstrap, &pg.url())
            .args(["-w", "2"])
            .spawn()
            .unwrap();
        // Let it commit something first, then kill at a random moment.
        let started = Instant::now();
        loop {
            let committed: Option<i64> =
                sqlx::query_scalar("SELECT sum(next_offset)::int8 FROM ingest_offsets")
                    .fetch_one(&pool)
                    .await
                    .unwrap_or(None);
            if committed.unwrap_or(0) > (kill + 1) * 2_000
                || started.elapsed() > Duration::from_secs(60)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let committed: Option<i64> =
        sqlx::query_scalar("SELECT sum(next_offset)::int8 FROM ingest_offsets")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        committed.unwrap_or(0) < records.len() as i64,
        "the kills happened mid-stream"
    );
    run_to_end(
        dataflow(&broker.bootstrap, &pg.url()).args(["-w", "2", "--until-caught-up"]),
        Duration::from_secs(180),
    );
    assert_rows_match(&actual_rows(&pg.url()).await, &expected);
    // Dead letters are at least once: every rejected record is there.
    assert_eq!(
        dead_letter_set(&dead_letters(&broker.bootstrap)),
        labels(&rejected)
    );
    // Their counts are stored with the offsets: exactly once through the kills.
    assert_eq!(
        actual_dead_letter_minutes(&pg.url()).await,
        expected_dead_letter_minutes(&records, &rejected)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_of_two_workers_match_one_worker() {
    let pg_single = postgres().await;
    let pg_cluster = postgres().await;
    let broker = Broker::start(&TOPICS);
    let records = seeded_stream(5, 8_000, 4);
    produce(&broker.bootstrap, "user-events", &records);
    run_to_end(
        dataflow(&broker.bootstrap, &pg_single.url()).args(["--until-caught-up"]),
        Duration::from_secs(120),
    );
    let dir = tempfile::tempdir().unwrap();
    let hostfile = dir.path().join("hosts");
    let ports = [
        prescient_infra::postgres::free_port().unwrap(),
        prescient_infra::postgres::free_port().unwrap(),
    ];
    std::fs::write(
        &hostfile,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", ports[0], ports[1]),
    )
    .unwrap();
    let procs: Vec<_> = (0..2)
        .map(|p| {
            dataflow(&broker.bootstrap, &pg_cluster.url())
                .args([
                    "-w",
                    "2",
                    "-n",
                    "2",
                    "-p",
                    &p.to_string(),
                    "-h",
                    hostfile.to_str().unwrap(),
                    "--until-caught-up",
                ])
                .spawn()
                .unwrap()
        })
        .collect();
    let started = Instant::now();
    for mut child in procs {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "cluster process failed: {status}");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "cluster did not finish"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let single = actual_rows(&pg_single.url()).await;
    assert!(!single.metrics.is_empty());
    assert_rows_eq(&actual_rows(&pg_cluster.url()).await, &single);
    assert_rows_match(&single, &reference(&records).0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_pauses_and_loses_nothing() {
    let mut pg = postgres().await;
    let broker = Broker::start(&TOPICS);
    let records = seeded_stream(13, 20_000, 4);
    let (first, second) = records.split_at(10_000);
    produce(&broker.bootstrap, "user-events", first);
    let mut child = dataflow(&broker.bootstrap, &pg.url())
        .args(["-w", "2"])
        .spawn()
        .unwrap();
    let started = Instant::now();
    while committed_offsets(&pg.url()).await < 10_000 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "first half not committed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pg.stop().unwrap();
    produce(&broker.bootstrap, "user-events", second);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the dataflow waits out the outage"
    );
    pg.restart().unwrap();
    let started = Instant::now();
    while committed_offsets(&pg.url()).await < records.len() as i64 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "did not catch up after the outage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_rows_match(&actual_rows(&pg.url()).await, &reference(&records).0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_records_go_to_the_dead_letter_topic_while_good_ones_flow() {
    let pg = postgres().await;
    let broker = Broker::start(&TOPICS);
    let ts = T0 + 60_000;
    let good = |i: usize| {
        format!(
            r#"{{"ts":{},"tenant":"acme","service":"api","user":"u{i}","latency_ms":{}}}"#,
            ts + i as i64,
            i + 1
        )
        .into_bytes()
    };
    let long = "x".repeat(300);
    let corpus: Vec<(Option<Vec<u8>>, Reason)> = vec![
        (Some(b"not json at all".to_vec()), Reason::NotAnObject),
        (Some(b"{\"ts\": 1".to_vec()), Reason::InvalidJson),
        (Some(b"".to_vec()), Reason::InvalidJson),
        (None, Reason::InvalidJson),
        (Some(b"[1,2,3]".to_vec()), Reason::NotAnObject),
        (
            Some(br#"{"tenant":"acme","service":"api"}"#.to_vec()),
            Reason::MissingField,
        ),
        (
            Some(format!(r#"{{"ts":{ts},"service":"api"}}"#).into_bytes()),
            Reason::MissingField,
        ),
        (
            Some(format!(r#"{{"ts":{ts},"tenant":"acme"}}"#).into_bytes()),
            Reason::MissingField,
        ),
        (
            Some(format!(r#"{{"ts":{ts},"tenant":7,"service":"api"}}"#).into_bytes()),
            Reason::WrongType,
        ),
        (
            Some(
                format!(r#"{{"ts":{ts},"tenant":"acme","service":"api","status":"500"}}"#)
                    .into_bytes(),
            ),
            Reason::WrongType,
        ),
        (
            Some(
                format!(r#"{{"ts":{ts},"tenant":"acme","service":"api","latency_ms":"fast"}}"#)
                    .into_bytes(),
            ),
            Reason::WrongType,
        ),
        (
            Some(br#"{"ts":{"a":1},"tenant":"acme","service":"api"}"#.to_vec()),
            Reason::WrongType,
        ),
        (
            Some(
                format!(r#"{{"ts":{ts},"tenant":"acme","service":"api","endpoint":"{long}"}}"#)
                    .into_bytes(),
            ),
            Reason::InvalidField,
        ),
        (
            Some(
                format!(
                    r#"{{"ts":{ts},"tenant":"{}","service":"api"}}"#,
                    "t".repeat(65)
                )
                .into_bytes(),
            ),
            Reason::InvalidField,
        ),
        (
            Some(
                format!(
                    r#"{{"ts":{ts},"tenant":"acme","service":"api","user":"{}"}}"#,
                    "u".repeat(129)
                )
                .into_bytes(),
            ),
            Reason::InvalidField,
        ),
        (
            Some(format!(r#"{{"ts":{ts},"tenant":"ac me","service":"api"}}"#).into_bytes()),
            Reason::InvalidField,
        ),
        (
            Some(format!(r#"{{"ts":{ts},"tenant":"acme","service":"ap/i"}}"#).into_bytes()),
            Reason::InvalidField,
        ),
        (
            Some(
                format!(r#"{{"ts":{ts},"tenant":"acme","service":"api","status":700}}"#)
                    .into_bytes(),
            ),
            Reason::InvalidField,
        ),
        (
            Some(
                format!(r#"{{"ts":{ts},"tenant":"acme","service":"api","latency_ms":-3}}"#)
                    .into_bytes(),
            ),
            Reason::InvalidField,
        ),
        (
            Some(b"{\"ts\":1,\"tenant\":\"acme\",\"service\":\"api\"}".to_vec()),
            Reason::TsOutOfRange,
        ),
        (
            Some(
                b"{\"ts\":\"9999-01-01T00:00:00Z\",\"tenant\":\"acme\",\"service\":\"api\"}"
                    .to_vec(),
            ),
            Reason::TsOutOfRange,
        ),
        (
            Some(
                format!(
                    r#"{{"ts":{},"tenant":"acme","service":"api"}}"#,
                    ts + 86_400_000
                )
                .into_bytes(),
            ),
            Reason::TsInFuture,
        ),
        (Some(vec![0xc3, 0x28, b'{', b'}']), Reason::InvalidUtf8),
        (
            Some(
                b"{\"ts\":\"2026-01-01T00:01:00Z\",\"tenant\":\"acme\xff\",\"service\":\"api\"}"
                    .to_vec(),
            ),
            Reason::InvalidUtf8,
        ),
        (
            Some(format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes()),
            Reason::NotAnObject,
        ),
        // Unknown fields are ignored, however deep: this one lacks `ts`.
        (
            Some(format!(r#"{{"a":{}1{}}}"#, "[".repeat(10_000), "]".repeat(10_000)).into_bytes()),
            Reason::MissingField,
        ),
        (
            Some(format!(r#"{{"ts":{}1{}}}"#, "[".repeat(10_000), "]".repeat(10_000)).into_bytes()),
            Reason::WrongType,
        ),
    ];
    let mut records = Vec::new();
    let mut expected_dlq = std::collections::BTreeMap::new();
    for (i, (payload, reason)) in corpus.iter().enumerate() {
        records.push(TestRecord {
            partition: 0,
            key: b"k".to_vec(),
            payload: Some(good(i)),
            kafka_ts: ts,
        });
        expected_dlq.insert((0, records.len() as i64), reason.as_str().to_string());
        records.push(TestRecord {
            partition: 0,
            key: b"k".to_vec(),
            payload: payload.clone(),
            kafka_ts: ts,
        });
    }
    produce_and_catch_up(&broker, &pg.url(), &records, &[], Duration::from_secs(120));
    let letters = dead_letters(&broker.bootstrap);
    assert_eq!(
        dead_letter_set(&letters),
        expected_dlq,
        "every broken record, with its reason"
    );
    for d in &letters {
        let original = records[d.offset as usize]
            .payload
            .clone()
            .unwrap_or_default();
        assert_eq!(d.payload, original, "dead letters keep the original bytes");
    }
    let rows = actual_rows(&pg.url()).await;
    let row = &rows.services[&("api".to_string(), T0 + 60_000)];
    assert_eq!(
        row.requests,
        corpus.len() as i64,
        "every good record counted"
    );
    assert_eq!(row.active_users, corpus.len() as i64);
    assert_rows_match(&rows, &reference(&records).0);
}

/// Finding: an event with U+0000 in `endpoint` passed validation and
/// PostgreSQL refused it forever. Now it is dead-lettered as
/// `invalid_field`; a NUL in `user` (only hashed) is fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_in_endpoint_is_dead_lettered_and_the_pipeline_flows() {
    let pg = postgres().await;
    let broker = Broker::start(&TOPICS);
    let ts = T0 + 60_000;
    let mut records = Vec::new();
    for i in 0..50 {
        records.push(event(i % 4, ts + i as i64, ts, "/a", &format!("u{i}")));
    }
    records.push(event(1, ts, ts, "/x\u{0}y", "u1"));
    records.push(event(2, ts, ts, "/b", "nul\u{0}user"));
    for i in 0..50 {
        records.push(event(i % 4, ts + i as i64, ts, "/b", &format!("v{i}")));
    }
    produce_and_catch_up(
        &broker,
        &pg.url(),
        &records,
        &["-w", "2"],
        Duration::from_secs(60),
    );
    let (expected, rejected) = reference(&records);
    assert_eq!(
        rejected.values().collect::<Vec<_>>(),
        vec![&Reason::InvalidField]
    );
    assert_eq!(
        dead_letter_set(&dead_letters(&broker.bootstrap)),
        labels(&rejected)
    );
    assert_rows_match(&actual_rows(&pg.url()).await, &expected);
    assert_eq!(committed_offsets(&pg.url()).await, records.len() as i64);
}

/// Finding: a batch the database rejects for a reason retrying cannot fix
/// was retried forever. Here a constraint refuses one endpoint's rows: they
/// are isolated and dropped (logged, counted), everything else commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_the_database_refuses_are_isolated_and_the_rest_committed() {
    let pg = postgres().await;
    let broker = Broker::start(&TOPICS);
    let status = prescient()
        .args(["migrate", "--database-url", &pg.url()])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    sqlx::query(
        "ALTER TABLE metrics_minute ADD CONSTRAINT no_poison CHECK (endpoint <> '/poison')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let mut records = Vec::new();
    for i in 0..600 {
        let endpoint = ["/a", "/poison", "/b", "/c"][i % 4];
        let ts = T0 + (i as i64) * 500; // 5 minutes of event time
        records.push(event(
            (i % 4) as i32,
            ts,
            ts,
            endpoint,
            &format!("u{}", i % 7),
        ));
    }
    produce_and_catch_up(
        &broker,
        &pg.url(),
        &records,
        &["-w", "2"],
        Duration::from_secs(60),
    );
    let (mut expected, _) = reference(&records);
    expected.metrics.retain(|(_, _, e, _), _| e != "/poison");
    assert!(!expected.metrics.is_empty());
    assert_rows_match(&actual_rows(&pg.url()).await, &expected);
    assert_eq!(committed_offsets(&pg.url()).await, records.len() as i64);
}

/// Finding: a record near the broker's 1 MiB limit made a dead letter too
/// big for the topic, which was lost. Now it is cut to fit and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_records_dead_letter_is_truncated_with_its_original_size() {
    let pg = postgres().await;
    let broker = Broker::start(&TOPICS);
    let ts = T0 + 60_000;
    let mut big = b"{\"pad\":\"".to_vec();
    big.resize(1_040_000, b'a');
    big.extend_from_slice(b"\"}");
    let records = vec![
        event(0, ts, ts, "/a", "u1"),
        TestRecord {
            partition: 0,
            key: b"big".to_vec(),
            payload: Some(big.clone()),
            kafka_ts: ts,
        },
        event(0, ts + 1, ts, "/a", "u2"),
    ];
    produce_and_catch_up(&broker, &pg.url(), &records, &[], Duration::from_secs(60));
    let letters = dead_letters(&broker.bootstrap);
    assert_eq!(letters.len(), 1, "exactly one dead letter");
    let d = &letters[0];
    assert_eq!(
        (d.partition, d.offset, d.reason.as_str()),
        (0, 1, "missing_field")
    );
    assert_eq!(
        d.headers.get("prescient-truncated").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        d.headers.get("prescient-original-size"),
        Some(&big.len().to_string())
    );
    assert!(d.payload.len() > 900_000 && big.starts_with(&d.payload));
    assert_eq!(
        actual_rows(&pg.url()).await.services[&("api".to_string(), T0 + 60_000)].requests,
        2
    );
}

/// Finding: dead-letter deliveries were not confirmed before offsets past
/// them were committed. The dead-letter topic's broker goes down mid-stream
/// (progress must pause), then comes back refusing the first produce
/// requests for good (they must be sent again): nothing lost, nothing doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_topic_outage_pauses_and_loses_nothing() {
    let pg = postgres().await;
    let mut broker = Broker::start_cluster(2, &["user-events:4@1", "user-events-dlq:1@2"]);
    let records = seeded_stream(17, 8_000, 4);
    let (first, second) = records.split_at(4_000);
    produce(&broker.bootstrap, "user-events", first);
    let mut child = dataflow(&broker.bootstrap, &pg.url())
        .args(["-w", "2"])
        .spawn()
        .unwrap();
    let started = Instant::now();
    while committed_offsets(&pg.url()).await < first.len() as i64 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "first half not committed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    broker.command("down 2");
    produce(&broker.bootstrap, "user-events", second);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the dataflow waits out the outage"
    );
    assert!(
        committed_offsets(&pg.url()).await < records.len() as i64,
        "no offset is committed past an unconfirmed dead letter"
    );
    broker.command("fail-produce 3 topic_authorization_failed");
    broker.command("up 2");
    let started = Instant::now();
    while committed_offsets(&pg.url()).await < records.len() as i64 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "did not catch up after the outage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (expected, rejected) = reference(&records);
    // Nothing lost, nothing doubled.
    assert_exact_output(&pg.url(), &broker.bootstrap, &records, &expected, &rejected).await;
}

/// Finding: a partition receiving only rejected records never became idle,
/// so the frontier never moved. Partition 1 gets garbage every 100 ms while
/// partition 0 carries 10 minutes of events: the frontier must advance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_only_partition_does_not_freeze_the_frontier() {
    let pg = postgres().await;
    let broker = Broker::start(&[("user-events", 2), ("user-events-dlq", 1)]);
    let records: Vec<TestRecord> = (0..600)
        .map(|i| {
            let ts = T0 + i * 1_000;
            event(0, ts, ts, "/a", "u")
        })
        .collect();
    produce(&broker.bootstrap, "user-events", &records);
    let mut child = dataflow_idle(&broker.bootstrap, &pg.url(), "2s")
        .args(["-w", "2"])
        .spawn()
        .unwrap();
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    let started = Instant::now();
    let mut frontier: Option<i64> = None;
    let mut garbage = 0;
    while started.elapsed() < Duration::from_secs(20) {
        let junk = TestRecord {
            partition: 1,
            key: b"k".to_vec(),
            payload: Some(b"\xff garbage".to_vec()),
            kafka_ts: chrono::Utc::now().timestamp_millis(),
        };
        produce(&broker.bootstrap, "user-events", &[junk]);
        garbage += 1;
        frontier = sqlx::query_scalar("SELECT frontier_ms FROM ingest_frontier")
            .fetch_optional(&pool)
            .await
            .unwrap()
            .flatten();
        if frontier.is_some_and(|f| f >= T0 + 599_000) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        frontier,
        Some(T0 + 599_000),
        "the frontier reaches the live partition's watermark ({garbage} garbage records sent)"
    );
}

/// Finding: a far-future Kafka timestamp let an event move its partition's
/// watermark past the wall clock, and every later event was too late. Event
/// time is now capped at min(Kafka timestamp, wall clock) + --max-future.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_kafka_timestamp_cannot_move_the_watermark_past_the_wall_clock() {
    let pg = postgres().await;
    let broker = Broker::start(&TOPICS);
    let future = chrono::Utc::now().timestamp_millis() + 30 * 86_400_000;
    let mut records = vec![event(0, T0, T0, "/a", "u0")];
    records.push(event(0, future, future, "/a", "poison"));
    for i in 1..100 {
        let ts = T0 + i * 1_000;
        records.push(event(0, ts, ts, "/a", &format!("u{i}")));
    }
    produce_and_catch_up(&broker, &pg.url(), &records, &[], Duration::from_secs(60));
    let (expected, rejected) = reference(&records);
    assert_eq!(
        labels(&rejected),
        [((0, 1), "ts_in_future".to_string())].into_iter().collect()
    );
    assert_eq!(
        dead_letter_set(&dead_letters(&broker.bootstrap)),
        labels(&rejected)
    );
    assert_rows_match(&actual_rows(&pg.url()).await, &expected);
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    let wm: Option<i64> = sqlx::query_scalar("SELECT max(watermark_ms) FROM ingest_offsets")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(wm, Some(T0 + 99_000));
}

/// The lateness boundary of docs/dataflow.md, exactly: with 1-minute
/// buckets and 2 minutes of lateness, bucket [T0, T0+1m) takes events
/// while its partition's watermark is below T0+3m, and not once it is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lateness_boundary_is_exactly_as_documented() {
    let pg = postgres().await;
    let broker = Broker::start(&TOPICS);
    let k = T0 + 200_000;
    let records = vec![
        event(0, T0 + 180_000 - 1, k, "/a", "a"), // watermark T0+3m-1ms
        event(0, T0, k, "/a", "b"),               // bucket T0 closes at T0+3m > wm: counted (late)
        event(0, T0 + 180_000, k, "/a", "c"),     // watermark T0+3m
        event(0, T0 + 59_999, k, "/a", "d"),      // bucket T0 closes at T0+3m <= wm: too late
        event(0, T0 + 60_000, k, "/a", "e"),      // bucket T0+1m closes at T0+4m: counted
    ];
    produce_and_catch_up(&broker, &pg.url(), &records, &[], Duration::from_secs(60));
    assert_eq!(
        dead_letter_set(&dead_letters(&broker.bootstrap)),
        [((0, 3), "too_late".to_string())].into_iter().collect()
    );
    let rows = actual_rows(&pg.url()).await;
    let requests: Vec<(i64, i64)> = rows
        .services
        .iter()
        .map(|((_, m), r)| (m - T0, r.requests))
        .collect();
    assert_eq!(
        requests,
        vec![(0, 1), (60_000, 1), (120_000, 1), (180_000, 1)]
    );
}

/// Finding: a row could reach the sink before its names and be dropped.
/// Names now travel in the row key: with many workers and thousands of
/// keys first seen at once, every row is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_travel_with_rows_under_many_workers() {
    let pg = postgres().await;
    let broker = Broker::start(&[("user-events", 8), ("user-events-dlq", 1)]);
    let records: Vec<TestRecord> = (0..6_000i32)
        .map(|i| {
            let ts = T0 + i64::from(i % 180) * 1_000;
            event(
                i % 8,
                ts,
                ts,
                &format!("/item/{}", i % 3_000),
                &format!("u{}", i % 50),
            )
        })
        .collect();
    produce_and_catch_up(
        &broker,
        &pg.url(),
        &records,
        &["-w", "4"],
        Duration::from_secs(120),
    );
    let (expected, _) = reference(&records);
    assert!(expected.metrics.len() >= 3_000);
    assert_rows_match(&actual_rows(&pg.url()).await, &expected);
}

/// One fuzzed record's payload: random bytes, a mutated valid event, huge
/// or deeply nested JSON, or every JSON type in one field.
fn fuzz_payload(rng: &mut rand::rngs::StdRng, ts: i64, big_run: bool) -> Option<Vec<u8>> {
    // The embedded broker keeps at most 5 MB per partition: smaller
    // monsters in a big run.
    let depth = if big_run { 500 } else { 5_000 };
    let valid = format!(
        r#"{{"ts":{ts},"tenant":"t{}","service":"s{}","endpoint":"/e{}","user":"u{}","status":{},"latency_ms":{}}}"#,
        rng.random_range(0..3),
        rng.random_range(0..3),
        rng.random_range(0..4),
        rng.random_range(0..50),
        [200, 404, 503][rng.random_range(0..3)],
        rng.random_range(0.0f64..500.0)
    );
    let values = [
        "null",
        "true",
        "false",
        "0",
        "-1",
        "1.5",
        "1e400",
        "\"\"",
        "\"x\"",
        "\"a\\u0000b\"",
        "[]",
        "[1,\"a\"]",
        "{}",
        "{\"a\":{}}",
        "18446744073709551616",
        "\"2026-01-01T00:00:00Z\"",
    ];
    let fields = [
        "ts",
        "tenant",
        "service",
        "endpoint",
        "user",
        "status",
        "latency_ms",
    ];
    Some(match rng.random_range(0..100) {
        0..45 => valid.into_bytes(),
        45..55 => (0..rng.random_range(0..200))
            .map(|_| rng.random())
            .collect(),
        55..75 => {
            let mut b = valid.into_bytes();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..b.len());
                match rng.random_range(0..3) {
                    0 => b[i] = rng.random(),
                    1 => {
                        b.remove(i);
                    }
                    _ => b.insert(i, rng.random()),
                }
            }
            b
        }
        75..95 => {
            let field = fields[rng.random_range(0..fields.len())];
            let value = values[rng.random_range(0..values.len())];
            let v: serde_json::Value = serde_json::from_str(&valid).unwrap();
            let mut text = v.to_string();
            let pattern = format!("\"{field}\":");
            let at = text.find(&pattern).unwrap() + pattern.len();
            let end = at + text[at..].find([',', '}']).unwrap();
            text.replace_range(at..end, value);
            text.into_bytes()
        }
        95..97 => format!(
            r#"{{"deep":{}1{},"ts":{ts},"tenant":"t","service":"s"}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        )
        .into_bytes(),
        97..98 if !big_run => format!(
            r#"{{"ts":{ts},"tenant":"t","service":"s","blob":"{}"}}"#,
            "z".repeat(50_000)
        )
        .into_bytes(),
        98 => return None,
        _ => format!(
            r#"{{"ts":{ts},"tenant":"t","service":"s","{}":{}}}"#,
            fields[rng.random_range(0..fields.len())],
            values[rng.random_range(0..values.len())]
        )
        .into_bytes(),
    })
}

/// Fuzz through the real pipeline: random bytes, mutated valid events,
/// huge and deeply nested JSON, every JSON type in every field. No crash,
/// no stall; every good record counted exactly once, every bad one
/// dead-lettered exactly once with its reason. 20,000 records by default;
/// `PRESCIENT_FUZZ_RECORDS=1000000` runs a million (release build advised).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_records_are_counted_or_dead_lettered_exactly_once() {
    let n: usize = std::env::var("PRESCIENT_FUZZ_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    // The embedded broker keeps at most 100,000 messages or 5 MB per
    // partition: spread big runs over enough partitions.
    let big_run = n > 50_000;
    let (parts, dlq_parts) = if big_run { (64, 64) } else { (8, 1) };
    let pg = postgres().await;
    let broker = Broker::start(&[("user-events", parts), ("user-events-dlq", dlq_parts)]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let span = 30 * 60_000;
    let records: Vec<TestRecord> = (0..n)
        .map(|i| {
            let clock = T0 + (span as f64 * i as f64 / n as f64) as i64;
            let ts = clock + rng.random_range(-20_000..2_000);
            TestRecord {
                partition: rng.random_range(0..parts),
                // Many keys, so dead letters (partitioned by key) spread
                // evenly over the dead-letter topic's partitions.
                key: format!("k{}", i % 9_973).into_bytes(),
                payload: fuzz_payload(&mut rng, ts, big_run),
                kafka_ts: clock,
            }
        })
        .collect();
    produce(&broker.bootstrap, "user-events", &records);
    let (expected, rejected) = reference(&records);
    assert!(rejected.len() > n / 4 && !expected.metrics.is_empty());
    let started = Instant::now();
    run_to_end(
        dataflow(&broker.bootstrap, &pg.url()).args(["--until-caught-up"]),
        Duration::from_secs(600),
    );
    eprintln!(
        "fuzz: {n} records ({} rejected) through the pipeline in {:.1}s",
        rejected.len(),
        started.elapsed().as_secs_f64()
    );
    assert_exact_output(&pg.url(), &broker.bootstrap, &records, &expected, &rejected).await;
}
