#!/usr/bin/env bash
# Side by side on the local Bolt server (ArcadeDB): `sbir load-neo4j` against the Python driver
# baseline (benches/neo4j_baseline.py) over the same generated graph: each loader's first load
# on a fresh server, then reloads by both loaders, alternating, on each of those two servers.
#
#   scripts/bench-neo4j.sh            # 50,000 synthetic awards (AWARDS=250000 for full scale)
#   ROUNDS=0 AWARDS=250000 scripts/bench-neo4j.sh   # first loads only (ROUNDS reload rounds, default 2)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
AWARDS=${AWARDS:-50000}
ROUNDS=${ROUNDS:-2}
WORK=${WORK:-/tmp/sbir-bench-neo4j}
SBIR="$ROOT/target/release/sbir"
cargo build --release --locked >/dev/null
VENV="$ROOT/.tools/bench-venv"
[ -x "$VENV/bin/python" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet "neo4j>=5,<6"; }

rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK"
"$SBIR" -q sample-data --awards "$AWARDS" --recipients 1000 --out gen >/dev/null
"$SBIR" -q ingest --input gen/sbir_awards.csv >/dev/null
"$SBIR" -q classify-cet --scorer rules >/dev/null || true
"$SBIR" -q load-neo4j --dry-run >/dev/null

server() { "$ROOT/scripts/graph-server.sh" "$@"; }
measure() { # label, command...
  local label=$1; shift
  local t0 t1
  t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N)
  echo "$label $(echo "$t1 - $t0" | bc)"
}
rows=$(python3 -c 'import json,sys; print(sum(len(json.loads(l)["params"].get("rows",[])) for l in open(sys.argv[1])))' data/loaded/neo4j/dry-run.ndjson)
echo "rows (nodes + relationships + stale-edge checks): $rows"

load() { # loader
  if [ "$1" = sbir ]; then
    "$SBIR" -q load-neo4j >/dev/null
  else
    "$VENV/bin/python" "$ROOT/benches/neo4j_baseline.py" data/loaded/neo4j/dry-run.ndjson
  fi
}
# Each loader's first load on a fresh server. The reloads then alternate between the two
# loaders on that same server: the state a first load leaves changes how fast any later
# MERGE runs (by up to 40% here), so reloads are only comparable on one state.
for first in sbir python; do
  server stop >/dev/null 2>&1 || true
  server start >/dev/null
  set -a; . "$ROOT/.tools/arcadedb/run/server.env"; set +a
  measure "$first first-load" load "$first"
  # The order alternates between rounds: the first reload after a CREATE-only first load also
  # pays for the server compiling the MERGE statements.
  for ((round = 1; round <= ROUNDS; round++)); do
    order="sbir python"; ((round % 2)) || order="python sbir"
    for loader in $order; do
      measure "$loader reload-after-$first" load "$loader"
    done
  done
done | awk -v rows="$rows" '{printf "%-7s %-20s %8.1f s  %8.0f rows/s\n", $1, $2, $3, rows/$3}'
server stop
