//! Models on real NAB series: seasonal models beat naive where the series
//! is seasonal, intervals cover roughly their nominal 80%, and the LSTM is
//! deterministic under a seed.

use prescient_forecaster::{BacktestOptions, run_backtest};
use prescient_forecaster::{Lstm, LstmConfig, PointModel};
use prescient_forecaster::{ModelKind, ModelsConfig};
mod data;

use data::nab_path;
use prescient_forecaster::Series;

fn taxi_slice(days: usize) -> Series {
    let s = Series::from_csv_path(&nab_path("realKnownCause/nyc_taxi.csv")).unwrap();
    assert_eq!(s.interval_secs, 1800);
    let n = days * s.points_per_day();
    Series::new(s.timestamp(0), s.interval_secs, s.values[..n].to_vec())
}

#[test]
fn seasonal_models_beat_naive_on_nyc_taxi_and_intervals_cover() {
    let s = taxi_slice(35);
    let opts = BacktestOptions {
        horizon: 6,
        warmup: Some(21 * 48),
        refit_every: Some(2 * 48),
        models: ModelsConfig {
            models: vec![
                ModelKind::Naive,
                ModelKind::SnaiveDaily,
                ModelKind::SnaiveWeekly,
                ModelKind::Ets,
            ],
            calibration_days: 3.0,
            ..Default::default()
        },
        output_every: 1,
        progress: false,
    };
    let r = run_backtest(&s, &opts, &mut std::io::sink()).unwrap();
    let naive = r.mase("naive", 6).unwrap();
    for m in ["snaive_daily", "snaive_weekly", "ets", "auto"] {
        let v = r.mase(m, 6).unwrap();
        assert!(
            v < naive,
            "{m}: MASE@6 {v:.3} not below naive {naive:.3}\n{}",
            r.table(&[1, 6])
        );
    }
    assert!(r.mase("auto", 3).unwrap() < r.mase("snaive_daily", 3).unwrap());
    for m in ["naive", "ets", "auto"] {
        let c = r.coverage(m, 6).unwrap();
        assert!(
            (0.65..=0.95).contains(&c),
            "{m}: 80% interval covers {c:.2}\n{}",
            r.table(&[1, 6])
        );
    }
}

#[test]
fn intervals_cover_on_aws_elb_requests() {
    let s =
        Series::from_csv_path(&nab_path("realAWSCloudwatch/elb_request_count_8c0756.csv")).unwrap();
    let opts = BacktestOptions {
        horizon: 3,
        warmup: Some(7 * 288),
        refit_every: Some(288),
        models: ModelsConfig {
            models: vec![ModelKind::Naive, ModelKind::SnaiveDaily, ModelKind::Ets],
            ..Default::default()
        },
        output_every: 1,
        progress: false,
    };
    let r = run_backtest(&s, &opts, &mut std::io::sink()).unwrap();
    for m in ["naive", "ets", "auto"] {
        let c = r.coverage(m, 3).unwrap();
        assert!(
            (0.65..=0.95).contains(&c),
            "{m}: 80% interval covers {c:.2}\n{}",
            r.table(&[1, 3])
        );
    }
    // The ensemble is never much worse than its best member.
    let best = ["naive", "snaive_daily", "ets"]
        .iter()
        .map(|m| r.mase(m, 3).unwrap())
        .fold(f64::INFINITY, f64::min);
    assert!(
        r.mase("auto", 3).unwrap() < best * 1.1,
        "{}",
        r.table(&[1, 3])
    );
}

fn small_lstm(seed: u64) -> LstmConfig {
    LstmConfig {
        window: 12,
        hidden: 8,
        epochs: 6,
        batch: 64,
        max_samples: 512,
        seed,
        ..Default::default()
    }
}

#[test]
fn lstm_is_deterministic_under_a_seed_and_beats_naive_on_taxi() {
    let s = taxi_slice(28);
    let (train, test) = s.values.split_at(21 * 48);
    let fit = |seed| {
        let mut m = Lstm::new(small_lstm(seed), 6, 48);
        m.fit(train).unwrap();
        m
    };
    let a = fit(7);
    let b = fit(7);
    assert_eq!(
        a.weight_vector(),
        b.weight_vector(),
        "same seed, same weights"
    );
    assert_eq!(a.forecast(6), b.forecast(6));
    let c = fit(8);
    assert_ne!(
        a.weight_vector(),
        c.weight_vector(),
        "another seed, other weights"
    );

    // Out of sample, 6 steps ahead, against naive.
    let mut m = a;
    let (mut e_lstm, mut e_naive) = (0.0, 0.0);
    let mut last = *train.last().unwrap();
    for t in 0..test.len() - 6 {
        e_lstm += (m.forecast(6)[5] - test[t + 5]).abs();
        e_naive += (last - test[t + 5]).abs();
        m.observe(test[t]);
        last = test[t];
    }
    assert!(e_lstm < e_naive, "lstm {e_lstm:.0} vs naive {e_naive:.0}");
}

#[test]
fn lstm_across_series_forecasts_a_series_it_did_not_see() {
    let load = |name: &str| {
        Series::from_csv_path(&nab_path(&format!("realTweets/Twitter_volume_{name}.csv")))
            .unwrap()
            .values
    };
    let (amzn, fb, goog) = (load("AMZN"), load("FB"), load("GOOG"));
    let cfg = LstmConfig {
        window: 12,
        hidden: 8,
        epochs: 4,
        batch: 64,
        max_samples: 768,
        ..Default::default()
    };
    let mut global = Lstm::new(cfg, 12, 288);
    global.fit_across(&[&amzn[..4000], &fb[..4000]]).unwrap();
    // GOOG was not in training; its scale differs (median 16 vs 50 and 14).
    let (hist, test) = goog[..6000].split_at(5000);
    let mut m = global.clone();
    m.adopt(hist);
    let (mut e_lstm, mut e_naive) = (0.0, 0.0);
    let mut last = *hist.last().unwrap();
    for t in 0..test.len() - 12 {
        e_lstm += (m.forecast(12)[11] - test[t + 11]).abs();
        e_naive += (last - test[t + 11]).abs();
        m.observe(test[t]);
        last = test[t];
    }
    assert!(
        e_lstm < e_naive,
        "global lstm {e_lstm:.0} vs naive {e_naive:.0}"
    );
}
