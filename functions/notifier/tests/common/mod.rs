//! Shared by the notifier's integration tests: a local Slack-compatible
//! webhook receiver and sample actions.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response};
use prescient_contracts::action::{Outcome, ScalingAction};
use prescient_contracts::decision::{Mode, Target};
use prescient_functions_common::testkit::serve_http1;

/// The webhook path: its last segment plays the secret token.
pub(crate) const SECRET_PATH: &str = "/services/T0000/B0000/s3cr3tT0ken";

#[derive(Clone, Default)]
/// The receiver: texts received, and a switch to make it fail.
pub(crate) struct Hook {
    pub(crate) texts: Arc<Mutex<Vec<String>>>,
    pub(crate) fail: Arc<Mutex<bool>>,
}

impl Hook {
    async fn serve(self, req: Request<Bytes>) -> Result<Response<Full<Bytes>>, Infallible> {
        let ok_path = req.uri().path() == SECRET_PATH && req.method() == "POST";
        let body = req.body().clone();
        if *self.fail.lock().unwrap() || !ok_path {
            return Ok(Response::builder()
                .status(500)
                .body(Full::new(Bytes::from("no_service")))
                .unwrap());
        }
        let v: serde_json::Value = serde_json::from_slice(&body).expect("webhook body is JSON");
        self.texts
            .lock()
            .unwrap()
            .push(v["text"].as_str().expect("a text field").to_string());
        Ok(Response::new(Full::new(Bytes::from("ok"))))
    }

    pub(crate) fn texts(&self) -> Vec<String> {
        self.texts.lock().unwrap().clone()
    }
}

/// Starts the receiver on 127.0.0.1; returns it and its (secret) URL.
pub(crate) async fn start_hook() -> (Hook, String) {
    let hook = Hook::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}{SECRET_PATH}",
        listener.local_addr().unwrap().port()
    );
    let server = hook.clone();
    serve_http1(listener, None, move |req| server.clone().serve(req));
    (hook, url)
}

/// A sample action for node group `prod/{nodegroup}`.
pub(crate) fn action(outcome: Outcome, nodegroup: &str) -> ScalingAction {
    ScalingAction {
        decision_id: uuid::Uuid::new_v4(),
        service: "checkout".into(),
        target: Target::Nodegroup {
            cluster: "prod".into(),
            nodegroup: nodegroup.into(),
        },
        outcome,
        previous: Some(2),
        requested: 5,
        applied: Some(5),
        reason: "set 2 → 5".into(),
        mode: Mode::Apply,
        retryable: outcome == Outcome::Failed,
        at: Utc::now(),
    }
}

/// The action as the scaler publishes it.
pub(crate) fn json(a: &ScalingAction) -> String {
    serde_json::to_string(a).unwrap()
}
