//! `sbir embed`: collections of every kind, chunking, the FAISS/NumPy/Parquet exports, the
//! manifest against its JSON schema, sparse vectors (BM25 and SPLADE), bad input, model
//! lookup, and parity of the real all-MiniLM-L6-v2 with independent reference vectors.
//!
//! Most tests use a tiny random-weight BERT and WordPiece tokenizer written by the test, so
//! they need no downloaded model.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde_json::{Value, json};

use crate::workdir::{Workdir, real_model_missing, stderr};

const WORDS: &[&str] = &[
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "for",
    "with",
    "on",
    "is",
    "we",
    "will",
    "quantum",
    "sensing",
    "sensor",
    "battery",
    "lithium",
    "solid",
    "state",
    "laser",
    "drone",
    "navigation",
    "machine",
    "learning",
    "cyber",
    "network",
    "satellite",
    "space",
    "hypersonic",
    "thermal",
    "protection",
    "gene",
    "editing",
    "diagnostic",
    "turbine",
    "engine",
    "nuclear",
    "reactor",
    "chip",
    "design",
    "test",
    "system",
    "data",
    "model",
    "new",
    "low",
    "cost",
    "high",
    "power",
    "energy",
    "storage",
    "solar",
    "cell",
    "intro",
    "methods",
    "results",
    "notes",
    "cafe",
    "##s",
    "##ing",
    "##ed",
    ".",
    ",",
    "#",
    "-",
    ":",
    "(",
    ")",
];

/// The head of a tiny test model.
#[derive(Clone, Copy, PartialEq)]
enum Head {
    /// A bare encoder (a sentence-transformers checkpoint).
    None,
    /// A tied masked-LM head under the `bert.` prefix (SPLADE).
    Mlm,
    /// Pooler + one-label classifier under the `bert.` prefix (a cross-encoder).
    Classifier,
}

/// A tiny random BERT (hidden 32, 2 layers) with its WordPiece tokenizer, in `dir`.
fn tiny_bert(wd: &Workdir, dir: &str, head: Head) {
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    let vocab: Vec<&str> = specials.iter().chain(WORDS).copied().collect();
    let v = vocab.len();
    let (h, inter, layers, pos) = (32, 64, 2, 512);
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": specials.iter().enumerate().map(|(i, t)| json!({
            "id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
            "normalized": false, "special": true
        })).collect::<Vec<_>>(),
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": null,
        "decoder": null,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100,
                  "vocab": vocab.iter().enumerate().map(|(i, t)| (t.to_string(), json!(i)))
                      .collect::<serde_json::Map<_, _>>()}
    });
    wd.write(&format!("{dir}/tokenizer.json"), tokenizer.to_string());
    let config = json!({
        "model_type": "bert", "vocab_size": v, "hidden_size": h, "num_hidden_layers": layers,
        "num_attention_heads": 4, "intermediate_size": inter, "hidden_act": "gelu",
        "max_position_embeddings": pos, "type_vocab_size": 2, "layer_norm_eps": 1e-12
    });
    wd.write(&format!("{dir}/config.json"), config.to_string());

    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rand = |shape: &[usize]| {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
            })
            .collect();
        Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
    };
    let ones = |n: usize| Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).unwrap();
    let zeros = |n: usize| Tensor::zeros(n, candle_core::DType::F32, &Device::Cpu).unwrap();
    let p = if head == Head::None { "" } else { "bert." };
    let mut t: HashMap<String, Tensor> = HashMap::new();
    t.insert(
        format!("{p}embeddings.word_embeddings.weight"),
        rand(&[v, h]),
    );
    t.insert(
        format!("{p}embeddings.position_embeddings.weight"),
        rand(&[pos, h]),
    );
    t.insert(
        format!("{p}embeddings.token_type_embeddings.weight"),
        rand(&[2, h]),
    );
    let norm = |t: &mut HashMap<String, Tensor>, name: String| {
        t.insert(format!("{name}.weight"), ones(h));
        t.insert(format!("{name}.bias"), zeros(h));
    };
    norm(&mut t, format!("{p}embeddings.LayerNorm"));
    for l in 0..layers {
        let lp = format!("{p}encoder.layer.{l}.");
        for (name, i, o) in [
            ("attention.self.query", h, h),
            ("attention.self.key", h, h),
            ("attention.self.value", h, h),
            ("attention.output.dense", h, h),
            ("intermediate.dense", h, inter),
            ("output.dense", inter, h),
        ] {
            t.insert(format!("{lp}{name}.weight"), rand(&[o, i]));
            t.insert(format!("{lp}{name}.bias"), rand(&[o]));
        }
        norm(&mut t, format!("{lp}attention.output.LayerNorm"));
        norm(&mut t, format!("{lp}output.LayerNorm"));
    }
    if head == Head::Classifier {
        t.insert(format!("{p}pooler.dense.weight"), rand(&[h, h]));
        t.insert(format!("{p}pooler.dense.bias"), rand(&[h]));
        t.insert("classifier.weight".into(), rand(&[1, h]));
        t.insert("classifier.bias".into(), rand(&[1]));
    }
    if head == Head::Mlm {
        t.insert(
            "cls.predictions.transform.dense.weight".into(),
            rand(&[h, h]),
        );
        t.insert("cls.predictions.transform.dense.bias".into(), rand(&[h]));
        norm(&mut t, "cls.predictions.transform.LayerNorm".into());
        t.insert("cls.predictions.bias".into(), rand(&[v]));
    }
    candle_core::safetensors::save(&t, wd.path(&format!("{dir}/model.safetensors"))).unwrap();
}

