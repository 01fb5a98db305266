//! The `backtest` and `simulate` commands without the rest of the
//! `prescient` binary (same code, same flags), for benchmarking this crate
//! alone:
//!
//! ```text
//! cargo run --release -p prescient-forecaster --example forecaster_cli -- backtest --csv FILE --horizon 12 --output OUT.csv
//! cargo run --release -p prescient-forecaster --example forecaster_cli -- simulate --csv FILE --policy predictive \
//!     --capacity 50 --lead 15 --min 1 --max 50 --output OUT.csv
//! ```

use clap::{Parser, Subcommand};
use prescient_forecaster::cli;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Rolling-origin backtest.
    Backtest(cli::BacktestArgs),
    /// Policy simulation.
    Simulate(cli::SimulateArgs),
}

fn main() -> Result<(), cli::CliError> {
    match Cli::parse().command {
        Command::Backtest(a) => cli::backtest(a),
        Command::Simulate(a) => cli::simulate(a),
    }
}
