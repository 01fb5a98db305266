//! The dataflow against a real Kafka-protocol broker (in its own process)
//! and a real PostgreSQL: correctness against a reference computation,
//! crashes, a 2×2 cluster, a database outage, and bad input.

mod common;

use std::time::{Duration, Instant};

use common::*;
use prescient_contracts::event::Reason;
use rand::{Rng, SeedableRng};

const TOPICS: [(&str, i32); 2] = [("user-events", 4), ("user-events-dlq", 1)];

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
    run_to_end(
        dataflow(&broker.bootstrap, &pg.url()).args(["-w", "2", "--until-caught-up"]),
        Duration::from_secs(120),
    );
    assert_rows_eq(&actual_rows(&pg.url()).await, &expected);
    let letters = dead_letters(&broker.bootstrap);
    assert_eq!(
        letters.len(),
        rejected.len(),
        "each rejected record is dead-lettered exactly once"
    );
    assert_eq!(dead_letter_set(&letters), labels(&rejected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_gives_identical_rows() {
    let pg = postgres().await;
    let broker = Broker::start(&TOPICS);
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
    assert_rows_eq(&actual_rows(&pg.url()).await, &expected);
    // Dead letters are at least once: every rejected record is there.
    assert_eq!(
        dead_letter_set(&dead_letters(&broker.bootstrap)),
        labels(&rejected)
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
    assert_rows_eq(&single, &reference(&records).0);
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
    let offsets = async |url: &str| -> i64 {
        match sqlx::PgPool::connect(url).await {
            Ok(pool) => {
                let v: Option<i64> =
                    sqlx::query_scalar("SELECT sum(next_offset)::int8 FROM ingest_offsets")
                        .fetch_one(&pool)
                        .await
                        .unwrap_or(None);
                pool.close().await;
                v.unwrap_or(0)
            }
            Err(_) => -1,
        }
    };
    let started = Instant::now();
    while offsets(&pg.url()).await < 10_000 {
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
    while offsets(&pg.url()).await < records.len() as i64 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "did not catch up after the outage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_rows_eq(&actual_rows(&pg.url()).await, &reference(&records).0);
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
    produce(&broker.bootstrap, "user-events", &records);
    run_to_end(
        dataflow(&broker.bootstrap, &pg.url()).args(["--until-caught-up"]),
        Duration::from_secs(120),
    );
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
    assert_rows_eq(&rows, &reference(&records).0);
}
