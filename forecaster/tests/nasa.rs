//! On real per-minute web traffic (`../shared/data/nasa`, NASA KSC, July
//! 1995): `auto` beats the last value from 5 minutes on and is never worse
//! at 1 minute, its intervals are calibrated, and the predictive policy
//! serves at least the HPA's share of demand for fewer replica-minutes,
//! here and on a synthetic flash crowd.
//!
//! The slices are shorter than the benchmark's four weeks to keep the debug
//! test run short; docs/forecaster.md has the four-week figures.

use prescient_forecaster::backtest::{self, BacktestOptions};
use prescient_forecaster::select::{ModelKind, ModelsConfig};
mod data;

use data::nasa_path;
use prescient_forecaster::series::Series;
use prescient_forecaster::simulate::{self, PlanWindow, Policy, SimOptions};

fn nasa(days: f64) -> Series {
    let s = Series::from_csv_path(&nasa_path()).unwrap();
    assert_eq!(s.interval_secs, 60);
    s.first_days(days)
}

fn models() -> ModelsConfig {
    ModelsConfig {
        models: vec![
            ModelKind::Naive,
            ModelKind::SnaiveDaily,
            ModelKind::Ets,
            ModelKind::Profile,
        ],
        calibration_days: 2.0,
        ..Default::default()
    }
}

#[test]
fn auto_beats_last_value_on_nasa_and_intervals_cover() {
    // Days 9-12 scored (8 days of warm-up), every origin, refit daily.
    let s = nasa(12.0);
    let opts = BacktestOptions {
        horizon: 30,
        warmup: Some(8 * 1440),
        refit_every: None,
        models: models(),
        output_every: 1_000_000,
        progress: false,
    };
    let r = backtest::run(&s, &opts, &mut std::io::sink()).unwrap();
    let table = r.table(&[1, 5, 15, 30]);
    eprintln!("{table}");
    let rel = |h| r.relative_to_naive("auto", h).unwrap();
    // Measured on this slice (docs/forecaster.md): 0.832, 0.757, 0.722, 0.723
    // (0.847, 0.758, 0.730, 0.729 before the blend and bias factor of `auto`
    // and the Σ-level of `profile`).
    assert!(
        rel(1) <= 0.90,
        "auto/last value at 1 min {:.3}\n{table}",
        rel(1)
    );
    assert!(
        rel(5) <= 0.85,
        "auto/last value at 5 min {:.3}\n{table}",
        rel(5)
    );
    assert!(
        rel(15) <= 0.77,
        "auto/last value at 15 min {:.3}\n{table}",
        rel(15)
    );
    assert!(
        rel(30) <= 0.77,
        "auto/last value at 30 min {:.3}\n{table}",
        rel(30)
    );
    for h in [1, 15, 30] {
        let c = r.coverage("auto", h).unwrap();
        assert!(
            (0.75..=0.85).contains(&c),
            "auto p10-p90 covers {c:.3} at {h} min\n{table}"
        );
    }
}

fn sim(series: &Series, policy: Policy, warmup: usize) -> simulate::SimSummary {
    sim_with(series, policy, warmup, 60).1
}

/// The benchmark's lean setting (docs/forecaster.md): `--headroom 0.8 --hold-headroom 1.0
/// --floor-utilization 1.0 --release-after 3`.
fn sim_lean(series: &Series, warmup: usize) -> simulate::SimSummary {
    let mut o = options(Policy::Predictive, warmup, 60);
    o.headroom = 0.8;
    o.hold_headroom = 1.0;
    o.floor_utilization = 1.0;
    o.release_after = 3;
    simulate::run(series, &o).unwrap().1
}

/// `floor_window_s`: 60 is the default (cheap floor); 300 with the floor at
/// the HPA's 70% makes the floor the HPA itself (the guarantee).
fn sim_with(
    series: &Series,
    policy: Policy,
    warmup: usize,
    floor_window_s: u32,
) -> (Vec<simulate::SimRow>, simulate::SimSummary) {
    simulate::run(series, &options(policy, warmup, floor_window_s)).unwrap()
}

