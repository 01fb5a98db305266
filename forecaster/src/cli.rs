//! Arguments and entry points of the forecaster's subcommands. The root
//! `prescient` binary wires these in; keep the names stable.

/// Errors of the forecaster's commands.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Placeholder until the command is written.
    #[error("{0}")]
    Other(String),
}

/// `prescient backtest`.
#[derive(Debug, clap::Args)]
pub struct BacktestArgs {}

/// `prescient simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {}

/// `prescient forecaster`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {}

/// Runs `prescient backtest`.
pub fn backtest(_args: BacktestArgs) -> Result<(), CliError> {
    Err(CliError::Other("backtest: being written (issue 3)".into()))
}

/// Runs `prescient simulate`.
pub fn simulate(_args: SimulateArgs) -> Result<(), CliError> {
    Err(CliError::Other("simulate: being written (issue 3)".into()))
}

/// Runs the `prescient forecaster` worker until interrupted.
pub async fn worker(_args: WorkerArgs) -> Result<(), CliError> {
    Err(CliError::Other("forecaster: being written (issue 3)".into()))
}
