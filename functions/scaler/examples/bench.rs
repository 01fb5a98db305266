//! Benchmark of the scaler (and the size of both functions).
//!
//! ```text
//! export CARGO_TARGET_DIR=/work/target-functions   # or your target dir
//! cargo build --release -p prescient-scaler -p prescient-notifier --bins
//! cargo run --release -p prescient-scaler --example bench
//! ```
//!
//! Against a real `moto_server` (see `prescient_functions_common::testkit`):
//!
//! * binary size of the release builds, as built and stripped;
//! * cold start: the release `prescient-scaler` binary is started under a
//!   local stand-in of the Lambda Runtime API; init time is process start →
//!   its first `GET /runtime/invocation/next` (config, SDK config load,
//!   clients built: ready for the first event), and the first (cold)
//!   invocation with a 100-record batch is timed too;
//! * handler time in-process, `Scaler::handle_kafka` on 100-record batches:
//!   (a) 100 node groups, each resized (100 × DescribeNodegroup +
//!   UpdateNodegroupConfig, 10 × SNS PublishBatch); (b) 100 decisions for 10
//!   node groups (newest wins: 10 resized, 90 superseded).

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_eks::types::NodegroupScalingConfig;
use chrono::Utc;
use futures_util::StreamExt;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response};
use prescient_contracts::action::Outcome;
use prescient_contracts::decision::{ScalingDecision, Target};
use prescient_functions_common::testkit::{
    self, MotoServer, REGION, create_cluster, kafka_event, serve_http1,
};
use prescient_scaler::{Config, Scaler};

const CLUSTER: &str = "bench";
const NODEGROUPS: usize = 100;
const ITERATIONS: usize = 50;
const COLD_STARTS: usize = 10;

fn nodegroup(i: usize) -> String {
    format!("ng-{i:03}")
}

fn decision(ng: &str, desired: u32) -> ScalingDecision {
    ScalingDecision {
        service: ng.to_string(),
        target: Target::Nodegroup {
            cluster: CLUSTER.into(),
            nodegroup: ng.into(),
        },
        max: 50,
        policy: "bench".into(),
        reason: "bench".into(),
        ..testkit::decision(ng, desired, Utc::now())
    }
}

/// 100 records: one per node group (`targets` = 100) or 10 per node group
/// (`targets` = 10, increasing `issued_at` so the last one wins).
fn batch(targets: usize, desired: u32) -> aws_lambda_events::event::kafka::KafkaEvent {
    let values: Vec<Vec<u8>> = (0..100)
        .map(|i| {
            let mut d = decision(&nodegroup(i % targets), desired + (i / targets) as u32);
            d.issued_at += chrono::Duration::milliseconds(i as i64);
            serde_json::to_vec(&d).unwrap()
        })
        .collect();
    kafka_event(
        "scaling-decisions",
        values
            .iter()
            .enumerate()
            .map(|(i, v)| ((i % 4) as i64, 1000 + i as i64, v.as_slice())),
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn size_report(dir: &Path, name: &str) {
    let bin = dir.join(name);
    let Ok(meta) = std::fs::metadata(&bin) else {
        println!("{name:<20} not built (cargo build --release -p {name} --bins)");
        return;
    };
    let stripped = std::env::temp_dir().join(format!("{name}.stripped"));
    let status = std::process::Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&bin)
        .status();
    let stripped_size = match status {
        Ok(s) if s.success() => std::fs::metadata(&stripped).map(|m| m.len()).ok(),
        _ => None,
    };
    let _ = std::fs::remove_file(&stripped);
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / 1048576.0);
    println!(
        "{name:<20} release {:>10}   stripped {:>10}",
        mib(meta.len()),
        stripped_size
            .map(mib)
            .unwrap_or_else(|| "(strip failed)".into())
    );
}

/// A stand-in of the Lambda Runtime API serving one event.
#[derive(Clone, Default)]
struct RuntimeApi {
    event: Arc<Mutex<String>>,
    first_next: Arc<Mutex<Option<Instant>>>,
    response: Arc<Mutex<Option<(Instant, String)>>>,
}

