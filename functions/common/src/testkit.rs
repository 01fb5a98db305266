//! Test helpers (feature `testkit`): a real `moto_server` on a loopback
//! port, SDK configuration pointing at it, an SQS queue subscribed to an
//! SNS topic to read what was published, MSK events as Lambda receives
//! them, fixed-pair config lookups, and a loopback HTTP(S) server for
//! webhook receivers and fake APIs.
//!
//! The server binary is `$MOTO_SERVER` when set, else
//! `<workspace root>/.venv/bin/moto_server` (created by the README's test
//! command). Without either, [`MotoServer::start`] panics with that advice:
//! tests fail rather than silently skip.

use std::net::{TcpListener, TcpStream};

use aws_lambda_events::event::kafka::KafkaEvent;
use chrono::{DateTime, Utc};
use prescient_contracts::decision::{Mode, ScalingDecision, Target};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

use crate::record::encode_value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;

/// Region used against moto.
pub const REGION: &str = "us-east-1";

/// A `moto_server` child process on `127.0.0.1`, killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    port: u16,
    log: PathBuf,
}

/// Where the `moto_server` binary is: `$MOTO_SERVER`, else the workspace's
/// `.venv/bin/moto_server`.
pub fn moto_server_path() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("MOTO_SERVER={} does not exist", p.display()))
        };
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .ancestors()
        .find(|d| {
            std::fs::read_to_string(d.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]"))
        })
        .unwrap_or(&manifest)
        .to_path_buf();
    let p = root.join(".venv/bin/moto_server");
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "moto_server not found: neither $MOTO_SERVER nor {} exists. Run the README's test command, which \
             creates it (python3 -m venv .venv && .venv/bin/pip install 'moto[server]'), or set MOTO_SERVER",
            p.display()
        ))
    }
}

impl MotoServer {
    /// Starts a fresh server on a free loopback port and waits until it
    /// answers. Panics (failing the test) when it cannot.
    pub fn start() -> MotoServer {
        let bin = moto_server_path().unwrap_or_else(|e| panic!("{e}"));
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log =
            std::env::temp_dir().join(format!("prescient-moto-{}-{port}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).expect("moto log file");
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let mut server = MotoServer { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                let out = std::fs::read_to_string(&server.log).unwrap_or_default();
                panic!("moto_server exited with {status} before answering:\n{out}");
            }
            if Instant::now() > deadline {
                panic!("moto_server did not answer on 127.0.0.1:{port} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:{port}`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many requests so far had a request line containing `needle`
    /// (from the server's access log), e.g. `/node-groups/web/update-config`.
    pub fn requests_matching(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// SDK configuration for moto: its endpoint for every service, region
    /// [`REGION`], static test credentials.
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "testing", "testing", None, None, "moto",
            )))
            .build()
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Creates an SQS queue subscribed (raw delivery) to `topic_arn`; returns
/// its URL.
pub async fn subscribe_queue(sdk: &SdkConfig, topic_arn: &str, name: &str) -> String {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let sns = aws_sdk_sns::Client::new(sdk);
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("CreateQueue")
        .queue_url
        .expect("queue url");
    let arn = format!("arn:aws:sqs:{REGION}:123456789012:{name}");
    sns.subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .expect("Subscribe");
    url
}

/// Receives (and deletes) every message now in the queue, waiting until at
/// least `at_least` arrived or `timeout` passed.
pub async fn drain_queue(
    sdk: &SdkConfig,
    url: &str,
    at_least: usize,
    timeout: Duration,
) -> Vec<String> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("ReceiveMessage");
        let msgs = got.messages.unwrap_or_default();
        let empty = msgs.is_empty();
        for m in msgs {
            if let Some(h) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(h)
                    .send()
                    .await
                    .expect("DeleteMessage");
            }
            out.push(m.body.unwrap_or_default());
        }
        if empty && (out.len() >= at_least || Instant::now() > deadline) {
            return out;
        }
    }
}

/// Creates the EKS cluster `name` in moto (a placeholder role and subnet).
pub async fn create_cluster(sdk: &SdkConfig, name: &str) {
    aws_sdk_eks::Client::new(sdk)
        .create_cluster()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/eks-cluster")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-0a1b2c3d")
                .build(),
        )
        .send()
        .await
        .expect("CreateCluster on moto");
}