/// `sbir embed` with the tiny model, offline.
fn embed(wd: &Workdir, args: &[&str], code: i32) -> std::process::Output {
    embed_with(wd, args, &[], code)
}

/// `sbir embed` with the tiny model, offline, with these environment variables.
fn embed_with(
    wd: &Workdir,
    args: &[&str],
    vars: &[(&str, &str)],
    code: i32,
) -> std::process::Output {
    let mut all = vec!["embed", "--model-dir", "tiny"];
    all.extend_from_slice(args);
    let mut c = wd.offline_cmd(&all);
    c.envs(vars.iter().copied());
    wd.run_expect(c, code)
}

const OUT: &str = "data/processed/embeddings";

/// Checks `value` against the subset of JSON Schema the summary schema uses.
fn validate(schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if let Some(c) = schema.get("const")
        && c != value
    {
        errs.push(format!("{at}: expected {c}, got {value}"));
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(value)
    {
        errs.push(format!("{at}: {value} not in {e:?}"));
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array)
        && !any.iter().any(|s| validate(s, value, at).is_empty())
    {
        errs.push(format!("{at}: matches no alternative"));
    }
    if let Some(ty) = schema.get("type") {
        let types: Vec<&str> = match ty {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_u64() || value.is_i64(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        });
        if !ok {
            errs.push(format!("{at}: expected {types:?}, got {value}"));
        }
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
        && value.as_f64().is_some_and(|v| v < min)
    {
        errs.push(format!("{at}: below {min}"));
    }
    if let (Some(n), Some(s)) = (
        schema.get("minLength").and_then(Value::as_u64),
        value.as_str(),
    ) && (s.chars().count() as u64) < n
    {
        errs.push(format!("{at}: shorter than {n}"));
    }
    if let Some(req) = schema.get("required").and_then(Value::as_array) {
        for k in req.iter().filter_map(Value::as_str) {
            if value.get(k).is_none() {
                errs.push(format!("{at}: missing {k}"));
            }
        }
    }
    if let (Some(props), Some(obj)) = (
        schema.get("properties").and_then(Value::as_object),
        value.as_object(),
    ) {
        for (k, s) in props {
            if let Some(v) = obj.get(k) {
                errs.extend(validate(s, v, &format!("{at}.{k}")));
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            errs.extend(validate(items, v, &format!("{at}[{i}]")));
        }
    }
    errs
}

fn check_summary(summary: &Value) {
    let schema: Value = serde_json::from_str(include_str!(
        "../../config/embed/processing_summary.schema.json"
    ))
    .unwrap();
    let errs = validate(&schema, summary, "$");
    assert!(errs.is_empty(), "summary breaks its schema: {errs:#?}");
}

/// Header fields and rows of a FAISS IndexFlatIP file.
fn faiss(path: &Path) -> (usize, usize, Vec<f32>) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..4], b"IxFI");
    let d = i32::from_le_bytes(b[4..8].try_into().unwrap()) as usize;
    let n = i64::from_le_bytes(b[8..16].try_into().unwrap()) as usize;
    assert_eq!(
        i32::from_le_bytes(b[33..37].try_into().unwrap()),
        0,
        "inner product"
    );
    assert_eq!(
        u64::from_le_bytes(b[37..45].try_into().unwrap()) as usize,
        n * d
    );
    let rows = b[45..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect::<Vec<_>>();
    assert_eq!(rows.len(), n * d);
    (d, n, rows)
}

#[test]
fn jsonl_collection_writes_every_export_and_a_valid_summary() {
    let wd = Workdir::new();
    tiny_bert(&wd, "tiny", Head::None);
    let mut lines = vec![
        r#"{"id": "q1", "text": "Quantum sensing for navigation.", "metadata": {"agency": "DOD"}}"#
            .to_string(),
        r#"{"id": 7, "text": "A solid state lithium battery with high energy storage."}"#.into(),
        r#"{"id": "blank", "text": "   "}"#.into(),
        "not json at all".into(),
        r#"{"text": "no id"}"#.into(),
    ];
    lines.push(String::new());
    let mut bytes = lines.join("\n").into_bytes();
    bytes.extend_from_slice(b"{\"id\": \"bad\", \"text\": \"caf\xe9\"}\n");
    wd.write("docs.jsonl", bytes);
    let out = embed(&wd, &["--input", "docs.jsonl", "--name", "docs"], 0);
    assert!(
        stderr(&out).contains("2 documents → 2 chunks"),
        "{}",
        stderr(&out)
    );

    let dir = format!("{OUT}/docs");
    let summary = wd.json(&format!("{dir}/processing_summary.json"));
    check_summary(&summary);
    assert_eq!(summary["counts"]["documents"], 2);
    assert_eq!(summary["counts"]["empty_documents"], 1);
    assert_eq!(summary["counts"]["rejected"], 3);
    assert_eq!(summary["dense_run"]["dims"], 32);
    assert_eq!(summary["models"]["dense"]["source"], "folder");
    assert_eq!(summary["sparse_run"]["payload"]["kind"], "bm25");
    let run_id = summary["run_id"].as_str().unwrap();
    assert_eq!(summary["dense_run"]["run_id"], run_id);
    assert_eq!(summary["sparse_run"]["payload"]["run_id"], run_id);
    let warnings = summary["warnings"].to_string();
    assert!(warnings.contains("rerank"), "{warnings}");
    assert!(warnings.contains("empty document"), "{warnings}");

    let rejects = wd.ndjson(&format!("{dir}/rejects.ndjson"));
    let lines: Vec<_> = rejects
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [4, 5, 6]);
    assert!(
        rejects[2]["reason"]
            .as_str()
            .unwrap()
            .contains("invalid UTF-8")
    );

    let chunks = wd.ndjson(&format!("{dir}/chunks.jsonl"));
    assert_eq!(chunks[0]["id"], "q1#0");
    assert_eq!(chunks[0]["metadata"]["agency"], "DOD");
    assert_eq!(chunks[1]["doc_id"], "7");
    let (d, n, rows) = faiss(&wd.path(&format!("{dir}/dense.faiss")));
    assert_eq!((d, n), (32, 2));
    for r in rows.chunks(d) {
        let norm: f32 = r.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "rows are L2-normalised: {norm}");
    }
    let npy = std::fs::read(wd.path(&format!("{dir}/dense.npy"))).unwrap();
    assert!(npy.starts_with(b"\x93NUMPY\x01\x00"));
    let header = String::from_utf8_lossy(&npy[10..npy.len() - n * d * 4]).to_string();
    assert!(header.contains("'shape': (2, 32)"), "{header}");
    let ids = wd.parquet(&format!("{dir}/dense.ids.parquet"));
    assert_eq!(ids[0].num_rows(), 2);
    let sparse = wd.ndjson(&format!("{dir}/sparse.jsonl"));
    assert_eq!(sparse[0]["id"], "q1#0");
    let idx = sparse[0]["indices"].as_array().unwrap();
    assert_eq!(idx.len(), sparse[0]["values"].as_array().unwrap().len());
    assert!(idx.windows(2).all(|w| w[0].as_u64() < w[1].as_u64()));

    // A second run over the same input reproduces the vectors and says so.
    embed(&wd, &["--input", "docs.jsonl", "--name", "docs"], 0);
    let again = wd.json(&format!("{dir}/processing_summary.json"));
    let prev = &again["dense_run"]["previous"];
    assert_eq!(prev["identical"], true, "{prev}");
    assert_eq!(prev["common_chunks"], 2);
    assert_eq!(prev["max_cosine_deviation"], 0.0);
    assert_eq!(prev["previous_run_id"], summary["run_id"]);
}

