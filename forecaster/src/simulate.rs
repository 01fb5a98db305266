//! Replays a series as demand through a capacity model to compare scaling
//! policies.
//!
//! * The series value is the demand in requests per interval; within an
//!   interval demand is spread evenly.
//! * A replica serves `capacity` requests per interval; demand above the
//!   ready capacity is unserved.
//! * A replica requested at `t` is ready at `t + lead`; removing replicas
//!   takes effect at once (pending ones are cancelled first).
//! * Time advances in 15 s steps (the HPA sync period). `reactive` runs the
//!   HPA every step on the current demand (no metrics delay, which flatters
//!   it); `predictive` and `oracle` decide at the start of every interval.
//! * `predictive` is a forecast with a reactive floor, as AWS predictive
//!   scaling is meant to run beside dynamic scaling: requested = max(plan,
//!   floor). The plan, decided at the start of every interval, sizes new
//!   replicas for the interval they can be ready in (`lead + 1`) at
//!   `p50 + headroom × (p90 − p50)` and keeps replicas already there while
//!   the forecast of an earlier interval needs them (at `hold_headroom`),
//!   at `predictive_utilization` (1.0); it gives replicas back once it has
//!   wanted fewer for `release_after` intervals ([`PlanWindow::Now`]: the
//!   highest level over the next `lead + 1` intervals, from now, the plan
//!   before 2026-11-23). The floor is an HPA of its
//!   own (same algorithm, every 15 s, on the current demand) at
//!   `floor_utilization`: it catches what the forecast did not see. With
//!   `floor_utilization` equal to the reactive policy's target the floor
//!   *is* the HPA, so predictive can never serve less (requested ≥ the
//!   HPA's at every instant, and pending replicas are cancelled newest
//!   first, so ready ≥ the HPA's too); above it the floor is cheaper and
//!   the forecast has to earn the difference. It runs the HPA during the
//!   warm-up, before its models are first fitted.
//! * `oracle` knows the demand and keeps exactly enough replicas (100%
//!   utilisation) to serve everything: a lower bound on replica-hours.
//! * Replica-hours count requested replicas (pending ones cost too).
//!   Summaries cover the intervals after the warm-up only, for every policy.

use crate::hpa::{Hpa, HpaConfig};
use crate::models::{ModelError, Quantiles};
use crate::select::{Ensemble, ModelsConfig};
use crate::series::Series;
use std::collections::VecDeque;
use std::io::Write;

/// Errors of a simulation.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
    /// Models could not be fitted.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Invalid settings.
    #[error("invalid settings: {0}")]
    Invalid(String),
}

/// Which policy to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Kubernetes HPA with its defaults.
    Reactive,
    /// Prescient's forecast-driven plan.
    Predictive,
    /// Perfect foresight.
    Oracle,
}

/// Which forecast intervals `predictive`'s plan sizes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanWindow {
    /// The highest forecast over the next `lead + 1` intervals, from now
    /// (the plan before 2026-11-23: it also asks for replicas that can only
    /// arrive after a peak inside the lead time has passed).
    Now,
    /// New replicas for the interval they can arrive in (`lead + 1`);
    /// replicas already there are kept while the forecast needs them before
    /// that (at `hold_headroom`), never added for it.
    Arrival,
}

/// Simulation settings.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Policy to run.
    pub policy: Policy,
    /// Requests per interval one replica serves at 100%.
    pub capacity: f64,
    /// Provisioning delay in seconds.
    pub lead_s: u32,
    /// Minimum replicas.
    pub min: u32,
    /// Maximum replicas.
    pub max: u32,
    /// Target utilisation of `reactive` (and of `predictive` during warm-up) (default 0.7).
    pub target_utilization: f64,
    /// Utilisation `predictive` sizes its p90 forecast at [1.0: the p90 is
    /// the headroom]; lower buys less unserved demand for more replica-hours.
    pub predictive_utilization: f64,
    /// The plan's headroom above the median forecast, in units of the
    /// p50..p90 spread: the plan sizes for `p50 + headroom × (p90 − p50)`
    /// (default 1.0, the p90). Lower is cheaper and leaves more to the floor.
    pub headroom: f64,
    /// Target utilisation of `predictive`'s reactive floor, an HPA of its
    /// own (the command's default 0.9; equal to `target_utilization` makes the floor the
    /// HPA itself, so predictive never serves less than reactive).
    pub floor_utilization: f64,
    /// Scale-down stabilisation window of the reactive floor in seconds
    /// (the command's default 180: the floor lets go of a spike's replicas
    /// after three minutes where the HPA waits five; the plan keeps what
    /// the forecast says is still needed).
    pub floor_scale_down_window_s: u32,
    /// Which forecast intervals the plan sizes for (default
    /// [`PlanWindow::Arrival`]).
    pub plan_window: PlanWindow,
    /// With [`PlanWindow::Arrival`]: the headroom (same unit as `headroom`)
    /// for keeping replicas that the forecast needs before new ones could
    /// arrive (default 1.0).
    pub hold_headroom: f64,
    /// The plan gives replicas back only once this many consecutive plans
    /// (intervals) wanted fewer: its scale-down window (the command's
    /// default: 5 minutes, the HPA's window; 1: at once).
    pub release_after: usize,
    /// Warm-up points excluded from the summary; default `min(8 days, half)`.
    pub warmup: Option<usize>,
    /// Models for `predictive`.
    pub models: ModelsConfig,
    /// Show a progress bar.
    pub progress: bool,
}

