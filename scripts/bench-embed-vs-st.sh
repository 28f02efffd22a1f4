#!/usr/bin/env bash
# `sbir embed` against sentence-transformers (PyTorch, CPU) on the same chunk texts, on this
# machine, alternating runs so the host's drift weighs on both alike. Not part of `make test`
# (it installs PyTorch, several GB, into a throwaway venv).
#
#   scripts/bench-embed-vs-st.sh [AWARDS.csv|DOCS.jsonl]
#
# Input: a CSV with title and abstract columns (`title`/`abstract`, or SBIR.gov's `Award Title`/
# `Abstract`; default: the 100 real awards of
# ../shared/data/sbir_awards_real_sample_2026q3.csv), or JSON lines of {id, text}.
# 1. `sbir embed` chunks the documents; its chunks.jsonl holds the chunk texts.
# 2. ROUNDS rounds, rotating which goes first, THREADS threads each:
#    - sbir: `sbir embed` of the documents (load, chunk, encode, write; sparse and rerank off),
#    - int8: the same with `--precision int8` (its fp32 re-check off: agreement is step 3's),
#    - st:   SentenceTransformer(model).encode(chunk texts) (load, tokenize, encode, normalise).
#    All are timed as whole processes (chunks/s = chunks / wall time) and by their own
#    encode-only clocks (sbir: processing_summary.json dense_run.chunks_per_s).
# 3. Agreement: sentence-transformers re-embeds every exported chunk text; min and mean
#    cosine against sbir's vector of that chunk (dense.npy row = chunks.jsonl line); and
#    int8 against fp32 on every chunk.
#
# Settings: ROUNDS (3), THREADS (2), SBIR (target/release/sbir), VENV (a throwaway one in a
# temp folder; give a path to keep and reuse it). Other `sbir` settings come in as usual
# (SBIR_ETL__EMBED__BATCH_TOKENS=…).
set -euo pipefail
cd "$(dirname "$0")/.."

INPUT=${1:-../shared/data/sbir_awards_real_sample_2026q3.csv}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
SBIR=${SBIR:-target/release/sbir}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
VENV=${VENV:-$work/venv}

