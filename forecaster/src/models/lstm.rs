//! A small LSTM trained with candle on a series' own history.
//!
//! Input: the last `window` values (z-scored). The final hidden state is
//! concatenated with the seasonal-naive path for the horizons (relative to
//! the last value) and a linear head predicts the change from the last value
//! for every horizon `1..=H` at once (direct multi-horizon forecasting,
//! squared-error loss). Training uses candle's autograd and AdamW on CPU (or
//! CUDA when built with the `cuda` feature and a GPU is present); inference
//! runs the same arithmetic in plain Rust on the extracted weights, which is
//! what lets the worker forecast thousands of series per second.
//!
//! Training is deterministic under [`LstmConfig::seed`]: weights are drawn
//! from a seeded generator and mini-batches are shuffled with it.
//! [`Lstm::save_safetensors`] / [`Lstm::load_safetensors`] persist a trained model as safetensors so
//! a restart fine-tunes instead of training from scratch.

use super::{ModelError, PointModel, Recent};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// LSTM hyper-parameters. Every field has a default (shown in parentheses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LstmConfig {
    /// Input window in points (default 16).
    pub window: usize,
    /// Hidden units (default 16).
    pub hidden: usize,
    /// Epochs of the first training (default 30).
    pub epochs: usize,
    /// Epochs when re-training a model that is already trained (warm start) (default 5).
    pub finetune_epochs: usize,
    /// Mini-batch size (default 64).
    pub batch: usize,
    /// Most recent training samples used per fit (default 1024).
    pub max_samples: usize,
    /// AdamW learning rate (default 0.01).
    pub learning_rate: f64,
    /// Seed of weight initialisation and batch shuffling (default 42).
    pub seed: u64,
}

impl Default for LstmConfig {
    fn default() -> Self {
        LstmConfig {
            window: 16,
            hidden: 16,
            epochs: 30,
            finetune_epochs: 5,
            batch: 64,
            max_samples: 1024,
            learning_rate: 0.01,
            seed: 42,
        }
    }
}

/// Trained weights, row-major, in the layout used by both the candle graph
/// and the plain-Rust forward pass.
#[derive(Debug, Clone, PartialEq)]
struct Weights {
    /// (1, 4·hidden): input → gates (i, f, g, o).
    wih: Vec<f32>,
    /// (hidden, 4·hidden): hidden → gates.
    whh: Vec<f32>,
    /// (4·hidden): gate bias.
    b: Vec<f32>,
    /// (hidden + H, H): head.
    wout: Vec<f32>,
    /// (H): head bias.
    bout: Vec<f32>,
}

/// The LSTM model. See the module docs.
#[derive(Debug, Clone)]
pub struct Lstm {
    config: LstmConfig,
    horizon: usize,
    period: usize,
    use_season: bool,
    mean: f64,
    std: f64,
    weights: Option<Weights>,
    recent: Recent,
    /// Mean squared error of the last training epoch (normalised units).
    last_loss: f64,
}

impl Lstm {
    /// An untrained model forecasting `horizon` steps with season `period` points.
    pub fn new(config: LstmConfig, horizon: usize, period: usize) -> Self {
        let cap = config.window.max(period).max(1);
        Lstm {
            horizon: horizon.max(1),
            period: period.max(1),
            use_season: false,
            mean: 0.0,
            std: 1.0,
            weights: None,
            recent: Recent::new(cap),
            last_loss: f64::NAN,
            config,
        }
    }

    /// Whether the model has been trained (or loaded).
    pub fn is_trained(&self) -> bool {
        self.weights.is_some()
    }

    /// Training loss (MSE, normalised units) of the last epoch.
    pub fn last_loss(&self) -> f64 {
        self.last_loss
    }

    /// All weights flattened (for determinism checks).
    pub fn weight_vector(&self) -> Vec<f32> {
        self.weights
            .as_ref()
            .map(|w| [&w.wih[..], &w.whh, &w.b, &w.wout, &w.bout].concat())
            .unwrap_or_default()
    }

    fn z(&self, y: f64) -> f32 {
        ((y - self.mean) / self.std) as f32
    }

    /// Features of the origin whose last value is `hist[t]`: window and
    /// seasonal deltas. `get(back)` returns the value `back` steps before t+1.
    fn features(&self, get: impl Fn(usize) -> f64) -> (Vec<f32>, Vec<f32>, f32) {
        let w = self.config.window;
        let last = self.z(get(1));
        let xs = (0..w).map(|s| self.z(get(w - s)) - last).collect();
        let m = self.period;
        let seas = (1..=self.horizon)
            .map(|h| {
                if self.use_season {
                    self.z(get(m * h.div_ceil(m) - h + 1)) - last
                } else {
                    0.0
                }
            })
            .collect();
        (xs, seas, last)
    }