#[test]
fn long_markdown_is_chunked_with_headings_and_exact_offsets() {
    let wd = Workdir::new();
    tiny_bert(&wd, "tiny", Head::None);
    let body = "we will design and test a new laser system for space . ".repeat(12);
    let doc = format!("intro notes\n# Methods\n{body}\n## Results\ncafe data model\n");
    wd.write("notes/a.md", &doc);
    wd.write("notes/sub/b.txt", "quantum sensor chip");
    wd.write("notes/skip.pdf", "not text");
    embed_with(
        &wd,
        &["--input", "notes", "--name", "notes"],
        &[
            ("SBIR_ETL__EMBED__CHUNK_TOKENS", "24"),
            ("SBIR_ETL__EMBED__CHUNK_OVERLAP", "4"),
        ],
        0,
    );
    let chunks = wd.ndjson(&format!("{OUT}/notes/chunks.jsonl"));
    let a: Vec<_> = chunks.iter().filter(|c| c["doc_id"] == "a.md").collect();
    assert!(a.len() > 4, "long sections are split: {}", a.len());
    let chars: Vec<char> = doc.chars().collect();
    for (i, c) in a.iter().enumerate() {
        assert_eq!(c["chunk_index"], i);
        assert!(c["tokens"].as_u64().unwrap() <= 24);
        let (s, e) = (
            c["char_start"].as_u64().unwrap() as usize,
            c["char_end"].as_u64().unwrap() as usize,
        );
        let slice: String = chars[s..e].iter().collect();
        let text = c["text"].as_str().unwrap();
        assert!(
            text.ends_with(&slice),
            "chunk text ends with its slice: {text:?} / {slice:?}"
        );
        // Cut between words, never inside one.
        let inside = |i: usize| chars[i - 1].is_alphanumeric() && chars[i].is_alphanumeric();
        assert!(s == 0 || !inside(s), "starts inside a word: {slice:?}");
        assert!(
            e == chars.len() || !inside(e),
            "ends inside a word: {slice:?}"
        );
    }
    // Later chunks of the Methods section start with its heading; Results is its own chunk.
    let methods: Vec<_> = a
        .iter()
        .filter(|c| c["text"].as_str().unwrap().starts_with("# Methods"))
        .collect();
    assert!(methods.len() > 2, "heading repeated: {}", methods.len());
    assert!(
        a.last().unwrap()["text"]
            .as_str()
            .unwrap()
            .starts_with("## Results")
    );
    // Consecutive chunks of a section overlap.
    let (s1, e0) = (
        a[2]["char_start"].as_u64().unwrap(),
        a[1]["char_end"].as_u64().unwrap(),
    );
    assert!(
        s1 < e0,
        "overlap: next starts at {s1}, previous ends at {e0}"
    );
    assert!(chunks.iter().any(|c| c["doc_id"] == "sub/b.txt"));
    assert!(!chunks.iter().any(|c| c["doc_id"] == "skip.pdf"));
    let summary = wd.json(&format!("{OUT}/notes/processing_summary.json"));
    check_summary(&summary);
    assert_eq!(summary["collection"]["kind"], "folder");
    assert_eq!(summary["chunking"]["truncated_chunks"], 0);
}

