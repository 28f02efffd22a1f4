#!/usr/bin/env bash
# Rebuilds the shipped CET model, artifacts/models/cet_classifier_v1.json and its
# .metadata.json (recipe, input hashes, dev-set figures), from public inputs:
#   - data/cet/training_awards.csv: real SBIR.gov awards with hand labels (see data/cet/README.md);
#   - the SBIR.gov awards API corpus for the word vectors' vocabulary (ereidelbach/SBIR at
#     ac9e65d, Data/Awards_API/Phase */awards_*.json), read as the JSON files themselves or as
#     one NDJSON file of the same records;
#   - all-MiniLM-L6-v2 for the word vectors (scripts/fetch-model.sh puts it in the HF cache).
# Deterministic: the same inputs give the same weights (created_at differs).
#
#   scripts/train-cet-model.sh                        # corpus and dev set from ../shared/data if there
#   CORPUS=~/SBIR/Data/Awards_API scripts/train-cet-model.sh
#   DEV_LABELS=labels.csv DEV_TEXTS=awards.csv scripts/train-cet-model.sh
#   SBIR=target/release/sbir OUT=/tmp/m.json scripts/train-cet-model.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SBIR=${SBIR:-target/release/sbir}
OUT=${OUT:-artifacts/models/cet_classifier_v1.json}
SHARED=../shared/data
CORPUS=${CORPUS:-$SHARED/real/sbir_gov_awards_api_1983_2018.ndjson.gz}
DEV_LABELS=${DEV_LABELS:-$SHARED/cet_labels_dev.csv}
DEV_TEXTS=${DEV_TEXTS:-$SHARED/sbir_awards_real_sample_2026q3.csv}

if [ ! -e "$CORPUS" ]; then
  echo "no corpus at $CORPUS: clone https://github.com/ereidelbach/SBIR (commit ac9e65d) and set" >&2
  echo "CORPUS=<clone>/Data/Awards_API" >&2
  exit 2
fi
corpus=()
if [ -d "$CORPUS" ]; then
  while IFS= read -r f; do corpus+=("$f"); done < <(find "$CORPUS" -name 'awards_*.json' | LC_ALL=C sort)
else
  corpus=("$CORPUS")
fi
[ -x "$SBIR" ] || cargo build --release --locked
scripts/fetch-model.sh >/dev/null

dev=()
if [ -f "$DEV_LABELS" ] && [ -f "$DEV_TEXTS" ]; then
  dev=(--dev-labels "$DEV_LABELS" --dev-texts "$DEV_TEXTS")
else
  echo "no dev set ($DEV_LABELS, $DEV_TEXTS): training without dev figures" >&2
fi
"$SBIR" classify-cet train --labels data/cet/training_awards.csv --corpus "${corpus[@]}" \
  --model "$OUT" "${dev[@]}"