    /// Trains on one history; a trained model is fine-tuned (warm start).
    ///
    /// The matrices are tiny: candle is fastest on one thread here (set
    /// `RAYON_NUM_THREADS=1`; the `backtest` and `simulate` commands do).
    fn train(&mut self, history: &[f64]) -> Result<(), ModelError> {
        if self.weights.is_none() {
            self.use_season = self.season_fits(history.len());
            (self.mean, self.std) = stats(history);
        }
        let mut samples = Samples::default();
        self.add_samples(history, &mut samples)?;
        self.train_samples(samples)
    }

    fn season_fits(&self, len: usize) -> bool {
        self.period > 1 && len >= self.period + self.config.window + self.horizon + 64
    }

    /// Appends the training samples of `history` (with the current
    /// normalisation) to `out`.
    fn add_samples(&self, history: &[f64], out: &mut Samples) -> Result<(), ModelError> {
        let (w, hz) = (self.config.window, self.horizon);
        let need = w + hz + 8;
        if history.len() < need {
            return Err(ModelError::TooShort {
                model: "lstm",
                got: history.len(),
                need,
            });
        }
        // Origins t (last observed index) with a full window, season and targets.
        let first = (w - 1).max(if self.use_season { self.period - 1 } else { 0 });
        let last = history.len() - 1 - hz;
        if last < first {
            return Err(ModelError::TooShort {
                model: "lstm",
                got: history.len(),
                need: first + hz + 1,
            });
        }
        for t in last.saturating_sub(self.config.max_samples - 1).max(first)..=last {
            let (x, s, l) = self.features(|back| history[t + 1 - back]);
            out.xs.extend(x);
            out.seas.extend(s);
            out.ys.extend((1..=hz).map(|h| self.z(history[t + h]) - l));
            out.n += 1;
        }
        Ok(())
    }

    /// Trains one model on several series at once (each normalised by its
    /// own mean and spread, so series of any scale mix): the "global" LSTM.
    /// Call [`Lstm::adopt`] with one series' history before forecasting it.
    pub fn fit_across(&mut self, histories: &[&[f64]]) -> Result<(), ModelError> {
        if self.weights.is_none() {
            self.use_season = histories.iter().all(|h| self.season_fits(h.len()));
        }
        let keep = (self.mean, self.std);
        let mut samples = Samples::default();
        for h in histories {
            (self.mean, self.std) = stats(h);
            self.add_samples(h, &mut samples)?;
        }
        (self.mean, self.std) = keep;
        self.train_samples(samples)
    }

    /// Makes this (trained) model forecast `history`'s series: takes its
    /// normalisation and its recent values, keeps the weights.
    pub fn adopt(&mut self, history: &[f64]) {
        (self.mean, self.std) = stats(history);
        self.recent = Recent::from_history(self.config.window.max(self.period), history);
    }

