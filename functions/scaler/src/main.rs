//! Lambda entry point of the scaler: clients built once, then one
//! [`Scaler::handle`] per invocation.

// The handler future nests deeply (SDK calls inside the runtime loop).
#![recursion_limit = "256"]

use lambda_runtime::Error;
use prescient_scaler::{Config, Invocation, Scaler};

#[tokio::main]
async fn main() -> Result<(), Error> {
    prescient_functions_common::lambda::init_tracing();
    let config = Config::from_env()?;
    let sdk = aws_config::load_from_env().await;
    let scaler = Scaler::new(&sdk, config)?;
    prescient_functions_common::lambda::run(|payload| async {
        let invocation = Invocation::from_json(payload)?;
        Ok(scaler.handle(invocation, chrono::Utc::now()).await?)
    })
    .await
}
