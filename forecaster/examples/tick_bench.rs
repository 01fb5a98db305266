//! Benchmark of the worker's per-tick cost: N services of one-minute data,
//! each with its own fitted ensemble, absorb one new minute and forecast
//! 1..=60 minutes ahead. Single thread.
//!
//! ```text
//! cargo run --release -p prescient-forecaster --example tick_bench -- [services] [days] [models]
//! cargo run --release -p prescient-forecaster --example tick_bench -- 1000 8 naive,snaive_daily,snaive_weekly,ets
//! ```

use prescient_forecaster::{Ensemble, ModelKind, ModelsConfig};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let services: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let days: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(8);
    let models: Vec<ModelKind> = args
        .get(3)
        .map(|s| s.as_str())
        .unwrap_or("naive,snaive_daily,snaive_weekly,ets,profile")
        .split(',')
        .map(|m| ModelKind::parse(m).expect("model name"))
        .collect();
    let cfg = ModelsConfig {
        models,
        ..Default::default()
    };
    let n = days * 1440;
    let series = |s: usize| -> Vec<f64> {
        (0..n + 60)
            .map(|t| {
                let day = (t % 1440) as f64 / 1440.0 * std::f64::consts::TAU;
                100.0 * (1 + s % 17) as f64 * (1.0 + 0.5 * (day + s as f64).sin())
                    + ((t * 7919 + s) % 31) as f64
            })
            .collect()
    };
    let t0 = Instant::now();
    let mut fleet: Vec<(Ensemble, Vec<f64>)> = (0..services)
        .map(|s| {
            let y = series(s);
            let mut e = Ensemble::new(&cfg, 1440, 60);
            e.fit(&y[..n]).expect("fit");
            (e, y)
        })
        .collect();
    let fit = t0.elapsed().as_secs_f64();
    println!(
        "fitted {services} services × {days} days of 1-min data in {fit:.2} s ({:.1} ms per service)",
        fit * 1e3 / services as f64
    );
    let mut ticks = vec![];
    for k in 0..10 {
        let t = Instant::now();
        let mut sum = 0.0;
        for (e, y) in &mut fleet {
            e.observe(y[n + k]);
            sum += e.forecast().iter().map(|q| q.p90).sum::<f64>();
        }
        ticks.push(t.elapsed().as_secs_f64());
        std::hint::black_box(sum);
    }
    ticks.sort_by(f64::total_cmp);
    println!(
        "tick (observe + 60-step auto forecast with p10/p50/p90) for {services} services: median {:.1} ms, max {:.1} ms",
        ticks[ticks.len() / 2] * 1e3,
        ticks[ticks.len() - 1] * 1e3
    );
}