    fn train_samples(&mut self, samples: Samples) -> Result<(), ModelError> {
        let c = &self.config;
        let (w, hd, hz) = (c.window, c.hidden, self.horizon);
        let warm = self.weights.is_some();
        let Samples {
            xs,
            seas,
            ys,
            n: ns,
        } = samples;
        if ns == 0 {
            return Err(ModelError::TooShort {
                model: "lstm",
                got: 0,
                need: 1,
            });
        }
        let dev = device();
        let mut rng = StdRng::seed_from_u64(c.seed);
        let init = match &self.weights {
            Some(wt) => wt.clone(),
            None => init_weights(&mut rng, hd, hz),
        };
        let var = |v: &[f32], shape: &[usize]| -> Result<Var, ModelError> {
            Ok(Var::from_tensor(&Tensor::from_slice(v, shape, &dev)?)?)
        };
        let wih = var(&init.wih, &[1, 4 * hd])?;
        let whh = var(&init.whh, &[hd, 4 * hd])?;
        let b = var(&init.b, &[4 * hd])?;
        let wout = var(&init.wout, &[hd + hz, hz])?;
        let bout = var(&init.bout, &[hz])?;
        let params = ParamsAdamW {
            lr: c.learning_rate,
            weight_decay: 1e-4,
            ..Default::default()
        };
        let mut opt = AdamW::new(
            vec![
                wih.clone(),
                whh.clone(),
                b.clone(),
                wout.clone(),
                bout.clone(),
            ],
            params,
        )?;
        let x_all = Tensor::from_vec(xs, (ns, w), &dev)?;
        let s_all = Tensor::from_vec(seas, (ns, hz), &dev)?;
        let y_all = Tensor::from_vec(ys, (ns, hz), &dev)?;
        let epochs = if warm { c.finetune_epochs } else { c.epochs };
        let mut order: Vec<u32> = (0..ns as u32).collect();
        for _ in 0..epochs {
            order.shuffle(&mut rng);
            let mut total = 0.0;
            for chunk in order.chunks(c.batch.max(1)) {
                let idx = Tensor::from_slice(chunk, chunk.len(), &dev)?;
                let x = x_all.index_select(&idx, 0)?;
                let s = s_all.index_select(&idx, 0)?;
                let y = y_all.index_select(&idx, 0)?;
                let bsz = chunk.len();
                let mut h = Tensor::zeros((bsz, hd), DType::F32, &dev)?;
                let mut cell = Tensor::zeros((bsz, hd), DType::F32, &dev)?;
                for step in 0..w {
                    let xt = x.narrow(1, step, 1)?;
                    let gates = xt
                        .matmul(wih.as_tensor())?
                        .add(&h.matmul(whh.as_tensor())?)?
                        .broadcast_add(b.as_tensor())?;
                    let i = candle_nn::ops::sigmoid(&gates.narrow(1, 0, hd)?)?;
                    let f = candle_nn::ops::sigmoid(&gates.narrow(1, hd, hd)?)?;
                    let g = gates.narrow(1, 2 * hd, hd)?.tanh()?;
                    let o = candle_nn::ops::sigmoid(&gates.narrow(1, 3 * hd, hd)?)?;
                    cell = f.mul(&cell)?.add(&i.mul(&g)?)?;
                    h = o.mul(&cell.tanh()?)?;
                }
                let feat = Tensor::cat(&[&h, &s], 1)?;
                let out = feat
                    .matmul(wout.as_tensor())?
                    .broadcast_add(bout.as_tensor())?;
                let loss = out.sub(&y)?.sqr()?.mean_all()?;
                opt.backward_step(&loss)?;
                total += f64::from(loss.to_scalar::<f32>()?) * bsz as f64;
            }
            self.last_loss = total / ns as f64;
        }
        let get = |v: &Var| -> Result<Vec<f32>, ModelError> {
            Ok(v.as_tensor().flatten_all()?.to_vec1()?)
        };
        self.weights = Some(Weights {
            wih: get(&wih)?,
            whh: get(&whh)?,
            b: get(&b)?,
            wout: get(&wout)?,
            bout: get(&bout)?,
        });
        Ok(())
    }

    /// Plain-Rust forward pass (same arithmetic as the training graph).
    fn forward(&self, wt: &Weights, xs: &[f32], seas: &[f32]) -> Vec<f32> {
        let hd = self.config.hidden;
        let g4 = 4 * hd;
        let mut h = vec![0f32; hd];
        let mut c = vec![0f32; hd];
        let mut gates = vec![0f32; g4];
        for &x in xs {
            for ((g, w), b) in gates.iter_mut().zip(&wt.wih).zip(&wt.b) {
                *g = x * w + b;
            }
            for (k, hk) in h.iter().enumerate() {
                let row = &wt.whh[k * g4..(k + 1) * g4];
                for j in 0..g4 {
                    gates[j] += hk * row[j];
                }
            }
            for k in 0..hd {
                let i = sigmoid(gates[k]);
                let f = sigmoid(gates[hd + k]);
                let g = gates[2 * hd + k].tanh();
                let o = sigmoid(gates[3 * hd + k]);
                c[k] = f * c[k] + i * g;
                h[k] = o * c[k].tanh();
            }
        }
        let hz = self.horizon;
        let mut out = wt.bout.clone();
        for (k, v) in h.iter().chain(seas.iter()).enumerate() {
            let row = &wt.wout[k * hz..(k + 1) * hz];
            for j in 0..hz {
                out[j] += v * row[j];
            }
        }
        out
    }

