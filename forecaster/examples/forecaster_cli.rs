//! The `backtest` and `simulate` commands without the rest of the
//! `prescient` binary (same code, same flags: the flag definitions are the
//! binary's `src/forecaster_flags.rs`, included here by path), for
//! benchmarking this crate alone:
//!
//! ```text
//! cargo run --release -p prescient-forecaster --example forecaster_cli -- backtest --csv FILE --horizon 12 --output OUT.csv
//! cargo run --release -p prescient-forecaster --example forecaster_cli -- simulate --csv FILE --policy predictive \
//!     --capacity 50 --lead 15 --min 1 --max 50 --output OUT.csv
//! ```

use clap::{Parser, Subcommand};
use prescient_forecaster::{backtest_command, simulate_command};

#[path = "../../src/forecaster_flags.rs"]
#[allow(dead_code)]
pub mod forecaster_flags;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Rolling-origin backtest.
    Backtest(forecaster_flags::BacktestArgs),
    /// Policy simulation.
    Simulate(forecaster_flags::SimulateArgs),
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Backtest(a) => backtest_command(a.resolve()?)?,
        Command::Simulate(a) => simulate_command(a.resolve()?)?,
    }
    Ok(())
}