#[test]
fn awards_collection_from_settings_and_sparse_switches() {
    let wd = Workdir::new();
    tiny_bert(&wd, "tiny", Head::None);
    wd.run(
        &[
            "sample-data",
            "--awards",
            "30",
            "--recipients",
            "50",
            "--out",
            "s",
        ],
        0,
    );
    wd.run(&["ingest", "--input", "s/sbir_awards.csv"], 0);
    embed_with(
        &wd,
        &["--collections", "awards"],
        &[("EMBEDDER_ENABLE_SPARSE", "false")],
        0,
    );
    let summary = wd.json(&format!("{OUT}/awards/processing_summary.json"));
    check_summary(&summary);
    assert_eq!(summary["collection"]["kind"], "awards");
    assert_eq!(summary["counts"]["documents"], wd.awards().len());
    assert!(summary["sparse_run"]["payload"].is_null());
    assert!(
        summary["warnings"]
            .to_string()
            .contains("sparse stage disabled")
    );
    assert!(!wd.exists(&format!("{OUT}/awards/sparse.jsonl")));
    let chunks = wd.ndjson(&format!("{OUT}/awards/chunks.jsonl"));
    assert!(chunks[0]["metadata"]["agency"].is_string());

    let out = embed(&wd, &["--collections", "nope"], 2);
    assert!(
        stderr(&out).contains("unknown collection \"nope\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn splade_model_gives_sparse_vectors_over_the_vocabulary() {
    let wd = Workdir::new();
    tiny_bert(&wd, "tiny", Head::None);
    tiny_bert(&wd, "splade", Head::Mlm);
    wd.write("d.jsonl", "{\"id\": \"x\", \"text\": \"quantum laser\"}\n");
    embed_with(
        &wd,
        &["--input", "d.jsonl", "--name", "d"],
        &[("SBIR_ETL__EMBED__SPARSE__SPLADE_MODEL", "splade")],
        0,
    );
    let summary = wd.json(&format!("{OUT}/d/processing_summary.json"));
    check_summary(&summary);
    assert_eq!(summary["sparse_run"]["payload"]["kind"], "splade");
    let v = &wd.ndjson(&format!("{OUT}/d/sparse.jsonl"))[0];
    let values: Vec<f64> = v["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(!values.is_empty() && values.iter().all(|&x| x > 0.0));
    assert!(
        v["indices"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| (i.as_u64().unwrap() as usize) < 5 + WORDS.len())
    );
}

#[test]
fn missing_or_foreign_models_are_refused_clearly() {
    let wd = Workdir::new();
    wd.write("d.jsonl", "{\"id\": 1, \"text\": \"x\"}\n");
    let c = wd.no_hub_cmd(&[
        "embed",
        "--input",
        "d.jsonl",
        "--name",
        "d",
        "--model-dir",
        "nowhere",
    ]);
    let err = stderr(&wd.run_expect(c, 2));
    for place in [
        "nowhere",
        "artifacts/models/all-MiniLM-L6-v2",
        "hub",
        "HF_HUB_OFFLINE",
        "scripts/fetch-model.sh",
    ] {
        assert!(err.contains(place), "names {place}: {err}");
    }
    tiny_bert(&wd, "tiny", Head::None);
    let cfg = wd.read("tiny/config.json").replace("\"bert\"", "\"gpt2\"");
    wd.write("tiny/config.json", cfg);
    let err = stderr(&embed(&wd, &["--input", "d.jsonl", "--name", "d"], 2));
    assert!(err.contains("gpt2") && err.contains("only BERT"), "{err}");
    let err = stderr(&embed(&wd, &["--input", "missing.jsonl", "--name", "d"], 2));
    assert!(err.contains("missing.jsonl"), "{err}");
}

/// The real all-MiniLM-L6-v2 on the reference sentences with `args`: the cosine of each
/// sentence's vector to its independent reference vector, and the summary; `None` when the
/// model is not on this machine.
fn minilm_against_reference(args: &[&str]) -> Option<(Vec<f64>, Value)> {
    let reference: Value =
        serde_json::from_str(include_str!("../fixtures/embed/minilm_reference.json")).unwrap();
    let sentences = reference["sentences"].as_array().unwrap();
    let wd = Workdir::new();
    let lines: Vec<String> = sentences
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"id": i, "text": s["text"]}).to_string())
        .collect();
    wd.write("ref.jsonl", lines.join("\n"));
    let mut all = vec!["embed", "--input", "ref.jsonl", "--name", "ref"];
    all.extend_from_slice(args);
    let out = wd.offline_cmd(&all).output().unwrap();
    if real_model_missing(&out) {
        return None;
    }
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (d, n, rows) = faiss(&wd.path(&format!("{OUT}/ref/dense.faiss")));
    assert_eq!((d, n), (384, sentences.len()));
    let cosines = sentences
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let want: Vec<f64> = s["vector"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            let got = &rows[i * d..(i + 1) * d];
            let dot: f64 = got.iter().zip(&want).map(|(a, b)| *a as f64 * b).sum();
            let na: f64 = got.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
            let nb: f64 = want.iter().map(|b| b * b).sum::<f64>().sqrt();
            dot / (na * nb)
        })
        .collect();
    let summary = wd.json(&format!("{OUT}/ref/processing_summary.json"));
    Some((cosines, summary))
}

