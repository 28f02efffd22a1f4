#!/usr/bin/env bash
# Real-name linkage benchmark: SBIR.gov company names (with city and state) matched by name only
# to the FPDS legal names and UEIs of SBIR firms, mixed into generated distractor recipients.
# Truth: the hand and automatic matches of github.com/USCTIE/SBIR-STTR-data, including the
# candidates that team rejected (for those, "no link" is the right answer). Prints precision,
# recall and the false-link rate on rejected names (scripts/real_linkage.py has the details).
#
# Usage: scripts/real-linkage.sh [DIR] [-- extra sbir enrich flags, e.g. --accept-candidates]
#   SBIR_STTR_DATA  where to clone the source from (default: the GitHub repository)
#   DISTRACTORS     generated recipients mixed in (default 200000)
#   BASELINE=1      also score RapidFuzz extractOne (token-set ratio >= 90) on the same truth
# Not part of `make test` (it needs the network and takes about a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-$(mktemp -d)}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
src=${SBIR_STTR_DATA:-https://github.com/USCTIE/SBIR-STTR-data}
commit=a3cff251428e28fe9a92437389eb0e45b64b6bba
distractors=${DISTRACTORS:-200000}

venv=.tools/venv-linkage
if ! "$venv/bin/python" -c "import openpyxl, rapidfuzz" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q openpyxl==3.1.5 rapidfuzz==3.14.3
fi
if [ ! -d "$dir/src" ]; then
  # Only the five files used: the repository also holds a large xlsx we do not need.
  git clone -q --no-checkout "$src" "$dir/src"
  git -C "$dir/src" checkout -q "$commit" -- FPDS/output_sbir.xlsx FPDS/output_sttr.xlsx \
    SBIR/fuzz_match.csv SBIR/manual_record.xlsx SBIR/void_companies.xlsx
fi
cargo build --release --locked -q
bin=target/release/sbir
py="$venv/bin/python scripts/real_linkage.py"

$py build "$dir/src" "$dir"
"$bin" -q sample-data --awards 10 --recipients "$distractors" --seed 42 --out "$dir/gen" >/dev/null
{ cat "$dir/gen/usaspending_recipients.csv"; tail -n +2 "$dir/recipients.csv"; } >"$dir/all_recipients.csv"
"$bin" -q ingest --input "$dir/awards.csv" --out-dir "$dir/ingest" --format both >/dev/null
$py truth "$dir"
/usr/bin/time -f "enrich: %e s wall, %M KB peak RSS" \
  "$bin" -q enrich --awards "$dir/ingest/sbir_awards.parquet" --recipients "$dir/all_recipients.csv" \
  --truth "$dir/truth.csv" --out-dir "$dir/enriched" --format both --candidates "$@" >/dev/null || true
$py report "$dir"
[ "${BASELINE:-}" = 1 ] && $py baseline "$dir"
echo "outputs: $dir (enriched/enriched_sbir_awards.ndjson, pairs.csv; sbir enrich --explain AWARD_ID)"