[ -f "$INPUT" ] || { echo "no input file $INPUT" >&2; exit 2; }
[ -x "$SBIR" ] || cargo build --release --locked
scripts/fetch-model.sh >/dev/null 2>&1 || scripts/fetch-model.sh
CACHE="${HF_HUB_CACHE:-${HF_HOME:-$HOME/.cache/huggingface}/hub}"
MODEL_DIR=$(ls -d "$CACHE"/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/*/ | head -1)

if [ ! -x "$VENV/bin/python" ]; then
  echo "installing sentence-transformers into $VENV (several GB, once)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet sentence-transformers numpy
fi
PY="$VENV/bin/python"

# Documents as JSON lines (title, a blank line, abstract), so both tools read the same text.
"$PY" - "$INPUT" "$work/docs.jsonl" <<'PY'
import csv, json, sys
src, out = sys.argv[1], sys.argv[2]
with open(out, "w") as w:
    if src.endswith((".jsonl", ".ndjson")):
        for line in open(src):
            if line.strip():
                d = json.loads(line)
                w.write(json.dumps({"id": str(d["id"]), "text": d["text"]}) + "\n")
    else:
        rows = csv.DictReader(open(src, newline="", encoding="utf-8-sig"))
        # SBIR.gov spellings too: "Award Title", "Abstract".
        col = {k.strip().lower(): k for k in rows.fieldnames or []}
        title, abstract = col.get("title", col.get("award title")), col.get("abstract")
        ident = col.get("award_id", col.get("id"))
        if not (title or abstract):
            sys.exit(f"{src}: no title or abstract column")
        for i, r in enumerate(rows):
            parts = (r.get(title) or "", r.get(abstract) or "")
            text = "\n\n".join(x for x in parts if x.strip())
            if text:
                w.write(json.dumps({"id": (r.get(ident) if ident else None) or f"row-{i + 1}", "text": text}) + "\n")
PY

sbir_run() { # $1: output folder, $2: precision
  RAYON_NUM_THREADS=$THREADS SBIR_ETL__PATHS__PROCESSED_DIR="$1" SBIR_ETL__EMBED__INT8_CHECK_CHUNKS=0 \
    "$SBIR" -q embed --input "$work/docs.jsonl" --name bench --model-dir "$MODEL_DIR" \
    --disable-sparse --disable-rerank --precision "${2:-fp32}" >/dev/null
}

# The chunk texts, from one untimed run.
sbir_run "$work/first"
cp "$work/first/embeddings/bench/chunks.jsonl" "$work/chunks.jsonl"
CHUNKS=$(wc -l < "$work/chunks.jsonl")
echo "input: $INPUT → $(wc -l < "$work/docs.jsonl") documents, $CHUNKS chunks; $THREADS threads, $ROUNDS rounds" >&2

cat > "$work/st.py" <<'PY'
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import torch
from sentence_transformers import SentenceTransformer
model_dir, chunks, threads, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(threads)
texts = [json.loads(l)["text"] for l in open(chunks) if l.strip()]
model = SentenceTransformer(model_dir, device="cpu")
t1 = time.perf_counter()
v = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
t2 = time.perf_counter()
np.save(out, v.astype(np.float32))
print(json.dumps({"encode_s": t2 - t1, "total_s": time.perf_counter() - t0}))
PY

st_run() { "$PY" "$work/st.py" "$MODEL_DIR" "$work/chunks.jsonl" "$THREADS" "$1"; }

: > "$work/times.tsv"
for round in $(seq 1 "$ROUNDS"); do
  case $((round % 3)) in
    1) order="sbir int8 st" ;;
    2) order="int8 st sbir" ;;
    *) order="st sbir int8" ;;
  esac
  for tool in $order; do
    start=$(date +%s.%N)
    if [ "$tool" != st ]; then
      precision=fp32; [ "$tool" = int8 ] && precision=int8
      sbir_run "$work/$tool$round" "$precision"
      end=$(date +%s.%N)
      enc=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["dense_run"]["chunks_per_s"])' \
        "$work/$tool$round/embeddings/bench/processing_summary.json")
    else
      res=$(st_run "$work/st.npy")
      end=$(date +%s.%N)
      enc=$("$PY" -c 'import json,sys; r=json.loads(sys.argv[1]); print(int(sys.argv[2]) / r["encode_s"])' "$res" "$CHUNKS")
    fi
    printf '%s\t%s\t%s\n' "$tool" "$(echo "$end - $start" | bc)" "$enc" >> "$work/times.tsv"
    echo "round $round $tool done" >&2
  done
done

"$PY" - "$work/times.tsv" "$CHUNKS" "$work/st.npy" "$work/sbir1/embeddings/bench/dense.npy" \
  "$work/int81/embeddings/bench/dense.npy" <<'PY'
import statistics, sys
import numpy as np
rows = [l.split("\t") for l in open(sys.argv[1]) if l.strip()]
n = int(sys.argv[2])
def med(tool, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == tool)
for tool in ("sbir", "int8", "st"):
    walls = [float(r[1]) for r in rows if r[0] == tool]
    print(f"{tool:5} process {n / med(tool, 1):7.1f} chunks/s (wall {min(walls):.2f}-{max(walls):.2f} s)"
          f"   encode-only {med(tool, 2):7.1f} chunks/s")
for tool in ("sbir", "int8"):
    print(f"ratio {tool}/st: process {med('st', 1) / med(tool, 1):.2f}x, encode-only {med(tool, 2) / med('st', 2):.2f}x")
def unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)
st, fp32, int8 = (unit(np.load(p)) for p in sys.argv[3:6])
for name, a, b in (("sbir fp32 vs st", fp32, st), ("sbir int8 vs sbir fp32", int8, fp32)):
    cos = (a * b).sum(axis=1)
    worst = int(cos.argmin())
    print(f"agreement {name} over {len(cos)} chunks: min cosine {cos.min():.6f} (chunk line {worst + 1}), "
          f"mean {cos.mean():.6f}, {int((cos < 0.9999).sum())} below 0.9999")
PY