    /// Saves the trained model as safetensors.
    pub fn save_safetensors(&self, path: &Path) -> Result<(), ModelError> {
        let wt = self
            .weights
            .as_ref()
            .ok_or_else(|| ModelError::Mismatch("not trained".into()))?;
        let dev = Device::Cpu;
        let meta = [
            self.config.window as f32,
            self.config.hidden as f32,
            self.horizon as f32,
            self.period as f32,
            f32::from(u8::from(self.use_season)),
        ];
        let mut map = HashMap::new();
        map.insert(
            "wih".to_string(),
            Tensor::from_slice(&wt.wih, wt.wih.len(), &dev)?,
        );
        map.insert(
            "whh".to_string(),
            Tensor::from_slice(&wt.whh, wt.whh.len(), &dev)?,
        );
        map.insert(
            "b".to_string(),
            Tensor::from_slice(&wt.b, wt.b.len(), &dev)?,
        );
        map.insert(
            "wout".to_string(),
            Tensor::from_slice(&wt.wout, wt.wout.len(), &dev)?,
        );
        map.insert(
            "bout".to_string(),
            Tensor::from_slice(&wt.bout, wt.bout.len(), &dev)?,
        );
        map.insert(
            "norm".to_string(),
            Tensor::from_slice(&[self.mean, self.std], 2, &dev)?,
        );
        map.insert(
            "meta".to_string(),
            Tensor::from_slice(&meta, meta.len(), &dev)?,
        );
        candle_core::safetensors::save(&map, path)?;
        Ok(())
    }

    /// Loads weights saved by [`Lstm::save_safetensors`] into a model built with the same
    /// configuration, horizon and period. The model still needs history
    /// ([`PointModel::fit`] fine-tunes, or feed it with `observe`).
    pub fn load_safetensors(&mut self, path: &Path) -> Result<(), ModelError> {
        let map = candle_core::safetensors::load(path, &Device::Cpu)?;
        let get = |k: &str| -> Result<Tensor, ModelError> {
            map.get(k)
                .cloned()
                .ok_or_else(|| ModelError::Mismatch(format!("missing tensor {k}")))
        };
        let meta: Vec<f32> = get("meta")?.to_vec1()?;
        let want = [
            self.config.window,
            self.config.hidden,
            self.horizon,
            self.period,
        ];
        if meta.len() != 5 || meta[..4].iter().zip(want).any(|(a, b)| *a as usize != b) {
            return Err(ModelError::Mismatch(format!(
                "saved {meta:?}, want {want:?}"
            )));
        }
        let norm: Vec<f64> = get("norm")?.to_vec1()?;
        self.mean = norm[0];
        self.std = norm[1];
        self.use_season = meta[4] > 0.5;
        self.weights = Some(Weights {
            wih: get("wih")?.to_vec1()?,
            whh: get("whh")?.to_vec1()?,
            b: get("b")?.to_vec1()?,
            wout: get("wout")?.to_vec1()?,
            bout: get("bout")?.to_vec1()?,
        });
        Ok(())
    }
}

/// Training samples: windows, seasonal deltas and targets, row-major.
#[derive(Default)]
struct Samples {
    xs: Vec<f32>,
    seas: Vec<f32>,
    ys: Vec<f32>,
    n: usize,
}

/// Mean and spread (standard deviation, at least 1e-6) of a history.
fn stats(history: &[f64]) -> (f64, f64) {
    let n = history.len().max(1) as f64;
    let mean = history.iter().sum::<f64>() / n;
    let var = history.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt().max(1e-6))
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(d) = Device::cuda_if_available(0) {
        return d;
    }
    Device::Cpu
}

fn init_weights(rng: &mut StdRng, hd: usize, hz: usize) -> Weights {
    let mut uni = |n: usize, scale: f32| -> Vec<f32> {
        (0..n)
            .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale)
            .collect()
    };
    let k = 1.0 / (hd as f32).sqrt();
    let wih = uni(4 * hd, k);
    let whh = uni(hd * 4 * hd, k);
    let mut b = uni(4 * hd, k);
    for v in &mut b[hd..2 * hd] {
        *v += 1.0; // forget-gate bias
    }
    let mut wout = uni((hd + hz) * hz, 0.05);
    for j in 0..hz {
        wout[(hd + j) * hz + j] += 0.5; // start halfway to seasonal naive
    }
    Weights {
        wih,
        whh,
        b,
        wout,
        bout: vec![0.0; hz],
    }
}

