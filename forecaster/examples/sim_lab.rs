//! Explores `predictive`'s settings on the NASA trace without refitting the
//! models for every setting: the `auto` forecasts of every interval after
//! the warm-up are computed once (same refit schedule as `simulate`) and
//! cached, then every setting given on the command line is replayed through
//! [`prescient_forecaster::run_simulation_with_forecasts`] — the same policy code `prescient
//! simulate` runs.
//!
//! ```text
//! cargo run --release -p prescient-forecaster --example sim_lab -- CACHE_DIR LEAD SETTING...
//! # SETTING: comma-separated key=value of
//! #   k (--headroom), hk (--hold-headroom), arr (1: --plan-window arrival, 0: now),
//! #   sd (--release-after, intervals), fu (--floor-utilization), fw (--floor-window s),
//! #   pu (--predictive-utilization); defaults as `prescient simulate`'s
//! # LAB_CSV=FILE replays the first 28 days of another CSV instead (e.g. the
//! # trace's weeks 5–8 as a held-out check: tail -n +40322 of the file).
//! # LAB_GAP=1 also prints, by the oracle's size, the replica-minutes above
//! # and below the oracle's and the unserved demand.
//! cargo run --release -p prescient-forecaster --example sim_lab -- /tmp/lab 5 arr=0,fu=0.9 k=0.7,fu=1,sd=3
//! ```
//!
//! Four weeks of `../shared/data/nasa` (the benchmark's slice), scored from
//! day 8, 30 requests/min per replica, 1–60 replicas, models without the
//! LSTM.

use prescient_forecaster::Quantiles;
use prescient_forecaster::Series;
use prescient_forecaster::{Ensemble, ModelKind, ModelsConfig};
use prescient_forecaster::{
    PlanWindow, Policy, SimOptions, run_simulation, run_simulation_with_forecasts,
};
use std::path::PathBuf;

fn models() -> ModelsConfig {
    ModelsConfig {
        models: ModelKind::statistical(),
        calibration_days: 3.0,
        ..Default::default()
    }
}

/// Forecasts for every t in warmup..n, `horizon` steps each.
fn forecasts(y: &[f64], warmup: usize, ppd: usize, horizon: usize) -> Vec<Vec<Quantiles>> {
    let mut ens = Ensemble::new(&models(), ppd, horizon);
    let mut out = Vec::with_capacity(y.len() - warmup);
    for t in warmup..y.len() {
        if (t - warmup).is_multiple_of(ppd) {
            ens.fit(&y[..t]).expect("fit");
        } else {
            ens.observe(y[t - 1]);
        }
        out.push(ens.forecast());
    }
    out
}

