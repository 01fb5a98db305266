#!/usr/bin/env bash
# Benchmarks of docs/forecaster.md on the NAB series (release build, CPU).
#   forecaster/benches/nab.sh [OUT_DIR]
# Backtest: horizon 12 steps (1 hour of 5-minute data), every model.
# Simulate: lead 15 minutes (3 steps), capacity = max(1, ceil(median / 2)),
# replicas 1..500, for reactive, predictive and oracle.
# Tick: 1,000 services × 60 horizons (examples/tick_bench.rs).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-/tmp/prescient-bench}
mkdir -p "$out"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build -q --release -p prescient-forecaster --example forecaster_cli --example tick_bench
bin=$CARGO_TARGET_DIR/release/examples/forecaster_cli
data=../shared/data/nab/data
series="realAWSCloudwatch/elb_request_count_8c0756.csv $(cd $data && ls realTweets/Twitter_volume_*.csv)"
for s in $series; do
  name=$(basename "$s" .csv)
  echo "== backtest $name"
  /usr/bin/time -f "wall %e s, max RSS %M KB" "$bin" backtest --csv "$data/$s" --horizon 12 --output "$out/$name.backtest.csv" --quiet
  cap=$(awk -F, 'NR>1{print $2}' "$data/$s" | sort -n | awk '{v[NR]=$1} END{m=v[int((NR+1)/2)]; c=int((m+1)/2); if (c<1) c=1; print c}')
  for p in reactive predictive oracle; do
    echo "== simulate $name $p (capacity $cap, lead 15 min)"
    "$bin" simulate --csv "$data/$s" --policy "$p" --capacity "$cap" --lead 15 --min 1 --max 500 \
      --output "$out/$name.$p.csv" --quiet | grep -E '^(unserved|under|replica|scaling)'
  done
done
echo "== tick: 1000 services x 60 horizons"
$CARGO_TARGET_DIR/release/examples/tick_bench 1000 8