/// One output row per interval.
#[derive(Debug, Clone, PartialEq)]
pub struct SimRow {
    /// Interval index.
    pub t: usize,
    /// Demand in the interval.
    pub demand: f64,
    /// Requested replicas at the end of the interval.
    pub desired: u32,
    /// Ready replicas at the end of the interval.
    pub ready: u32,
    /// Requests that found no capacity.
    pub unserved: f64,
}

/// Summary over the evaluation window (after warm-up).
#[derive(Debug, Clone, PartialEq)]
pub struct SimSummary {
    /// Policy name.
    pub policy: &'static str,
    /// Total demand.
    pub demand: f64,
    /// Unserved requests.
    pub unserved: f64,
    /// Unserved share of demand.
    pub unserved_fraction: f64,
    /// Intervals with any unserved demand.
    pub under_provisioned: usize,
    /// Intervals evaluated.
    pub intervals: usize,
    /// Requested replica-hours.
    pub replica_hours: f64,
    /// Requested replica-minutes (`replica_hours × 60`).
    pub replica_minutes: f64,
    /// Changes of the requested replica count.
    pub scaling_actions: usize,
}

const STEP_S: u32 = 15;

struct Fleet {
    requested: u32,
    /// (ready at second, count), in request order.
    pending: VecDeque<(u64, u32)>,
}

impl Fleet {
    fn ready(&self) -> u32 {
        self.requested - self.pending.iter().map(|p| p.1).sum::<u32>()
    }
    fn arrive(&mut self, now: u64) {
        while self.pending.front().is_some_and(|p| p.0 <= now) {
            self.pending.pop_front();
        }
    }
    fn set(&mut self, desired: u32, now: u64, lead_s: u32) {
        if desired > self.requested {
            self.pending
                .push_back((now + u64::from(lead_s), desired - self.requested));
        } else {
            let mut remove = self.requested - desired;
            while remove > 0 {
                let Some(last) = self.pending.back_mut() else {
                    break;
                };
                let k = remove.min(last.1);
                last.1 -= k;
                remove -= k;
                if last.1 == 0 {
                    self.pending.pop_back();
                }
            }
        }
        self.requested = desired;
    }
}

/// Runs one policy over `series`. Returns every interval's row and the summary.
pub fn run(series: &Series, opts: &SimOptions) -> Result<(Vec<SimRow>, SimSummary), SimulateError> {
    let ppd = series.points_per_day();
    let dt = series.interval_secs.max(1) as usize;
    let horizon = (opts.lead_s as usize).div_ceil(dt) + 1;
    let mut ens: Option<Ensemble> = None;
    let mut fitted_at = 0;
    let mut source = |y: &[f64], t: usize| -> Result<Vec<Quantiles>, SimulateError> {
        // y[..t] is known: t - 1 is the last observed index. Refit once a day.
        let e = match &mut ens {
            Some(e) if t - fitted_at < ppd => {
                e.observe(y[t - 1]);
                e
            }
            _ => {
                let mut e = ens
                    .take()
                    .unwrap_or_else(|| Ensemble::new(&opts.models, ppd, horizon));
                e.fit(&y[..t])?;
                fitted_at = t;
                ens.insert(e)
            }
        };
        Ok(e.forecast())
    };
    run_with_forecasts(series, opts, &mut source)
}

/// Where `predictive` gets its forecasts: `source(values, t)` (see
/// [`run_with_forecasts`]).
pub type ForecastSource<'a> =
    dyn FnMut(&[f64], usize) -> Result<Vec<Quantiles>, SimulateError> + 'a;