impl PointModel for Lstm {
    fn name(&self) -> &'static str {
        "lstm"
    }

    fn fit(&mut self, history: &[f64]) -> Result<(), ModelError> {
        self.train(history)?;
        self.recent = Recent::from_history(self.config.window.max(self.period), history);
        Ok(())
    }

    fn observe(&mut self, y: f64) {
        self.recent.push(y);
    }

    fn forecast(&self, horizon: usize) -> Vec<f64> {
        let need = self
            .config
            .window
            .max(if self.use_season { self.period } else { 1 });
        let (Some(wt), true) = (&self.weights, self.recent.len() >= need) else {
            let last = if self.recent.is_empty() {
                0.0
            } else {
                self.recent.ago(1)
            };
            return vec![last; horizon];
        };
        let (xs, seas, last) = self.features(|back| self.recent.ago(back));
        let out = self.forward(wt, &xs, &seas);
        (0..horizon)
            .map(|h| {
                let z = last + out[h.min(self.horizon - 1)];
                f64::from(z) * self.std + self.mean
            })
            .collect()
    }

    fn clone_box(&self) -> Box<dyn PointModel> {
        Box::new(self.clone())
    }

    fn persist(&self, path: &Path) -> Result<bool, ModelError> {
        if !self.is_trained() {
            return Ok(false);
        }
        self.save_safetensors(path)?;
        Ok(true)
    }

    fn restore(&mut self, path: &Path) -> Result<bool, ModelError> {
        self.load_safetensors(path)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> LstmConfig {
        LstmConfig {
            window: 8,
            hidden: 6,
            epochs: 8,
            finetune_epochs: 2,
            batch: 32,
            max_samples: 256,
            ..Default::default()
        }
    }

    fn wave(n: usize) -> Vec<f64> {
        (0..n)
            .map(|t| 50.0 + 10.0 * (t as f64 * std::f64::consts::TAU / 24.0).sin())
            .collect()
    }

    #[test]
    fn rust_forward_matches_the_candle_graph() {
        let y = wave(400);
        let mut m = Lstm::new(tiny(), 4, 24);
        m.fit(&y).unwrap();
        let wt = m.weights.clone().unwrap();
        let (xs, seas, _) = m.features(|back| y[y.len() - back]);
        let ours = m.forward(&wt, &xs, &seas);
        // Same computation through candle.
        let dev = Device::Cpu;
        let (hd, hz) = (6, 4);
        let t = |v: &[f32], s: &[usize]| Tensor::from_slice(v, s, &dev).unwrap();
        let (wih, whh, b) = (
            t(&wt.wih, &[1, 4 * hd]),
            t(&wt.whh, &[hd, 4 * hd]),
            t(&wt.b, &[4 * hd]),
        );
        let mut h = Tensor::zeros((1, hd), DType::F32, &dev).unwrap();
        let mut c = h.clone();
        for x in &xs {
            let g = t(&[*x], &[1, 1])
                .matmul(&wih)
                .unwrap()
                .add(&h.matmul(&whh).unwrap())
                .unwrap();
            let g = g.broadcast_add(&b).unwrap();
            let sg = |a: usize| candle_nn::ops::sigmoid(&g.narrow(1, a * hd, hd).unwrap()).unwrap();
            let gg = g.narrow(1, 2 * hd, hd).unwrap().tanh().unwrap();
            c = sg(1)
                .mul(&c)
                .unwrap()
                .add(&sg(0).mul(&gg).unwrap())
                .unwrap();
            h = sg(3).mul(&c.tanh().unwrap()).unwrap();
        }
        let feat = Tensor::cat(&[&h, &t(&seas, &[1, hz])], 1).unwrap();
        let out = feat
            .matmul(&t(&wt.wout, &[hd + hz, hz]))
            .unwrap()
            .broadcast_add(&t(&wt.bout, &[hz]))
            .unwrap();
        let theirs: Vec<f32> = out.flatten_all().unwrap().to_vec1().unwrap();
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() < 1e-4, "{ours:?} vs {theirs:?}");
        }
    }

    #[test]
    fn learns_a_wave_and_round_trips_through_safetensors() {
        let y = wave(600);
        let mut m = Lstm::new(tiny(), 4, 24);
        m.fit(&y).unwrap();
        let f = m.forecast(4);
        for (h, v) in f.iter().enumerate() {
            let truth = 50.0 + 10.0 * ((600 + h) as f64 * std::f64::consts::TAU / 24.0).sin();
            assert!((v - truth).abs() < 4.0, "h={h} {v} vs {truth}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.safetensors");
        m.save_safetensors(&p).unwrap();
        let mut back = Lstm::new(tiny(), 4, 24);
        back.load_safetensors(&p).unwrap();
        for v in &y[y.len() - 24..] {
            back.observe(*v);
        }
        assert_eq!(back.forecast(4), f);
        let mut wrong = Lstm::new(tiny(), 5, 24);
        assert!(matches!(
            wrong.load_safetensors(&p),
            Err(ModelError::Mismatch(_))
        ));
    }
}