fn options(policy: Policy, warmup: usize, floor_window_s: u32) -> SimOptions {
    SimOptions {
        policy,
        capacity: 30.0,
        lead_s: 300,
        min: 1,
        max: 60,
        target_utilization: 0.7,
        predictive_utilization: 1.0,
        floor_utilization: 0.7,
        floor_scale_down_window_s: floor_window_s,
        headroom: 1.0,
        plan_window: PlanWindow::Arrival,
        hold_headroom: 1.0,
        release_after: 1,
        warmup: Some(warmup),
        models: models(),
        progress: false,
    }
}

/// `candidate` leaves no more demand unserved than `reactive`, for less
/// than `cost` times its replica-minutes.
fn assert_serves_as_well_for_less(
    name: &str,
    candidate: &simulate::SimSummary,
    reactive: &simulate::SimSummary,
    cost: f64,
) {
    assert!(
        candidate.unserved_fraction <= reactive.unserved_fraction,
        "{name} {candidate:?}\nreactive {reactive:?}"
    );
    assert!(
        candidate.replica_minutes < cost * reactive.replica_minutes,
        "{name} {candidate:?}\nreactive {reactive:?}"
    );
}

#[test]
fn predictive_serves_at_least_the_hpa_on_nasa_for_less() {
    let s = nasa(11.0);
    let reactive = sim(&s, Policy::Reactive, 8 * 1440);
    let predictive = sim(&s, Policy::Predictive, 8 * 1440);
    assert_serves_as_well_for_less("predictive", &predictive, &reactive, 0.95);
    let lean = sim_lean(&s, 8 * 1440);
    assert_serves_as_well_for_less("lean", &lean, &reactive, 0.90);
}

#[test]
fn predictive_serves_at_least_the_hpa_in_a_flash_crowd() {
    // Two days of a quiet daily cycle, then a crowd: ×8 within 3 minutes,
    // for 40 minutes, arriving at a time the history never saw one.
    let ppd: usize = 1440;
    let v: Vec<f64> = (0..ppd * 3)
        .map(|t| {
            let base = 60.0 + 40.0 * ((t % ppd) as f64 / ppd as f64 * std::f64::consts::TAU).sin();
            let noise = ((t * 7919) % 17) as f64 - 8.0;
            let crowd = match t.checked_sub(ppd * 2 + 600) {
                Some(k) if k < 3 => 1.0 + 7.0 * (k + 1) as f64 / 3.0,
                Some(k) if k < 40 => 8.0,
                _ => 1.0,
            };
            (base * crowd + noise).max(0.0)
        })
        .collect();
    let s = Series::new("2024-01-01T00:00:00Z".parse().unwrap(), 60, v);
    let warmup = ppd * 2;
    // With the floor set to the HPA itself, predictive has at least the
    // HPA's ready replicas in every interval, so it never serves less.
    let (hpa_rows, reactive) = sim_with(&s, Policy::Reactive, warmup, 300);
    let (rows, predictive) = sim_with(&s, Policy::Predictive, warmup, 300);
    assert!(reactive.unserved > 0.0, "{reactive:?}");
    for (p, r) in rows.iter().zip(&hpa_rows).skip(warmup) {
        assert!(p.ready >= r.ready, "interval {}: {p:?} vs {r:?}", p.t);
        assert!(
            p.unserved <= r.unserved + 1e-9,
            "interval {}: {p:?} vs {r:?}",
            p.t
        );
    }
    assert!(predictive.unserved <= reactive.unserved);
    // The default, cheaper floor (60 s) leaves the crowd's first minutes to
    // the plan's headroom, which is smaller than the HPA's 43%: measured
    // 2.13% against the HPA's 1.97% unserved here (docs/forecaster.md).
    let cheap = sim(&s, Policy::Predictive, warmup);
    assert!(
        cheap.unserved <= 1.2 * reactive.unserved,
        "predictive {cheap:?}\nreactive {reactive:?}"
    );
    // The lean setting: measured 2.36% against the HPA's 1.97%.
    let lean = sim_lean(&s, warmup);
    assert!(
        lean.unserved <= 1.2 * reactive.unserved,
        "lean {lean:?}\nreactive {reactive:?}"
    );
}
