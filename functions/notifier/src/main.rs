//! Lambda entry point of the notifier: clients built once, then one
//! [`Notifier::handle`] per invocation.

use lambda_runtime::Error;
use prescient_notifier::{Config, Invocation, Notifier};

#[tokio::main]
async fn main() -> Result<(), Error> {
    prescient_functions_common::lambda::init_tracing();
    let config = Config::from_env()?;
    let sdk = aws_config::load_from_env().await;
    let notifier = Notifier::new(&sdk, config);
    prescient_functions_common::lambda::run(|payload| async {
        let invocation = Invocation::from_json(payload)?;
        Ok(notifier.handle(invocation, chrono::Utc::now()).await?)
    })
    .await
}
