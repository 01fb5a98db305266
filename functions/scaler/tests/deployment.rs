//! The Deployment path against a local HTTPS Kubernetes API stand-in (a
//! self-signed certificate generated here with `rcgen`) that checks each
//! request: method, `/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale`,
//! the EKS bearer token's shape, content type and body.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use base64::Engine as _;
use chrono::Utc;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prescient_contracts::action::Outcome;
use prescient_contracts::decision::{ScalingDecision, Target};
use prescient_functions_common::testkit::{self, MotoServer, create_cluster, serve_http1};
use prescient_scaler::ClusterAccess;
use prescient_scaler::{Config, Scaler};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const SCALE_PATH: &str = "/apis/apps/v1/namespaces/shop/deployments/api/scale";

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: String,
    content_type: String,
    body: String,
}

#[derive(Clone)]
struct FakeKube {
    replicas: Arc<Mutex<u32>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn json(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn scale(replicas: u32) -> serde_json::Value {
    serde_json::json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {"replicas": replicas}, "status": {"replicas": replicas}
    })
}

fn token_ok(authorization: &str) -> bool {
    let Some(token) = authorization.strip_prefix("Bearer ") else {
        return false;
    };
    // What aws-iam-authenticator accepts, decoded here independently of
    // the scaler: `k8s-aws-v1.` + base64url (no padding) of the URL.
    let url = token
        .strip_prefix("k8s-aws-v1.")
        .and_then(|b64| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(b64)
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok());
    url.is_some_and(|u| {
        u.starts_with(
            "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&",
        ) && u.contains("X-Amz-SignedHeaders=host%3Bx-k8s-aws-id")
            && u.contains("X-Amz-Expires=60")
            && u.contains("X-Amz-Signature=")
    })
}

impl FakeKube {
    async fn serve(self, req: Request<Bytes>) -> Result<Response<Full<Bytes>>, Infallible> {
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let mut seen = Seen {
            method: req.method().to_string(),
            path: req.uri().path().to_string(),
            authorization: header("authorization"),
            content_type: header("content-type"),
            body: String::new(),
        };
        let body = req.body().clone();
        seen.body = String::from_utf8_lossy(&body).into_owned();
        self.seen.lock().unwrap().push(seen.clone());
        if !token_ok(&seen.authorization) {
            return Ok(json(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"kind":"Status","message":"Unauthorized"}),
            ));
        }
        if seen.path != SCALE_PATH {
            return Ok(json(
                StatusCode::NOT_FOUND,
                serde_json::json!({"kind":"Status","message":"not found"}),
            ));
        }
        match seen.method.as_str() {
            "GET" => Ok(json(StatusCode::OK, scale(*self.replicas.lock().unwrap()))),
            "PATCH" if seen.content_type == "application/merge-patch+json" => {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let keys: Vec<&String> = v
                    .as_object()
                    .map(|o| o.keys().collect())
                    .unwrap_or_default();
                match v.pointer("/spec/replicas").and_then(|r| r.as_u64()) {
                    Some(n) if keys == ["spec"] => {
                        *self.replicas.lock().unwrap() = n as u32;
                        Ok(json(StatusCode::OK, scale(n as u32)))
                    }
                    _ => Ok(json(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        serde_json::json!({"message":"bad patch"}),
                    )),
                }
            }
            "PATCH" => Ok(json(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                serde_json::json!({"message":"media type"}),
            )),
            _ => Ok(json(
                StatusCode::METHOD_NOT_ALLOWED,
                serde_json::json!({"message":"method"}),
            )),
        }
    }
}

/// Starts the HTTPS stand-in on 127.0.0.1; returns its access and state.
async fn start_fake_kube(replicas: u32) -> (ClusterAccess, FakeKube) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert_der = CertificateDer::from(certified.cert.der().to_vec());
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let tls = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key_der)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let fake = FakeKube {
        replicas: Arc::new(Mutex::new(replicas)),
        seen: Arc::new(Mutex::new(Vec::new())),
    };
    let server = fake.clone();
    serve_http1(listener, Some(acceptor), move |req| {
        server.clone().serve(req)
    });
    let access = ClusterAccess {
        endpoint: format!("https://127.0.0.1:{port}"),
        ca_pem: certified.cert.pem().into_bytes(),
    };
    (access, fake)
}

fn offline_sdk() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:1")
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTEST",
            "secret",
            Some("session".into()),
            None,
            "test",
        )))
        .build()
}

fn decision(desired: u32) -> ScalingDecision {
    ScalingDecision {
        service: "api".into(),
        target: Target::Deployment {
            cluster: "prod".into(),
            namespace: "shop".into(),
            name: "api".into(),
        },
        current: 3,
        min: 2,
        max: 12,
        policy: "api".into(),
        ..testkit::decision("unused", desired, Utc::now())
    }
}

fn batch(d: &ScalingDecision) -> aws_lambda_events::event::kafka::KafkaEvent {
    testkit::decisions_event([(0, 1, d)])
}

