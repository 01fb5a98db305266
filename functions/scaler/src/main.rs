//! Lambda entry point of the scaler: clients built once, then one
//! [`Scaler::handle`] per invocation.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use prescient_scaler::{Config, Invocation, Scaler};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .without_time()
        .init();
    let config = Config::from_env()?;
    let sdk = aws_config::load_from_env().await;
    let scaler = Scaler::new(&sdk, config)?;
    let scaler = &scaler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let invocation = Invocation::from_json(event.payload)?;
            Ok::<_, Error>(scaler.handle(invocation, chrono::Utc::now()).await?)
        },
    ))
    .await
}
