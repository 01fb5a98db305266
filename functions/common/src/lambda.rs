//! What both Lambda functions' `main` does (feature `runtime`): JSON logs
//! the way CloudWatch reads them, then one handler call per invocation.
//!
//! ```no_run
//! # async fn demo() -> Result<(), lambda_runtime::Error> {
//! prescient_functions_common::lambda::run(|payload: serde_json::Value| async move {
//!     Ok::<_, lambda_runtime::Error>(payload)
//! })
//! .await
//! # }
//! ```

use std::future::Future;

use lambda_runtime::{Error, LambdaEvent, service_fn};

/// JSON log lines without timestamps (CloudWatch adds them), level from
/// `RUST_LOG` (default `info`).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .without_time()
        .init();
}

/// Runs the Lambda runtime loop, calling `handle` with each invocation's
/// payload; its result is the function's response.
pub async fn run<F, Fut, T>(handle: F) -> Result<(), Error>
where
    F: Fn(serde_json::Value) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
    T: serde::Serialize,
{
    let handle = &handle;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move { handle(event.payload).await },
    ))
    .await
}