impl RuntimeApi {
    async fn serve(self, req: Request<Bytes>) -> Result<Response<Full<Bytes>>, Infallible> {
        let path = req.uri().path().to_string();
        if path.ends_with("/invocation/next") {
            self.first_next
                .lock()
                .unwrap()
                .get_or_insert_with(Instant::now);
            if self.response.lock().unwrap().is_some() {
                // Already served one event: keep the runtime waiting.
                std::future::pending::<()>().await;
            }
            let deadline = (Utc::now() + chrono::Duration::seconds(30)).timestamp_millis();
            return Ok(Response::builder()
                .header("lambda-runtime-aws-request-id", "bench-1")
                .header("lambda-runtime-deadline-ms", deadline.to_string())
                .header(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:scaler",
                )
                .header(
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000",
                )
                .body(Full::new(Bytes::from(self.event.lock().unwrap().clone())))
                .unwrap());
        }
        let body = req.body().clone();
        if path.contains("/invocation/") {
            *self.response.lock().unwrap() =
                Some((Instant::now(), String::from_utf8_lossy(&body).into_owned()));
        } else {
            eprintln!(
                "runtime API: unexpected {path}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(Response::builder()
            .status(202)
            .body(Full::new(Bytes::new()))
            .unwrap())
    }
}

async fn start_runtime_api(api: RuntimeApi) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    serve_http1(listener, None, move |req| api.clone().serve(req));
    port
}