/// Builds a [`KafkaEvent`] as an MSK event source mapping delivers it:
/// records grouped under `{topic}-{partition}`, values base64-encoded.
/// Each item is `(partition, offset, value)`. For tests and benchmarks.
pub fn kafka_event<'a>(
    topic: &str,
    items: impl IntoIterator<Item = (i64, i64, &'a [u8])>,
) -> KafkaEvent {
    let mut groups: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    for (partition, offset, value) in items {
        let record = serde_json::json!({
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "timestamp": 1_795_255_200_000_i64 + offset,
            "timestampType": "CREATE_TIME",
            "key": encode_value(b"prescient"),
            "value": encode_value(value),
            "headers": [],
        });
        let group = groups
            .entry(format!("{topic}-{partition}"))
            .or_insert_with(|| serde_json::json!([]));
        group
            .as_array_mut()
            .expect("group is an array")
            .push(record);
    }
    serde_json::from_value(serde_json::json!({
        "eventSource": "aws:kafka",
        "eventSourceArn": "arn:aws:kafka:us-east-1:123456789012:cluster/prescient/00000000-0000-0000-0000-000000000000-1",
        "bootstrapServers": "b-1.prescient.kafka.us-east-1.amazonaws.com:9098",
        "records": groups,
    }))
    .expect("a well-formed Kafka event")
}

/// A lookup over fixed `NAME, value` pairs, for `Config::from_lookup` in
/// tests (either function's).
pub fn lookup_pairs<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |k| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    }
}

/// Serves HTTP/1 on `listener` until the runtime stops, each connection on
/// its own task, through TLS when `tls` is given; `handle` answers every
/// request, given with its body already read (fake webhooks, the
/// Kubernetes API, the Lambda runtime API).
pub fn serve_http1<H, F>(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handle: H,
) where
    H: Fn(hyper::Request<Bytes>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Result<hyper::Response<Full<Bytes>>, std::convert::Infallible>>
        + Send
        + 'static,
{
    use hyper_util::rt::TokioIo;
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (tls, handle) = (tls.clone(), handle.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let handle = handle.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            handle(hyper::Request::from_parts(parts, body)).await
                        }
                    },
                );
                let http = hyper::server::conn::http1::Builder::new();
                let _ = match tls {
                    None => http.serve_connection(TokioIo::new(tcp), service).await,
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(tcp).await else {
                            return;
                        };
                        http.serve_connection(TokioIo::new(stream), service).await
                    }
                };
            });
        }
    });
}

/// A decision for node group `prod/{nodegroup}` of service `checkout`:
/// current 2, bounds 1..=10, apply mode, valid for 5 minutes from
/// `issued_at`. Tests change what they need with struct update syntax.
pub fn decision(nodegroup: &str, desired: u32, issued_at: DateTime<Utc>) -> ScalingDecision {
    ScalingDecision {
        id: uuid::Uuid::new_v4(),
        service: "checkout".into(),
        issued_at,
        expires_at: issued_at + chrono::Duration::minutes(5),
        target: Target::Nodegroup {
            cluster: "prod".into(),
            nodegroup: nodegroup.into(),
        },
        current: 2,
        desired,
        min: 1,
        max: 10,
        policy: "checkout".into(),
        reason: "test".into(),
        forecast: None,
        mode: Mode::Apply,
    }
}

/// An MSK event on `scaling-decisions` carrying each `(partition, offset,
/// decision)` as JSON.
pub fn decisions_event<'a>(
    items: impl IntoIterator<Item = (i64, i64, &'a ScalingDecision)>,
) -> KafkaEvent {
    let values: Vec<(i64, i64, Vec<u8>)> = items
        .into_iter()
        .map(|(p, o, d)| (p, o, serde_json::to_vec(d).expect("a decision serialises")))
        .collect();
    kafka_event(
        prescient_contracts::SCALING_DECISIONS_TOPIC,
        values.iter().map(|(p, o, v)| (*p, *o, v.as_slice())),
    )
}