/// all-MiniLM-L6-v2 through candle against the NumPy float64 reference: cosine ≥ 0.9999 per
/// sentence. Needs the real model (`scripts/fetch-model.sh`; `make test` fetches it and sets
/// SBIR_REQUIRE_MODEL=1, so there the test cannot skip).
#[test]
fn real_minilm_matches_reference_vectors() {
    let Some((cosines, summary)) = minilm_against_reference(&[]) else {
        return;
    };
    for (i, cos) in cosines.iter().enumerate() {
        assert!(*cos >= 0.9999, "sentence {i}: cosine {cos}");
    }
    assert_eq!(summary["dense_run"]["precision"], "fp32");
    assert_eq!(summary["dense_run"]["int8_agreement"], Value::Null);
}

#[test]
fn real_minilm_in_int8_stays_close_and_reports_its_agreement() {
    let Some((cosines, summary)) = minilm_against_reference(&["--precision", "int8"]) else {
        return;
    };
    check_summary(&summary);
    for (i, cos) in cosines.iter().enumerate() {
        assert!(*cos >= 0.99, "sentence {i}: int8 cosine {cos}");
    }
    let run = &summary["dense_run"];
    assert_eq!(run["precision"], "int8");
    let g = &run["int8_agreement"];
    assert_eq!(g["chunks"].as_u64(), Some(cosines.len() as u64), "{g}");
    let (min, mean) = (
        g["min_cosine"].as_f64().unwrap(),
        g["mean_cosine"].as_f64().unwrap(),
    );
    // What the run reports is what an independent check finds.
    let worst = cosines.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(
        (min - worst).abs() < 1e-3,
        "reported {min}, measured {worst}"
    );
    assert!(min >= 0.99 && mean >= min, "{g}");
}

