#!/usr/bin/env bash
# The benchmark of docs/forecaster.md "Foresight" (release build, CPU):
#   forecaster/benches/foresight.sh [OUT_DIR]
# 1. Backtest (horizon 60, every origin scored) of every model and `auto`
#    on the NASA trace's first four weeks (scored from day 9) and on NAB's
#    elb and Twitter series; the rows of every 60th (NASA) / 12th (NAB)
#    origin go to compare.py, which runs last value, seasonal naive and
#    statsforecast's AutoETS (and AutoARIMA on NASA) on the same origins.
# 2. simulate reactive / predictive / oracle at leads 2, 5, 10 minutes on
#    the NASA weeks (30 requests/min per replica, 1-60 replicas).
# 3. The same backtest and simulate on weeks 5-8 of the trace (held out:
#    nothing was tuned on them).
# Needs .venv with statsforecast (scripts/lib.sh: forecaster_bench_venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-/tmp/prescient-foresight}
mkdir -p "$out"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build -q --release -p prescient-forecaster --example forecaster_cli
bin=$CARGO_TARGET_DIR/release/examples/forecaster_cli
py=${PYTHON:-.venv/bin/python}
nasa=../shared/data/nasa/nasa_http_1995_per_minute.csv
nab=../shared/data/nab/data

echo "== backtest nasa (first 28 days, horizon 60)"
/usr/bin/time -f "wall %e s, max RSS %M KB" "$bin" backtest --csv "$nasa" --days 28 --horizon 60 \
  --output "$out/nasa.backtest.csv" --output-every 60 --quiet | tee "$out/nasa.backtest.txt"
"$py" forecaster/benches/compare.py --csv "$nasa" --days 28 --every 60 --arima --markdown \
  --backtest "$out/nasa.backtest.csv" --name "NASA (4 weeks)" | tee "$out/nasa.compare.md"

for s in realAWSCloudwatch/elb_request_count_8c0756.csv ${NAB_TWEETS:-realTweets/Twitter_volume_AMZN.csv realTweets/Twitter_volume_GOOG.csv realTweets/Twitter_volume_AAPL.csv}; do
  name=$(basename "$s" .csv)
  echo "== backtest $name (horizon 60 steps of 5 min)"
  "$bin" backtest --csv "$nab/$s" --horizon 60 --output "$out/$name.backtest.csv" --output-every 12 --quiet \
    | tee "$out/$name.backtest.txt"
  "$py" forecaster/benches/compare.py --csv "$nab/$s" --every 12 --markdown \
    --backtest "$out/$name.backtest.csv" --name "$name" | tee "$out/$name.compare.md"
done

# simulate_leads NAME CSV PREFIX "POLICIES" [more simulate flags]: every
# policy at leads 2, 5 and 10 on the CSV's first 28 days.
simulate_leads() {
  local name=$1 csv=$2 prefix=$3 policies=$4 lead p
  shift 4
  for lead in 2 5 10; do
    for p in $policies; do
      echo "== simulate $name $p lead $lead"
      "$bin" simulate --csv "$csv" --days 28 --warmup 10080 --policy "$p" --capacity 30 --lead "$lead" --min 1 --max 60 \
        "$@" --output "$out/$prefix.$p.lead$lead.csv" --quiet | grep -E '^(unserved|under|replica|scaling)'
    done
  done
}
simulate_leads nasa "$nasa" nasa "reactive predictive oracle"

# Held-out check: the trace's weeks 5-8 (1995-07-29 04:00 .. 08-26 04:00),
# never used to choose a model or a default, through the same commands
# (backtest with the default models; simulate with the statistical ones, as
# the tuning tables).
held="$out/nasa_weeks5-8.csv"
{ head -1 "$nasa"; sed -n '40322,80641p' "$nasa"; } > "$held"
echo "== backtest nasa weeks 5-8 (held out, horizon 60)"
"$bin" backtest --csv "$held" --days 28 --horizon 60 \
  --output "$out/nasa58.backtest.csv" --output-every 60 --quiet | tee "$out/nasa58.backtest.txt"
simulate_leads "nasa weeks 5-8" "$held" nasa58 "reactive predictive" \
  --models naive,snaive_daily,snaive_weekly,ets,profile
