#!/usr/bin/env bash
# Draws a benchmark history in a real browser: a few small `sbir benchmark` runs (one saved as
# the baseline, one on other inputs, one that skips a stage), `sbir benchmark report`, then
# headless Chromium (Debian's `chromium`, installed when missing) renders the page to a PNG.
# Not part of `make test`: it takes a minute and installs a browser.
#
#   scripts/check-bench-report.sh [OUT_DIR]      # writes OUT_DIR/report.html and report.png
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-$(mktemp -d)}
SBIR=${SBIR:-$PWD/target/release/sbir}
[ -x "$SBIR" ] || cargo build --release --locked
if ! command -v chromium >/dev/null; then
  apt-get install -y -qq chromium >/dev/null
fi
mkdir -p "$OUT" && cd "$OUT"
export SBIR_ETL__BENCHMARK__DIR="$OUT/bench"
small=(--synthetic-recipients 5000 --repeat 2 -q)
all=ingest,enrich,classify-cet,load-neo4j-export
"$SBIR" benchmark --stages $all --synthetic-awards 2000 "${small[@]}" \
  --baseline "$OUT/bench/baseline.json" --save-as-baseline >/dev/null
# Other inputs: counted, not drawn beside the others.
"$SBIR" benchmark --stages $all --synthetic-awards 500 "${small[@]}" >/dev/null || true
for _ in 1 2; do
  "$SBIR" benchmark --stages $all --synthetic-awards 2000 "${small[@]}" \
    --baseline "$OUT/bench/baseline.json" >/dev/null || true
done
# The latest run skips classify-cet: its charts must still come from an earlier run.
"$SBIR" benchmark --stages ingest,enrich --synthetic-awards 2000 "${small[@]}" \
  --baseline "$OUT/bench/baseline.json" >/dev/null || true
SBIR_ETL__BENCHMARK__BASELINE="$OUT/bench/baseline.json" "$SBIR" -q benchmark report \
  --out "$OUT/report.html" >/dev/null
chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
  --user-data-dir="$(mktemp -d)" --window-size=1200,3800 \
  --screenshot="$OUT/report.png" "file://$OUT/report.html" 2>/dev/null
test -s "$OUT/report.png"
echo "$OUT/report.html"
echo "$OUT/report.png"