#[test]
fn queries_are_fused_and_reranked_and_search_shows_every_score() {
    let wd = Workdir::new();
    tiny_bert(&wd, "tiny", Head::None);
    tiny_bert(&wd, "ce", Head::Classifier);
    let docs = [
        "quantum sensing for navigation",
        "solid state lithium battery with high energy storage",
        "laser system for space",
        "machine learning for cyber network data",
        "hypersonic thermal protection system test",
    ];
    let lines: Vec<String> = docs
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": format!("d{i}"), "text": t}).to_string())
        .collect();
    wd.write("d.jsonl", lines.join("\n"));
    wd.write(
        "q.jsonl",
        "{\"query_id\": \"bat\", \"text\": \"lithium battery\"}\n{\"query_id\": 2, \"text\": \"hypersonic test\"}\n",
    );
    embed_with(
        &wd,
        &[
            "--input",
            "d.jsonl",
            "--name",
            "d",
            "--queries",
            "q.jsonl",
            "--rerank-model-dir",
            "ce",
        ],
        &[("SBIR_ETL__EMBED__RERANK__TOP_N", "3")],
        0,
    );
    let summary = wd.json(&format!("{OUT}/d/processing_summary.json"));
    check_summary(&summary);
    let payload = &summary["rerank_run"]["payload"];
    assert_eq!(payload["queries"], 2);
    assert_eq!(payload["pairs_scored"], 6);
    assert_eq!(payload["run_id"], summary["run_id"]);
    assert_eq!(summary["models"]["rerank"]["source"], "folder");
    assert!(!summary["warnings"].to_string().contains("rerank"));

    let lines = wd.ndjson(&format!("{OUT}/d/rerank.jsonl"));
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["query_id"], "2");
    for l in &lines {
        assert_eq!(l["run_id"], summary["run_id"]);
        let before = l["before"].as_array().unwrap();
        let after = l["after"].as_array().unwrap();
        assert_eq!((before.len(), after.len()), (3, 3));
        let ranks: Vec<u64> = before
            .iter()
            .map(|c| c["fused_rank"].as_u64().unwrap())
            .collect();
        assert_eq!(ranks, [1, 2, 3]);
        let scores: Vec<f64> = after
            .iter()
            .map(|c| c["rerank_score"].as_f64().unwrap())
            .collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        let mut a: Vec<_> = before.iter().map(|c| c["id"].clone()).collect::<Vec<_>>();
        let mut b: Vec<_> = after.iter().map(|c| c["id"].clone()).collect::<Vec<_>>();
        a.sort_by_key(|v| v.to_string());
        b.sort_by_key(|v| v.to_string());
        assert_eq!(a, b, "reranking reorders the same candidates");
    }
    // The document sharing the query's words is a candidate with a sparse score.
    let bat = lines[0]["before"].as_array().unwrap();
    let d1 = bat
        .iter()
        .find(|c| c["doc_id"] == "d1")
        .expect("d1 is a candidate");
    assert!(d1["sparse_score"].as_f64().unwrap() > 0.0);

    // Search: dense, sparse, fused and rerank columns for one query.
    let c = wd.offline_cmd(&[
        "embed",
        "--rerank-model-dir",
        "ce",
        "--model-dir",
        "tiny",
        "search",
        "--collection",
        "d",
        "lithium battery",
        "--top-k",
        "5",
        "--json",
    ]);
    let out = wd.run_expect(c, 0);
    let rows: Vec<Value> = crate::workdir::stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 5, "every document is a candidate");
    for r in &rows {
        for k in ["dense_score", "fused_score", "rerank_score", "text"] {
            assert!(!r[k].is_null(), "{k} in {r}");
        }
    }
    assert!(
        rows.iter()
            .any(|r| r["doc_id"] == "d1" && r["sparse_score"].as_f64().unwrap() > 0.0)
    );

    // Reranking off: the stage is skipped and says so; a bad queries file is refused.
    embed_with(
        &wd,
        &[
            "--input",
            "d.jsonl",
            "--name",
            "d",
            "--queries",
            "q.jsonl",
            "--disable-rerank",
        ],
        &[],
        0,
    );
    let summary = wd.json(&format!("{OUT}/d/processing_summary.json"));
    assert!(summary["rerank_run"]["payload"].is_null());
    assert!(
        summary["rerank_run"]["skipped"]
            .as_str()
            .unwrap()
            .contains("reranking is off")
    );
    wd.write(
        "bad.jsonl",
        "{\"query_id\": 1, \"text\": \"x\"}\n{\"text\": 5}\n",
    );
    let err = stderr(&embed(
        &wd,
        &[
            "--input",
            "d.jsonl",
            "--name",
            "d",
            "--queries",
            "bad.jsonl",
            "--rerank-model-dir",
            "ce",
        ],
        2,
    ));
    assert!(err.contains("bad.jsonl") && err.contains("line 2"), "{err}");
    let err = stderr(&embed(&wd, &["search", "--collection", "none", "x"], 2));
    assert!(err.contains("not an embedded collection"), "{err}");
}

/// `sbir prepare-assets` with the tiny model as the encoder, offline, no Hugging Face cache.
fn prepare(wd: &Workdir, args: &[&str], code: i32) -> std::process::Output {
    let mut all = vec!["prepare-assets"];
    all.extend_from_slice(args);
    let c = wd.no_hub_cmd(&all);
    wd.run_expect(c, code)
}

