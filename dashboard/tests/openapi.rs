//! Property-based fuzzing of the API against its own OpenAPI document with
//! schemathesis (PyPI; `./scripts/test` installs it into `.venv`): no 5xx,
//! every status code, content type and body as documented. Bounded in
//! examples and time.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::Env;
use prescient_dashboard::auth::Role;

/// `$SCHEMATHESIS`, else the workspace's `.venv/bin/schemathesis`.
fn schemathesis() -> PathBuf {
    if let Some(p) = std::env::var_os("SCHEMATHESIS") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/schemathesis");
    assert!(
        venv.exists(),
        "schemathesis not found: neither $SCHEMATHESIS nor {} exists. Run ./scripts/test (it installs it), \
         or: python3 -m venv .venv && .venv/bin/pip install schemathesis",
        venv.display()
    );
    venv
}

#[tokio::test]
async fn api_conforms_to_its_openapi_document() {
    let bin = schemathesis();
    let env = Env::start(|_| {}).await;
    env.seed().await;
    let (_, admin) = env.token("schemathesis", Role::Admin, None).await;
    let report = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(&bin);
    cmd.arg("run")
        .arg(format!("{}/api/openapi.json", env.base))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "15",
            "--max-time",
            "60",
            "--seed",
            "7",
            "--workers",
            "2",
            "--request-timeout",
            "10",
            "--phases",
            "examples,coverage,fuzzing",
            // The event stream never ends; revocation could pull the run's own token.
            "--exclude-path",
            "/api/v1/stream",
            "--exclude-method",
            "DELETE",
            "--report-dir",
        ])
        .arg(report.path())
        .arg("-H")
        .arg(format!("Authorization: Bearer {admin}"))
        .env("NO_COLOR", "1")
        // Its cache (.schemathesis/) goes with the report, not into the tree.
        .current_dir(report.path())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .expect("schemathesis finished within 300 s")
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "schemathesis found problems (exit {:?}):\n{stdout}\n{stderr}",
        out.status.code()
    );
    // The run really exercised the API.
    let served: i64 = env
        .dash
        .state
        .metrics
        .requests
        .with_label_values(&["/api/v1/services/{service}/series", "GET", "200"])
        .get() as i64;
    assert!(served > 0, "schemathesis reached the series route");
}