fn cached(
    dir: &std::path::Path,
    y: &[f64],
    warmup: usize,
    ppd: usize,
    horizon: usize,
) -> Vec<Vec<Quantiles>> {
    let path = dir.join(format!("{}-h{horizon}.f64", tag()));
    if let Ok(bytes) = std::fs::read(&path) {
        let v: Vec<f64> = bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        return v
            .chunks_exact(3 * horizon)
            .map(|o| {
                o.chunks_exact(3)
                    .map(|q| Quantiles {
                        p10: q[0],
                        p50: q[1],
                        p90: q[2],
                    })
                    .collect()
            })
            .collect();
    }
    let started = std::time::Instant::now();
    let f = forecasts(y, warmup, ppd, horizon);
    eprintln!(
        "forecasts h{horizon}: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut bytes = Vec::with_capacity(f.len() * horizon * 24);
    for o in &f {
        for q in o {
            for v in [q.p10, q.p50, q.p90] {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    std::fs::create_dir_all(dir).expect("cache dir");
    std::fs::write(&path, bytes).expect("write cache");
    f
}

/// The cache's name: `nasa28`, or the stem of `LAB_CSV` (a held-out slice).
fn tag() -> String {
    match std::env::var_os("LAB_CSV") {
        Some(path) => {
            let stem = std::path::Path::new(&path)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{stem}28")
        }
        None => "nasa28".into(),
    }
}

fn base(policy: Policy, lead_min: u32, warmup: usize) -> SimOptions {
    SimOptions {
        policy,
        capacity: 30.0,
        lead_s: lead_min * 60,
        min: 1,
        max: 60,
        target_utilization: 0.7,
        predictive_utilization: 1.0,
        headroom: 1.0,
        plan_window: PlanWindow::Arrival,
        hold_headroom: 1.0,
        release_after: 5,
        floor_utilization: 0.9,
        floor_scale_down_window_s: 180,
        warmup: Some(warmup),
        models: models(),
        progress: false,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(args.get(1).expect("CACHE_DIR"));
    let lead: u32 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .expect("LEAD minutes");
    let nasa = match std::env::var_os("LAB_CSV") {
        Some(path) => PathBuf::from(path),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/nasa/nasa_http_1995_per_minute.csv"),
    };
    let series = Series::from_csv_path(&nasa).expect("nasa").first_days(28.0);
    let ppd = series.points_per_day();
    let warmup = 7 * ppd;
    let y = &series.values;
    let (_, hpa) = run_simulation(&series, &base(Policy::Reactive, lead, warmup)).unwrap();
    let (orows, oracle) = run_simulation(&series, &base(Policy::Oracle, lead, warmup)).unwrap();
    let gap = std::env::var_os("LAB_GAP").is_some();
    println!(
        "lead {lead}: reactive {:.3}% {:.0} rm | oracle {:.3}% {:.0} rm ({:.3}x)",
        hpa.unserved_fraction * 100.0,
        hpa.replica_minutes,
        oracle.unserved_fraction * 100.0,
        oracle.replica_minutes,
        oracle.replica_minutes / hpa.replica_minutes
    );
    for setting in &args[3..] {
        let mut o = base(Policy::Predictive, lead, warmup);
        let mut horizon_cache = 0;
        for kv in setting.split(',') {
            let (k, v) = kv.split_once('=').expect("key=value");
            let f: f64 = v.parse().expect("number");
            match k {
                "k" => o.headroom = f,
                "hk" => o.hold_headroom = f,
                "arr" => {
                    o.plan_window = if f != 0.0 {
                        PlanWindow::Arrival
                    } else {
                        PlanWindow::Now
                    }
                }
                "fu" => o.floor_utilization = f,
                "fw" => o.floor_scale_down_window_s = f as u32,
                "pu" => o.predictive_utilization = f,
                "sd" => o.release_after = f as usize,
                "hc" => horizon_cache = f as usize,
                _ => panic!("unknown key {k}"),
            }
        }
        let horizon = if horizon_cache > 0 {
            horizon_cache
        } else {
            lead as usize + 1
        };
        let f = cached(&dir, y, warmup, ppd, horizon);
        let mut source = |_: &[f64], t: usize| Ok(f[t - warmup].clone());
        let (rows, s) = run_simulation_with_forecasts(&series, &o, &mut source).unwrap();
        if gap {
            // Replica-minutes above / below the oracle's by the oracle's size,
            // and unserved by that size.
            let mut by: std::collections::BTreeMap<u32, (f64, f64, f64, f64, usize)> =
                Default::default();
            for (p, r) in rows.iter().zip(&orows).skip(warmup) {
                let e = by.entry(r.desired.min(12)).or_default();
                let d = f64::from(p.desired) - f64::from(r.desired);
                if d > 0.0 {
                    e.0 += d
                } else {
                    e.1 -= d
                }
                e.2 += p.unserved;
                e.3 += p.demand;
                e.4 += 1;
            }
            for (k, (over, under, un, dem, n)) in by {
                println!(
                    "  oracle {k:>2}: n {n:>6} over {over:>7.0} under {under:>6.0} unserved {un:>7.0} of {dem:>9.0}"
                );
            }
        }
        let ok = s.unserved_fraction <= hpa.unserved_fraction;
        println!(
            "{setting:40} {:.3}%{} {:>7.0} rm {:.3}x  actions {}",
            s.unserved_fraction * 100.0,
            if ok { " " } else { "✗" },
            s.replica_minutes,
            s.replica_minutes / hpa.replica_minutes,
            s.scaling_actions
        );
    }
}
