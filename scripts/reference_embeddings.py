#!/usr/bin/env python3
"""Reference vectors for the dense-encoder parity test, computed independently of candle.

A float64 NumPy implementation of BERT (embeddings, 6 post-norm encoder layers, exact erf
GELU) over the same model.safetensors, with sentence-transformers' all-MiniLM-L6-v2 head:
mean pooling over the attention mask, then L2 normalisation. Tokens come from the Hugging
Face `tokenizers` package reading the model's tokenizer.json, truncated at 256 tokens as
sentence-transformers does. Needs: numpy, tokenizers (pip).

    python3 scripts/reference_embeddings.py MODEL_DIR > tests/fixtures/embed/minilm_reference.json
"""
import json
import math
import struct
import sys

import numpy as np
from tokenizers import Tokenizer

SENTENCES = [
    "hello world",
    "Quantum sensing with trapped ions for GPS-denied navigation.",
    "Phase I SBIR: A low-cost solid-state lithium battery for unmanned aerial vehicles.",
    "The proposed effort develops machine learning methods to detect cyber intrusions "
    "in satellite ground stations, using graph neural networks over network telemetry "
    "and protocol logs collected from operational systems.",
    "Hypersonic vehicles need thermal protection systems that survive Mach 8 flight; "
    "we will design and test ceramic matrix composite leading edges.",
    "CRISPR-based diagnostics for rapid detection of antimicrobial resistance genes in "
    "clinical samples, with results in under thirty minutes at the point of care.",
    "naïve café résumé: accents and UTF-8 text — with dashes, “quotes” and emoji 🚀.",
    "a",
    " ".join(
        ["Additive manufacturing of nickel superalloy turbine blades with in-situ "
         "process monitoring, closed-loop laser control and defect prediction."] * 3
    ),
]


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        dtype = {"F32": np.float32, "I64": np.int64}[meta["dtype"]]
        out[name] = np.frombuffer(data[start:end], dtype=dtype).reshape(meta["shape"]).astype(np.float64)
    return out


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


ERF = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + ERF(x / math.sqrt(2.0)))


def encode(w, cfg, ids):
    t = len(ids)
    h = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    dh = h // heads
    eps = cfg.get("layer_norm_eps", 1e-12)
    x = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.position_embeddings.weight"][:t]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda v, n: v @ w[p + n + ".weight"].T + w[p + n + ".bias"]
        q = lin(x, "attention.self.query").reshape(t, heads, dh).transpose(1, 0, 2)
        k = lin(x, "attention.self.key").reshape(t, heads, dh).transpose(1, 0, 2)
        v = lin(x, "attention.self.value").reshape(t, heads, dh).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(t, h)
        x = layer_norm(lin(ctx, "attention.output.dense") + x,
                       w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        inner = gelu(lin(x, "intermediate.dense"))
        x = layer_norm(lin(inner, "output.dense") + x,
                       w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    v = x.mean(0)  # no padding: every token counts
    return v / np.linalg.norm(v)


def main():
    model_dir = sys.argv[1]
    cfg = json.load(open(f"{model_dir}/config.json"))
    w = load_safetensors(f"{model_dir}/model.safetensors")
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tok.no_padding()
    tok.enable_truncation(256)
    rows = []
    for s in SENTENCES:
        ids = tok.encode(s).ids
        rows.append({"text": s, "tokens": len(ids),
                     "vector": [round(float(x), 8) for x in encode(w, cfg, ids)]})
    json.dump({"model": "sentence-transformers/all-MiniLM-L6-v2",
               "method": "NumPy float64 BERT, mean pooling, L2 norm (scripts/reference_embeddings.py)",
               "sentences": rows}, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