/// [`run`] with the forecasts of `predictive` from `source(values, t)`:
/// the quantiles for intervals `t, t + 1, …` (horizons `1..`) from
/// `values[..t]`, called once per interval after the warm-up, in order
/// (at least `lead + 1` horizons). For replaying cached
/// forecasts while exploring the policy's settings.
pub fn run_with_forecasts(
    series: &Series,
    opts: &SimOptions,
    source: &mut ForecastSource<'_>,
) -> Result<(Vec<SimRow>, SimSummary), SimulateError> {
    if opts.capacity.is_nan() || opts.capacity <= 0.0 || opts.max < opts.min || opts.max == 0 {
        return Err(SimulateError::Invalid(
            "need capacity > 0 and 0 < max >= min".into(),
        ));
    }
    if !(opts.headroom >= 0.0 && opts.headroom.is_finite()) {
        return Err(SimulateError::Invalid("headroom must be >= 0".into()));
    }
    for u in [
        opts.target_utilization,
        opts.predictive_utilization,
        opts.floor_utilization,
    ] {
        if !(u > 0.0 && u <= 1.0) {
            return Err(SimulateError::Invalid(
                "utilisations must be in (0, 1]".into(),
            ));
        }
    }
    let y = &series.values;
    let n = y.len();
    let dt = series.interval_secs.max(1) as u32;
    let steps = dt.div_ceil(STEP_S).max(1);
    let step_s = dt / steps;
    let ppd = series.points_per_day();
    let warmup = opts
        .warmup
        .unwrap_or((8 * ppd).min(n / 2))
        .min(n.saturating_sub(1));
    let lead_steps = (opts.lead_s as usize).div_ceil(dt as usize);
    let cap = opts.capacity;
    let mut hpa_cfg = HpaConfig::new(opts.min, opts.max);
    hpa_cfg.target_utilization = opts.target_utilization;
    let mut floor_cfg = hpa_cfg.clone();
    floor_cfg.target_utilization = opts.floor_utilization;
    floor_cfg.scale_down_window_s = opts.floor_scale_down_window_s;
    let mut hpa = Hpa::new(hpa_cfg);
    // Predictive's reactive floor: an HPA with its own replica count.
    let mut floor = Hpa::new(floor_cfg);
    let mut plan = opts.min;
    let mut recent_plans: VecDeque<u32> = VecDeque::new();
    let need_at =
        |d: f64, u: f64| ((d / (cap * u)).ceil().max(0.0) as u32).clamp(opts.min, opts.max);
    let need_exact = |d: f64| need_at(d, 1.0);
    let start = match opts.policy {
        Policy::Oracle => need_exact(y[0]),
        _ => hpa.replicas_for(y[0], cap),
    };
    let mut fleet = Fleet {
        requested: start,
        pending: VecDeque::new(),
    };
    let mut rows = Vec::with_capacity(n);
    let bar = if opts.progress && opts.policy == Policy::Predictive && n > 2000 {
        indicatif::ProgressBar::new(n as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    for t in 0..n {
        let t0 = t as u64 * u64::from(dt);
        // Interval-start decisions.
        match opts.policy {
            Policy::Oracle => {
                let want = (t..=(t + lead_steps).min(n - 1))
                    .map(|k| need_exact(y[k]))
                    .max()
                    .unwrap_or(opts.min);
                fleet.arrive(t0);
                fleet.set(want, t0, opts.lead_s);
            }
            Policy::Predictive if t >= warmup => {
                let q = source(y, t)?;
                let p = plan_replicas(&q, fleet.requested, lead_steps, opts, &need_at);
                recent_plans.push_back(p);
                if recent_plans.len() > opts.release_after.max(1) {
                    recent_plans.pop_front();
                }
                plan = recent_plans.iter().copied().max().unwrap_or(p);
            }
            _ => {}
        }
        let mut unserved = 0.0;
        for s in 0..steps {
            let now = t0 + u64::from(s * step_s);
            fleet.arrive(now);
            let reactive = opts.policy == Policy::Reactive
                || (opts.policy == Policy::Predictive && t < warmup);
            if reactive {
                let d = hpa.step(now as f64, fleet.requested, y[t], cap);
                if d != fleet.requested {
                    fleet.set(d, now, opts.lead_s);
                }
            } else if opts.policy == Policy::Predictive {
                // The floor acts on the real fleet, as dynamic scaling does
                // beside AWS predictive scaling: its scale-up steps start
                // from what is there, not from a count of its own.
                let d = plan.max(floor.step(now as f64, fleet.requested, y[t], cap));
                if d != fleet.requested {
                    fleet.set(d, now, opts.lead_s);
                }
            }
            let served_cap = f64::from(fleet.ready()) * cap / f64::from(steps);
            unserved += (y[t] / f64::from(steps) - served_cap).max(0.0);
        }
        rows.push(SimRow {
            t,
            demand: y[t],
            desired: fleet.requested,
            ready: fleet.ready(),
            unserved,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let summary = summarize(opts.policy, &rows, warmup, dt);
    Ok((rows, summary))
}

/// Predictive's plan at the start of an interval, from the `auto` forecast
/// `q` (horizon 1 = this interval) and the replicas `requested` now.
fn plan_replicas(
    q: &[Quantiles],
    requested: u32,
    lead_steps: usize,
    opts: &SimOptions,
    need_at: &dyn Fn(f64, f64) -> u32,
) -> u32 {
    let peak = |qs: &[Quantiles], k: f64| {
        qs.iter()
            .map(|q| q.p50 + k * (q.p90 - q.p50))
            .fold(0.0, f64::max)
    };
    let u = opts.predictive_utilization;
    let arrive = (lead_steps + 1).min(q.len());
    match opts.plan_window {
        PlanWindow::Now => need_at(peak(&q[..arrive], opts.headroom), u),
        PlanWindow::Arrival => {
            // Replicas asked for now are ready at horizon lead + 1: new ones
            // are sized on that interval; before it only what is already
            // there (or on its way) can serve, so it is kept while the
            // forecast still needs it, never added to.
            let new = need_at(peak(&q[arrive.saturating_sub(1)..arrive], opts.headroom), u);
            let hold = need_at(peak(&q[..arrive.saturating_sub(1)], opts.hold_headroom), u);
            new.max(hold.min(requested))
        }
    }
}

fn summarize(policy: Policy, rows: &[SimRow], warmup: usize, dt: u32) -> SimSummary {
    let eval = &rows[warmup.min(rows.len())..];
    let demand: f64 = eval.iter().map(|r| r.demand).sum();
    let unserved: f64 = eval.iter().map(|r| r.unserved).sum();
    let mut actions = 0;
    let mut prev = rows.get(warmup.saturating_sub(1)).map(|r| r.desired);
    for r in eval {
        if prev.is_some_and(|p| p != r.desired) {
            actions += 1;
        }
        prev = Some(r.desired);
    }
    let replica_seconds = eval.iter().map(|r| f64::from(r.desired)).sum::<f64>() * f64::from(dt);
    SimSummary {
        policy: match policy {
            Policy::Reactive => "reactive",
            Policy::Predictive => "predictive",
            Policy::Oracle => "oracle",
        },
        demand,
        unserved,
        unserved_fraction: if demand > 0.0 { unserved / demand } else { 0.0 },
        under_provisioned: eval.iter().filter(|r| r.unserved > 1e-9).count(),
        intervals: eval.len(),
        replica_hours: replica_seconds / 3600.0,
        replica_minutes: replica_seconds / 60.0,
        scaling_actions: actions,
    }
}

/// Writes `timestamp,demand,desired_replicas,ready_replicas,capacity,unserved`.
pub(crate) fn write_csv(
    series: &Series,
    rows: &[SimRow],
    cap: f64,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "timestamp,demand,desired_replicas,ready_replicas,capacity,unserved"
    )?;
    for r in rows {
        writeln!(
            out,
            "{},{},{},{},{},{:.3}",
            series.timestamp(r.t).format("%Y-%m-%d %H:%M:%S"),
            r.demand,
            r.desired,
            r.ready,
            f64::from(r.ready) * cap,
            r.unserved
        )?;
    }
    out.flush()
}

/// An SVG chart of demand (blue), ready capacity (green), requested capacity
/// (dashed orange) and unserved demand (red bars).
pub(crate) fn svg_chart(series: &Series, rows: &[SimRow], cap: f64, title: &str) -> String {
    let (w, h, pad) = (1200.0, 400.0, 40.0);
    let n = rows.len().max(2);
    let stride = n.div_ceil(1500).max(1);
    let ymax = rows
        .iter()
        .map(|r| r.demand.max(f64::from(r.desired) * cap))
        .fold(1.0, f64::max)
        * 1.05;
    let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / (n - 1) as f64;
    let yv = |v: f64| h - pad - (h - 2.0 * pad) * v / ymax;
    let line = |f: &dyn Fn(&SimRow) -> f64| -> String {
        rows.iter()
            .step_by(stride)
            .map(|r| format!("{:.1},{:.1}", x(r.t), yv(f(r))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut bars = String::new();
    for r in rows.iter().filter(|r| r.unserved > 0.0) {
        bars.push_str(&format!(
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1:.1}" y2="{2:.1}" stroke="#d62728" stroke-width="1"/>"##,
            x(r.t),
            yv(0.0),
            yv(r.unserved)
        ));
    }
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;");
    let first = series.timestamp(0).format("%Y-%m-%d %H:%M");
    let last = series
        .timestamp(rows.len().saturating_sub(1))
        .format("%Y-%m-%d %H:%M");
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{pad}" y="20">{title}</text>
<text x="{pad}" y="{yb}">{first}</text><text x="{xe}" y="{yb}" text-anchor="end">{last}</text>
<text x="4" y="{pad}">{ymax:.0}</text>
<line x1="{pad}" y1="{y0}" x2="{xe}" y2="{y0}" stroke="#999"/>
{bars}
<polyline fill="none" stroke="#1f77b4" stroke-width="1" points="{demand}"/>
<polyline fill="none" stroke="#2ca02c" stroke-width="1.5" points="{ready}"/>
<polyline fill="none" stroke="#ff7f0e" stroke-width="1" stroke-dasharray="4 2" points="{desired}"/>
<text x="{xe}" y="20" text-anchor="end"><tspan fill="#1f77b4">demand</tspan> <tspan fill="#2ca02c">ready capacity</tspan> <tspan fill="#ff7f0e">requested capacity</tspan> <tspan fill="#d62728">unserved</tspan></text>
</svg>
"##,
        title = esc(title),
        yb = h - 10.0,
        xe = w - pad,
        y0 = yv(0.0),
        demand = line(&|r| r.demand),
        ready = line(&|r| f64::from(r.ready) * cap),
        desired = line(&|r| f64::from(r.desired) * cap),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step_series() -> Series {
        let mut v = vec![100.0; 10];
        v.extend([300.0; 10]);
        Series::new("2020-01-01T00:00:00Z".parse().unwrap(), 300, v)
    }

    fn opts(policy: Policy) -> SimOptions {
        SimOptions {
            policy,
            capacity: 50.0,
            lead_s: 300,
            min: 1,
            max: 20,
            target_utilization: 1.0,
            predictive_utilization: 1.0,
            floor_utilization: 1.0,
            floor_scale_down_window_s: 60,
            headroom: 1.0,
            plan_window: PlanWindow::Arrival,
            hold_headroom: 1.0,
            release_after: 1,
            warmup: Some(0),
            models: ModelsConfig::default(),
            progress: false,
        }
    }

    #[test]
    fn reactive_loses_one_interval_of_the_step() {
        let (rows, s) = run(&step_series(), &opts(Policy::Reactive)).unwrap();
        // 2 replicas serve 100; at the step HPA asks for 6, ready one interval later.
        assert_eq!(rows[9].ready, 2);
        assert_eq!((rows[10].desired, rows[10].ready), (6, 2));
        assert!((rows[10].unserved - 200.0).abs() < 1e-9);
        assert_eq!(rows[11].ready, 6);
        assert!((s.unserved - 200.0).abs() < 1e-9);
        assert!((s.unserved_fraction - 0.05).abs() < 1e-12);
        assert_eq!((s.under_provisioned, s.scaling_actions), (1, 1));
        // 10 intervals × 2 + 10 × 6 replicas, 5 minutes each.
        assert!((s.replica_hours - 80.0 / 12.0).abs() < 1e-9);
    }

    #[test]
    fn oracle_serves_everything_with_the_minimum() {
        let (rows, s) = run(&step_series(), &opts(Policy::Oracle)).unwrap();
        assert_eq!(s.unserved, 0.0);
        assert_eq!(rows[9].desired, 6); // asked one lead ahead
        assert_eq!(rows[10].ready, 6);
        assert!((s.replica_hours - (9.0 * 2.0 + 11.0 * 6.0) / 12.0).abs() < 1e-9);
        let svg = svg_chart(&step_series(), &rows, 50.0, "oracle <test>");
        assert!(svg.starts_with("<svg") && svg.contains("oracle &lt;test>"));
        let mut csv = Vec::new();
        write_csv(&step_series(), &rows, 50.0, &mut csv).unwrap();
        assert!(
            String::from_utf8(csv)
                .unwrap()
                .contains("2020-01-01 00:50:00,300,6,6,300,0.000")
        );
    }

    #[test]
    fn predictive_beats_reactive_on_a_daily_cycle() {
        use crate::select::ModelKind;
        // 30-minute data, 10 days, a strong daily cycle: the ramps are known.
        let v: Vec<f64> = (0..48 * 10)
            .map(|t| 1000.0 + 800.0 * ((t % 48) as f64 / 48.0 * std::f64::consts::TAU).sin())
            .collect();
        let series = Series::new("2020-01-01T00:00:00Z".parse().unwrap(), 1800, v);
        let mut o = opts(Policy::Reactive);
        o.capacity = 100.0;
        o.lead_s = 3600;
        o.max = 100;
        o.target_utilization = 0.7;
        o.warmup = Some(48 * 5);
        o.models = ModelsConfig {
            models: vec![ModelKind::Naive, ModelKind::SnaiveDaily],
            ..Default::default()
        };
        let (_, reactive) = run(&series, &o).unwrap();
        o.policy = Policy::Predictive;
        let (_, predictive) = run(&series, &o).unwrap();
        o.policy = Policy::Oracle;
        let (_, oracle) = run(&series, &o).unwrap();
        assert!(reactive.unserved > 0.0);
        assert!(
            predictive.unserved < 0.01 * reactive.unserved,
            "{predictive:?} vs {reactive:?}"
        );
        assert_eq!(oracle.unserved, 0.0);
        assert!(oracle.replica_hours <= predictive.replica_hours);
    }

    #[test]
    fn arrival_plan_adds_only_what_can_arrive_and_keeps_what_is_needed() {
        let q = |v: f64| Quantiles {
            p10: v,
            p50: v,
            p90: v + 50.0,
        };
        let o = opts(Policy::Predictive);
        let need = |d: f64, u: f64| ((d / (50.0 * u)).ceil() as u32).clamp(o.min, o.max);
        // Lead 2 intervals: horizon 3 is the first a new replica can serve.
        // A peak at horizon 2 (needs 8) is over before new replicas arrive;
        // horizon 3 needs (100 + 50) / 50 = 3.
        let path = [q(100.0), q(350.0), q(100.0)];
        assert_eq!(
            plan_replicas(&path, 2, 2, &o, &need),
            3,
            "nothing added for the early peak"
        );
        assert_eq!(
            plan_replicas(&path, 10, 2, &o, &need),
            8,
            "kept while the early peak needs it"
        );
        // `now` sizes for the early peak whatever is there.
        let now = SimOptions {
            plan_window: PlanWindow::Now,
            ..o.clone()
        };
        assert_eq!(plan_replicas(&path, 2, 2, &now, &need), 8);
        // The hold headroom applies to the early intervals only.
        let lean = SimOptions {
            hold_headroom: 0.0,
            ..o.clone()
        };
        assert_eq!(plan_replicas(&path, 10, 2, &lean, &need), 7);
    }

    #[test]
    fn the_plan_releases_after_its_window() {
        // Demand steps down from 300 to 100 at interval 10; a perfect
        // forecast from a source that knows the series.
        let series = Series::new(
            "2020-01-01T00:00:00Z".parse().unwrap(),
            60,
            [vec![300.0; 10], vec![100.0; 10]].concat(),
        );
        let exact = |y: &[f64], t: usize| -> Result<Vec<Quantiles>, SimulateError> {
            Ok((t..t + 3)
                .map(|k| {
                    let v = y[k.min(y.len() - 1)];
                    Quantiles {
                        p10: v,
                        p50: v,
                        p90: v,
                    }
                })
                .collect())
        };
        let mut o = opts(Policy::Predictive);
        o.lead_s = 120;
        o.warmup = Some(1);
        o.floor_scale_down_window_s = 0; // the floor lets go at once too
        let released = |after: usize| {
            let o = SimOptions {
                release_after: after,
                ..o.clone()
            };
            let (rows, _) = run_with_forecasts(&series, &o, &mut exact.clone()).unwrap();
            rows.iter()
                .position(|r| r.t >= 10 && r.desired == 2)
                .unwrap()
        };
        assert_eq!(released(1), 10);
        assert_eq!(released(4), 13);
    }

    #[test]
    fn rejects_bad_settings() {
        let mut o = opts(Policy::Reactive);
        o.capacity = 0.0;
        assert!(run(&step_series(), &o).is_err());
    }
}
