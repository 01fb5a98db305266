//! Lambda entry point of the notifier: clients built once, then one
//! [`Notifier::handle`] per invocation.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use prescient_notifier::{Config, Invocation, Notifier};

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
    let notifier = Notifier::new(&sdk, config);
    let notifier = &notifier;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let invocation = Invocation::from_json(event.payload)?;
            Ok::<_, Error>(notifier.handle(invocation, chrono::Utc::now()).await?)
        },
    ))
    .await
}