async fn cold_starts(bin: &Path, moto: &MotoServer, topic: &str) {
    if !bin.is_file() {
        println!(
            "cold start: {} not built; run cargo build --release -p prescient-scaler --bins",
            bin.display()
        );
        return;
    }
    let api = RuntimeApi::default();
    let port = start_runtime_api(api.clone()).await;
    let mut inits = Vec::new();
    let mut firsts = Vec::new();
    for run in 0..COLD_STARTS {
        *api.event.lock().unwrap() =
            serde_json::to_string(&batch(NODEGROUPS, 10 + run as u32)).unwrap();
        *api.first_next.lock().unwrap() = None;
        *api.response.lock().unwrap() = None;
        let started = Instant::now();
        let mut child = std::process::Command::new(bin)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", "scaler")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL", moto.endpoint())
            .env("PRESCIENT_ACTIONS_TOPIC_ARN", topic)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start the scaler binary");
        let deadline = Instant::now() + Duration::from_secs(30);
        let (init, response) = loop {
            let next = *api.first_next.lock().unwrap();
            let resp = api.response.lock().unwrap().clone();
            if let (Some(n), Some(r)) = (next, resp) {
                break (n - started, r);
            }
            assert!(
                Instant::now() < deadline,
                "the scaler binary did not answer within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let first = response.0 - (started + init);
        let _ = child.kill();
        let _ = child.wait();
        let body: serde_json::Value = serde_json::from_str(&response.1).expect("a JSON response");
        assert_eq!(
            body,
            serde_json::json!({"batchItemFailures": []}),
            "cold invocation failed: {body}"
        );
        inits.push(init);
        firsts.push(first);
    }
    inits.sort();
    firsts.sort();
    println!(
        "cold start (binary, {COLD_STARTS} runs): init p50 {} max {}; first 100-record invocation p50 {} max {}",
        ms(percentile(&inits, 50.0)),
        ms(*inits.last().unwrap()),
        ms(percentile(&firsts, 50.0)),
        ms(*firsts.last().unwrap()),
    );
}

#[tokio::main]
async fn main() {
    let exe = std::env::current_exe().unwrap();
    let release_dir: PathBuf = exe.parent().and_then(|p| p.parent()).unwrap().to_path_buf();
    println!(
        "machine: {} CPUs; moto_server on loopback",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    size_report(&release_dir, "prescient-scaler");
    size_report(&release_dir, "prescient-notifier");

    let moto = MotoServer::start();
    let sdk = moto.sdk_config();
    let eks = aws_sdk_eks::Client::new(&sdk);
    create_cluster(&sdk, CLUSTER).await;
    for i in 0..NODEGROUPS {
        eks.create_nodegroup()
            .cluster_name(CLUSTER)
            .nodegroup_name(nodegroup(i))
            .node_role("arn:aws:iam::123456789012:role/eks-node")
            .subnets("subnet-0a1b2c3d")
            .scaling_config(
                NodegroupScalingConfig::builder()
                    .min_size(1)
                    .max_size(50)
                    .desired_size(2)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let topic = aws_sdk_sns::Client::new(&sdk)
        .create_topic()
        .name("scaling-actions")
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();

    // In-process init: what the bin does before it is ready.
    let t = Instant::now();
    let config = Config {
        actions_topic_arn: Some(topic.clone()),
        ..Config::default()
    };
    let scaler = Scaler::new(&moto.sdk_config(), config).unwrap();
    println!(
        "init in-process (SDK config + clients): {}",
        ms(t.elapsed())
    );

    for (label, targets) in [
        ("100 node groups, all resized", NODEGROUPS),
        ("10 node groups x 10 decisions", 10),
    ] {
        let mut times = Vec::new();
        for i in 0..ITERATIONS + 3 {
            let event = batch(targets, 3 + (i % 2) as u32 * 20);
            let t = Instant::now();
            let report = scaler.handle_kafka(&event, Utc::now()).await;
            let took = t.elapsed();
            assert!(
                report.response.batch_item_failures.is_empty(),
                "failures: {:?}",
                report.response
            );
            let changed = report
                .actions
                .iter()
                .filter(|(_, a)| a.outcome == Outcome::Applied)
                .count();
            assert_eq!(changed, targets, "every target resized");
            if i >= 3 {
                times.push(took);
            }
        }
        times.sort();
        println!(
            "handler, 100-record batch, {label}: p50 {} p99 {} max {} ({ITERATIONS} runs)",
            ms(percentile(&times, 50.0)),
            ms(percentile(&times, 99.0)),
            ms(*times.last().unwrap())
        );
    }

    // The floor the emulator sets: the same API calls as the all-resized
    // batch, issued straight with the SDK at the same concurrency.
    let mut floor = Vec::new();
    for i in 0..10u32 {
        let t = Instant::now();
        futures_util::stream::iter(0..NODEGROUPS)
            .map(|n| {
                let eks = &eks;
                async move {
                    let ng = nodegroup(n);
                    eks.describe_nodegroup()
                        .cluster_name(CLUSTER)
                        .nodegroup_name(&ng)
                        .send()
                        .await
                        .unwrap();
                    eks.update_nodegroup_config()
                        .cluster_name(CLUSTER)
                        .nodegroup_name(&ng)
                        .scaling_config(
                            NodegroupScalingConfig::builder()
                                .desired_size(5 + (i % 2) as i32)
                                .build(),
                        )
                        .send()
                        .await
                        .unwrap();
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<()>>()
            .await;
        let sns = aws_sdk_sns::Client::new(&sdk);
        let entries: Vec<_> = (0..10)
            .map(|k| {
                aws_sdk_sns::types::PublishBatchRequestEntry::builder()
                    .id(k.to_string())
                    .message("x".repeat(600))
                    .build()
                    .unwrap()
            })
            .collect();
        futures_util::future::join_all((0..10).map(|_| {
            sns.publish_batch()
                .topic_arn(&topic)
                .set_publish_batch_request_entries(Some(entries.clone()))
                .send()
        }))
        .await;
        floor.push(t.elapsed());
    }
    floor.sort();
    println!(
        "moto floor: the same 200 EKS calls + 10 PublishBatch straight from the SDK: p50 {} max {} (10 runs)",
        ms(percentile(&floor, 50.0)),
        ms(*floor.last().unwrap())
    );

    cold_starts(&release_dir.join("prescient-scaler"), &moto, &topic).await;
}
