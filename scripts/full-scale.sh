#!/usr/bin/env bash
# Generate the full-scale synthetic set (250,000 awards, 3,500,000 recipients) and time the
# release binary's ingest on it: the figures quoted in issue notes come from this script.
# Usage: scripts/full-scale.sh [DIR]   (default: a new temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-$(mktemp -d)}
cargo build --release --locked -q
bin=target/release/sbir
/usr/bin/time -f "sample-data: %e s wall, %M KB peak RSS" \
  "$bin" sample-data --awards 250000 --recipients 3500000 --seed 42 --out "$dir/gen" -q
ls -l "$dir/gen"
for i in 1 2 3; do
  /usr/bin/time -f "ingest run $i: %e s wall, %U s user, %S s sys, %M KB peak RSS" \
    "$bin" ingest --input "$dir/gen/sbir_awards.csv" --out-dir "$dir/processed" -q
done
python3 - "$dir/processed/sbir_awards.checks.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
m = c["metrics"]
print(f"checks: {c['counts']['input_rows']} rows, {m['records_per_s']:.0f} rows/s, peak RSS {m['peak_rss_mb']:.0f} MB, status {c['status']}")
PY