#[tokio::test]
async fn deployment_is_scaled_through_the_scale_subresource() {
    let (access, fake) = start_fake_kube(3).await;
    let scaler = Scaler::new(&offline_sdk(), Config::default()).unwrap();
    scaler.kube().add_cluster("prod", access.clone()).unwrap();
    let d = decision(7);
    let report = scaler.handle_kafka(&batch(&d), Utc::now()).await;
    let a = &report.actions[0].1;
    assert_eq!(
        (a.outcome, a.previous, a.applied),
        (Outcome::Applied, Some(3), Some(7)),
        "{}",
        a.reason
    );
    assert!(report.response.batch_item_failures.is_empty());
    assert_eq!(*fake.replicas.lock().unwrap(), 7);

    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().map(|s| s.method.as_str()).collect::<Vec<_>>(),
        ["GET", "PATCH"]
    );
    assert!(seen.iter().all(|s| s.path == SCALE_PATH));
    assert!(
        seen.iter().all(|s| token_ok(&s.authorization)),
        "{:?}",
        seen[0].authorization
    );
    assert_eq!(seen[1].content_type, "application/merge-patch+json");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&seen[1].body).unwrap(),
        serde_json::json!({"spec":{"replicas":7}})
    );

    // A cold function receiving the same decision reads, sees 7, writes nothing.
    let cold = Scaler::new(&offline_sdk(), Config::default()).unwrap();
    cold.kube().add_cluster("prod", access).unwrap();
    let again = cold.handle_kafka(&batch(&d), Utc::now()).await;
    assert_eq!(again.actions[0].1.outcome, Outcome::Unchanged);
    let methods: Vec<String> = fake
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.method.clone())
        .collect();
    assert_eq!(methods, ["GET", "PATCH", "GET"]);
}

#[tokio::test]
async fn deployment_bounds_are_the_decisions_and_api_errors_are_classified() {
    let (access, fake) = start_fake_kube(3).await;
    let scaler = Scaler::new(&offline_sdk(), Config::default()).unwrap();
    scaler.kube().add_cluster("prod", access).unwrap();
    let report = scaler.handle_kafka(&batch(&decision(40)), Utc::now()).await;
    let a = &report.actions[0].1;
    assert_eq!((a.outcome, a.applied), (Outcome::Clamped, Some(12)));
    assert_eq!(*fake.replicas.lock().unwrap(), 12);

    // A Deployment the API does not know: 404, not retryable.
    let mut missing = decision(5);
    missing.target = Target::Deployment {
        cluster: "prod".into(),
        namespace: "shop".into(),
        name: "gone".into(),
    };
    let report = scaler.handle_kafka(&batch(&missing), Utc::now()).await;
    let a = &report.actions[0].1;
    assert_eq!((a.outcome, a.retryable), (Outcome::Failed, false));
    assert!(a.reason.contains("HTTP 404"), "{}", a.reason);
    assert!(report.response.batch_item_failures.is_empty());
}

#[tokio::test]
async fn unreachable_api_is_retried() {
    let (mut access, _fake) = start_fake_kube(3).await;
    access.endpoint = "https://127.0.0.1:1".into();
    let scaler = Scaler::new(&offline_sdk(), Config::default()).unwrap();
    scaler.kube().add_cluster("prod", access).unwrap();
    let report = scaler.handle_kafka(&batch(&decision(5)), Utc::now()).await;
    let a = &report.actions[0].1;
    assert_eq!(
        (a.outcome, a.retryable),
        (Outcome::Failed, true),
        "{}",
        a.reason
    );
    assert_eq!(report.response.batch_item_failures.len(), 1);
}

#[tokio::test]
async fn cluster_access_comes_from_describe_cluster() {
    let moto = MotoServer::start();
    let sdk = moto.sdk_config();
    create_cluster(&sdk, "prod").await;
    // moto's cluster has an endpoint but a random (non-PEM) CA: the scaler
    // must refuse it, for good, rather than talk TLS to an unverified API.
    let scaler = Scaler::new(&sdk, Config::default()).unwrap();
    let report = scaler.handle_kafka(&batch(&decision(5)), Utc::now()).await;
    let a = &report.actions[0].1;
    assert_eq!(
        (a.outcome, a.retryable),
        (Outcome::Failed, false),
        "{}",
        a.reason
    );
    assert!(a.reason.contains("cluster prod"), "{}", a.reason);
    assert!(
        moto.requests_matching("GET /clusters/prod ") == 1,
        "one DescribeCluster"
    );
    // An unknown cluster: ResourceNotFound, not retryable either.
    let mut other = decision(5);
    other.target = Target::Deployment {
        cluster: "nope".into(),
        namespace: "shop".into(),
        name: "api".into(),
    };
    let report = scaler.handle_kafka(&batch(&other), Utc::now()).await;
    assert!(
        report.actions[0]
            .1
            .reason
            .contains("ResourceNotFoundException"),
        "{}",
        report.actions[0].1.reason
    );
    assert!(!report.actions[0].1.retryable);
}