#[test]
fn prepare_assets_bundles_the_model_and_cet_centroids_incrementally() {
    let wd = Workdir::new();
    tiny_bert(&wd, "tiny", Head::None);
    prepare(&wd, &["--model-dir", "tiny"], 0);
    let meta = wd.json("artifacts/deployment_metadata.json");
    assert_eq!(meta["steps"]["model"], "copied");
    assert_eq!(meta["steps"]["cet_embeddings"], "built");
    assert_eq!(meta["taxonomy_version"], "NSTC-2024.02");
    let files = meta["files"].as_object().unwrap();
    for f in [
        "models/all-MiniLM-L6-v2/model.safetensors",
        "models/all-MiniLM-L6-v2/tokenizer.json",
        "embeddings/cet_areas.npy",
        "embeddings/cet_areas.metadata.json",
        "VERSION",
    ] {
        let entry = &files[f];
        let bytes = std::fs::read(wd.path(&format!("artifacts/{f}"))).unwrap();
        assert_eq!(entry["size"], bytes.len(), "{f}");
        assert_eq!(entry["sha256"].as_str().unwrap().len(), 64);
    }
    let total: u64 = files.values().map(|f| f["size"].as_u64().unwrap()).sum();
    assert_eq!(meta["total_bytes"], total);

    let npy = std::fs::read(wd.path("artifacts/embeddings/cet_areas.npy")).unwrap();
    let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    let header = String::from_utf8_lossy(&npy[10..10 + header_len]).to_string();
    assert!(header.contains("'shape': (21, 32)"), "{header}");
    let rows: Vec<f32> = npy[10 + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(rows.len(), 21 * 32);
    for r in rows.chunks(32) {
        let n: f32 = r.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-4, "centroids are L2-normalised: {n}");
    }
    let cmeta = wd.json("artifacts/embeddings/cet_areas.metadata.json");
    assert_eq!(cmeta["cet_ids"].as_array().unwrap().len(), 21);
    assert_eq!(cmeta["cet_ids"][0], "advanced_computing");
    let numpy_ok = std::process::Command::new("python3")
        .args(["-c", "import numpy"])
        .status()
        .is_ok_and(|s| s.success());
    if numpy_ok {
        let check = std::process::Command::new("python3")
            .args([
                "-c",
                "import numpy, sys; a = numpy.load(sys.argv[1]); assert a.shape == (21, 32) and a.dtype == numpy.float32, a.shape",
            ])
            .arg(wd.path("artifacts/embeddings/cet_areas.npy"))
            .status()
            .unwrap();
        assert!(check.success(), "numpy.load reads the centroids");
    }

    // A rerun with the same inputs rebuilds nothing.
    let npy_time = std::fs::metadata(wd.path("artifacts/embeddings/cet_areas.npy"))
        .unwrap()
        .modified()
        .unwrap();
    prepare(&wd, &["--model-dir", "tiny"], 0);
    let again = wd.json("artifacts/deployment_metadata.json");
    assert_eq!(again["steps"]["model"], "unchanged");
    assert_eq!(again["steps"]["cet_embeddings"], "unchanged");
    let npy_time2 = std::fs::metadata(wd.path("artifacts/embeddings/cet_areas.npy"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(npy_time, npy_time2);
    prepare(&wd, &["--verify"], 0);

    // `embed` finds the model in the bundle when nothing else is given.
    wd.write("d.jsonl", "{\"id\": 1, \"text\": \"quantum laser\"}\n");
    let c = wd.no_hub_cmd(&["embed", "--input", "d.jsonl", "--name", "d"]);
    wd.run_expect(c, 0);
    let summary = wd.json(&format!("{OUT}/d/processing_summary.json"));
    assert_eq!(summary["models"]["dense"]["source"], "bundle");
}

#[test]
fn corrupted_or_stale_bundles_are_refused() {
    let wd = Workdir::new();
    tiny_bert(&wd, "tiny", Head::None);
    prepare(&wd, &["--model-dir", "tiny"], 0);
    let flip = |rel: &str| {
        let path = wd.path(rel);
        let mut b = std::fs::read(&path).unwrap();
        let i = b.len() - 5;
        b[i] ^= 0x40;
        std::fs::write(&path, b).unwrap();
    };

    // Stale: the taxonomy changed since the bundle was built.
    let taxonomy = include_str!("../../config/cet/taxonomy.yaml");
    wd.write(
        "tax.yaml",
        taxonomy.replacen("NSTC-2024.02", "NSTC-2099.01", 1),
    );
    let mut c = wd.offline_cmd(&["prepare-assets", "--verify"]);
    c.env("SBIR_ETL__CET__TAXONOMY", "tax.yaml");
    let err = stderr(&wd.run_expect(c, 3));
    assert!(
        err.contains("stale") && err.contains("NSTC-2099.01"),
        "{err}"
    );

    // A flipped byte in the centroids fails verification, naming the file.
    flip("artifacts/embeddings/cet_areas.npy");
    let err = stderr(&prepare(&wd, &["--verify"], 3));
    assert!(
        err.contains("cet_areas.npy") && err.contains("corrupted"),
        "{err}"
    );

    // A flipped byte in the bundled weights: embed refuses the bundle, naming the file.
    flip("artifacts/models/all-MiniLM-L6-v2/model.safetensors");
    wd.write("d.jsonl", "{\"id\": 1, \"text\": \"x\"}\n");
    let c = wd.no_hub_cmd(&["embed", "--input", "d.jsonl", "--name", "d"]);
    let err = stderr(&wd.run_expect(c, 2));
    assert!(
        err.contains("model.safetensors") && err.contains("prepare-assets"),
        "{err}"
    );

    // Rebuilding from the source folder repairs it.
    prepare(&wd, &["--model-dir", "tiny"], 0);
    prepare(&wd, &["--verify"], 0);
}

/// Runs classify-cet offline with only the bundle to find the encoder in.
fn classify_offline(wd: &Workdir, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut all = vec!["classify-cet"];
    all.extend_from_slice(args);
    let mut c = wd.no_hub_cmd(&all);
    c.envs(env.iter().copied());
    wd.run_expect(c, 0)
}

#[test]
fn award_embeddings_are_bundled_reused_and_stale_centroids_are_not_used() {
    let wd = Workdir::new();
    tiny_bert(&wd, "tiny", Head::None);
    wd.run(
        &[
            "sample-data",
            "--awards",
            "40",
            "--recipients",
            "50",
            "--out",
            "s",
        ],
        0,
    );
    wd.run(&["ingest", "--input", "s/sbir_awards.csv"], 0);
    let n = wd.awards().len();
    prepare(&wd, &["--model-dir", "tiny", "--with-award-embeddings"], 0);
    let meta = wd.json("artifacts/deployment_metadata.json");
    assert_eq!(meta["steps"]["award_embeddings"], "built");
    for f in ["awards.npy", "awards.ids.tsv", "awards.metadata.json"] {
        assert!(meta["files"][format!("embeddings/{f}")].is_object(), "{f}");
    }
    let npy = std::fs::read(wd.path("artifacts/embeddings/awards.npy")).unwrap();
    let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    let header = String::from_utf8_lossy(&npy[10..10 + header_len]).to_string();
    assert!(header.contains(&format!("'shape': ({n}, 32)")), "{header}");
    let ids = wd.read("artifacts/embeddings/awards.ids.tsv");
    assert_eq!(ids.lines().count(), n);
    let awards = wd.awards();
    assert!(
        ids.starts_with(&format!("{}\t", awards[0].award_id)),
        "row order is file order"
    );
    // The rules put generated awards in the High band: areas with enough of them average
    // those awards into their centroid, and the metadata says so.
    let cmeta = wd.json("artifacts/embeddings/cet_areas.metadata.json");
    let from = cmeta["built_from"].to_string();
    assert!(from.contains("high-band awards"), "{from}");

    // Nothing changed: nothing is re-encoded or rebuilt.
    prepare(&wd, &["--model-dir", "tiny", "--with-award-embeddings"], 0);
    let meta = wd.json("artifacts/deployment_metadata.json");
    assert_eq!(meta["steps"]["award_embeddings"], "unchanged");
    assert_eq!(meta["steps"]["cet_embeddings"], "unchanged");

    // The embedding scorer takes the encoder, centroids and every award vector from the bundle.
    classify_offline(&wd, &["--scorer", "embedding"], &[]);
    let checks = wd.json("data/processed/cet_award_classifications.checks.json");
    let e = &checks["details"]["embedding"];
    assert_eq!(checks["details"]["scorer"], "embedding");
    assert_eq!(e["model_source"], "bundle");
    assert_eq!(e["centroids"]["source"], "bundle");
    assert_eq!(e["award_vectors_reused"], n);
    assert_eq!(e["award_vectors_encoded"], 0);
    let out = classify_offline(&wd, &["--scorer", "hybrid", "--text", "laser weapons"], &[]);
    let c: Value = serde_json::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(c["scorer"], "hybrid");
    assert!(stderr(&out).contains("centroids from artifacts/embeddings/cet_areas.npy"));

    // Another taxonomy: the bundle's centroids are stale, reported and not used.
    let taxonomy = include_str!("../../config/cet/taxonomy.yaml");
    wd.write(
        "tax.yaml",
        taxonomy.replacen("NSTC-2024.02", "NSTC-2099.01", 1),
    );
    let stale = [("SBIR_ETL__CET__TAXONOMY", "tax.yaml")];
    let out = classify_offline(
        &wd,
        &["--scorer", "embedding", "--text", "laser weapons"],
        &stale,
    );
    let err = stderr(&out);
    assert!(
        err.contains("stale bundle") && err.contains("NSTC-2099.01") && err.contains("built now"),
        "{err}"
    );
    classify_offline(&wd, &["--scorer", "embedding"], &stale);
    let checks = wd.json("data/processed/cet_award_classifications.checks.json");
    let c = &checks["details"]["embedding"]["centroids"];
    assert_eq!(c["source"], "built");
    assert!(c["reason"].as_str().unwrap().contains("stale"), "{c}");

    // A flipped byte in the award vectors: they are not used (re-encoded instead).
    let path = wd.path("artifacts/embeddings/awards.npy");
    let mut b = std::fs::read(&path).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0x40;
    std::fs::write(&path, b).unwrap();
    let out = classify_offline(&wd, &["--scorer", "embedding"], &[]);
    assert!(stderr(&out).contains("awards.npy"), "{}", stderr(&out));
    let checks = wd.json("data/processed/cet_award_classifications.checks.json");
    assert_eq!(checks["details"]["embedding"]["award_vectors_encoded"], n);
}

/// A folder without a bundle (a fresh clone) has nothing to verify, and says what to run.
#[test]
fn verify_without_a_bundle_says_how_to_build_one() {
    let wd = Workdir::new();
    let err = stderr(&wd.run(&["prepare-assets", "--verify"], 3));
    assert!(
        err.contains("no bundle in artifacts") && err.contains("`sbir prepare-assets` builds one"),
        "{err}"
    );
}
