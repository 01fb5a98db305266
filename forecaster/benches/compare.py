#!/usr/bin/env python3
"""Side-by-side forecast accuracy: Prescient's models against statsforecast.

    forecaster/benches/compare.py --csv SERIES.csv --backtest BACKTEST.csv \
        [--every 60] [--window-hours 12] [--days 28] [--warmup-days 8] \
        [--horizons 1,5,15,30,60] [--markdown]

BACKTEST.csv is the output of `prescient backtest` on the same series (with
`--output-every` equal to `--every`, or every origin). On every `--every`-th
origin after the warm-up this script fits statsforecast's AutoETS and
AutoARIMA on the last `--window-hours` hours (refitted at every origin, as
a user would run them), forecasts the horizons, and scores them, last value
and seasonal naive (one day) beside every model of the backtest on exactly
the same origins. MAE, MASE (scaled by the warm-up's one-step seasonal-naive
error, as the backtest does) and each model's MAE relative to last value;
for the backtest's models also the share of actuals inside p10..p90.

Needs numpy, pandas and statsforecast (scripts/lib.sh installs them into
.venv: `forecaster_bench_venv`).
"""

import argparse
import csv
import sys
import time
import warnings

import numpy as np
import pandas as pd


def load_series(path, days):
    df = pd.read_csv(path)
    df.columns = ["timestamp", "value"]
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="mixed")
    df = df.sort_values("timestamp").reset_index(drop=True)
    step = df["timestamp"].diff().mode().iloc[0]
    full = pd.date_range(df["timestamp"].iloc[0], df["timestamp"].iloc[-1], freq=step)
    s = df.set_index("timestamp")["value"].reindex(full).interpolate()
    if days:
        s = s.iloc[: int(days * pd.Timedelta(days=1) / step)]
    return s, step


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", required=True)
    ap.add_argument("--backtest", help="prescient backtest output on the same series")
    ap.add_argument("--every", type=int, default=60)
    ap.add_argument("--window-hours", type=float, default=12.0)
    ap.add_argument("--days", type=float, default=0, help="use only the first DAYS days (0: all)")
    ap.add_argument("--warmup-days", type=float, default=8.0)
    ap.add_argument("--horizons", default="1,5,15,30,60")
    ap.add_argument("--no-statsforecast", action="store_true")
    ap.add_argument("--arima", action="store_true", help="also AutoARIMA (slow: ~0.6 s a fit)")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--name", default=None)
    a = ap.parse_args()

    y_s, step = load_series(a.csv, a.days)
    y = y_s.to_numpy(dtype=float)
    n = len(y)
    ppd = int(pd.Timedelta(days=1) / step)
    hs = [int(h) for h in a.horizons.split(",")]
    hmax = max(hs)
    warmup = min(int(a.warmup_days * ppd), n // 2)
    # Origin t = index of the last observed point, as in the backtest.
    origins = [t for t in range(warmup - 1, n - 1 - hmax) if (t - (warmup - 1)) % a.every == 0]
    lag = ppd if warmup > ppd + 1 else 1
    scale = max(np.mean(np.abs(y[lag:warmup] - y[: warmup - lag])), 1e-9)
    win = max(int(a.window_hours * 3600 / step.total_seconds()), 8)

    preds = {}  # model -> array[origins, horizons] of p50
    cover = {}  # model -> array of bool at the largest horizon
    actual = np.array([[y[t + h] for h in hs] for t in origins])
    preds["last value"] = np.array([[y[t]] * len(hs) for t in origins])
    preds["seasonal naive"] = np.array(
        [[y[t + h - ppd * ((h + ppd - 1) // ppd)] for h in hs] for t in origins]
    )

    if not a.no_statsforecast:
        from statsforecast import StatsForecast
        from statsforecast.models import AutoARIMA, AutoETS

        warnings.filterwarnings("ignore")
        chosen = [("AutoETS", AutoETS(season_length=1))]
        if a.arima:
            chosen.append(("AutoARIMA", AutoARIMA(season_length=1)))
        for label, model in chosen:
            started = time.time()
            out = np.zeros((len(origins), len(hs)))
            for i, t in enumerate(origins):
                window = y[max(0, t + 1 - win) : t + 1]
                df = pd.DataFrame({"unique_id": "s", "ds": np.arange(len(window)), "y": window})
                sf = StatsForecast(models=[model], freq=1, n_jobs=1)
                fc = sf.forecast(df=df, h=hmax)
                path = fc[label].to_numpy()
                out[i] = [max(path[h - 1], 0.0) if y.min() >= 0 else path[h - 1] for h in hs]
            preds[label] = out
            print(f"{label}: {len(origins)} fits in {time.time() - started:.1f} s", file=sys.stderr)

    if a.backtest:
        ts = {y_s.index[t].strftime("%Y-%m-%d %H:%M:%S"): i for i, t in enumerate(origins)}
        hidx = {h: j for j, h in enumerate(hs)}
        got = {}
        with open(a.backtest) as f:
            for r in csv.DictReader(f):
                i = ts.get(r["origin"])
                j = hidx.get(int(r["horizon"]))
                if i is None or j is None:
                    continue
                m = r["model"]
                if m not in got:
                    got[m] = (np.full((len(origins), len(hs)), np.nan), np.zeros(len(origins), bool))
                got[m][0][i, j] = float(r["p50"])
                if j == len(hs) - 1:
                    got[m][1][i] = float(r["p10"]) <= y[origins[i] + hs[j]] <= float(r["p90"])
        for m, (p, c) in got.items():
            if np.isnan(p).any():
                print(f"warning: {m} lacks {int(np.isnan(p).sum())} forecasts on these origins", file=sys.stderr)
            preds[f"prescient {m}"] = p
            cover[f"prescient {m}"] = c

    base = np.nanmean(np.abs(actual - preds["last value"]), axis=0)
    name = a.name or a.csv.split("/")[-1]
    rows = []
    for m, p in preds.items():
        mae = np.nanmean(np.abs(actual - p), axis=0)
        rows.append((m, mae, mae / scale, mae / base, cover.get(m)))
    if a.markdown:
        print(f"\n{name}: {len(origins)} origins (every {a.every}th after {warmup} points), MASE scale {scale:.3f}\n")
        head = " | ".join(f"MAE@{h} | MASE@{h} | ×last@{h}" for h in hs)
        print(f"| model | {head} | p10–p90 cover@{hs[-1]} |")
        print("|---|" + "---|" * (3 * len(hs) + 1))
        for m, mae, mase, rel, c in rows:
            cells = " | ".join(f"{mae[j]:.2f} | {mase[j]:.3f} | {rel[j]:.3f}" for j in range(len(hs)))
            cov = f"{c.mean() * 100:.1f}%" if c is not None else "–"
            print(f"| {m} | {cells} | {cov} |")
    else:
        print(f"{name}: {len(origins)} origins, MASE scale {scale:.3f}")
        print(f"{'model':<24}" + "".join(f"{'MAE@' + str(h):>9}{'xlast':>7}" for h in hs) + f"{'cover':>8}")
        for m, mae, mase, rel, c in rows:
            cov = f"{c.mean() * 100:.1f}%" if c is not None else "-"
            print(f"{m:<24}" + "".join(f"{mae[j]:>9.2f}{rel[j]:>7.3f}" for j in range(len(hs))) + f"{cov:>8}")


if __name__ == "__main__":
    main()
