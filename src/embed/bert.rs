//! BERT encoder on candle, written for CPU throughput: query, key and value are one fused
//! matmul, every linear layer runs as one 2-D matmul over all tokens of a batch, and the
//! attention mask is an additive bias built once per batch; on x86 CPUs with AVX the layers'
//! f32 weights are packed once for our kernels (`packed.rs`), and the products can run as
//! dynamic int8 (`int8.rs`). Loads Hugging Face safetensors
//! with or without the `bert.` prefix, plus the heads the pipeline uses: the pooler and
//! classifier of a cross-encoder and the masked-LM head of a SPLADE model.

use std::path::Path;
use std::sync::Arc;

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, D, DType, Device, Layout, Module, Shape, Tensor,
};
use candle_nn::{Embedding, VarBuilder};
use serde::Deserialize;

use super::EmbedError;
use super::attention::Attention;
use super::cpu::{RowProduct, f32_values};
use super::int8::Int8Matrix;
use super::norm::Norm;
use super::packed::PackedMatrix;
use super::simd::Isa;
use crate::config::Precision;

/// The parts of a Hugging Face `config.json` a BERT encoder needs.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    #[serde(default)]
    pub model_type: Option<String>,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    #[serde(default)]
    pub num_labels: Option<usize>,
    #[serde(default)]
    pub id2label: Option<serde_json::Map<String, serde_json::Value>>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

impl BertConfig {
    /// Reads `config.json`, refusing models that are not BERT-shaped encoders.
    pub fn read(path: &Path) -> Result<Self, EmbedError> {
        let text = std::fs::read_to_string(path).map_err(|e| EmbedError::model(path, e))?;
        let cfg: Self = serde_json::from_str(&text).map_err(|e| EmbedError::model(path, e))?;
        match cfg.model_type.as_deref() {
            Some("bert") | None => {}
            Some(other) => {
                return Err(EmbedError::model(
                    path,
                    format!("model_type {other:?} is not supported: only BERT encoders are"),
                ));
            }
        }
        if !matches!(cfg.hidden_act.as_str(), "gelu" | "gelu_new" | "relu") {
            return Err(EmbedError::model(
                path,
                format!("hidden_act {:?} is not supported", cfg.hidden_act),
            ));
        }
        if cfg.position_embedding_type.as_deref().unwrap_or("absolute") != "absolute" {
            return Err(EmbedError::model(
                path,
                "only absolute position embeddings are supported",
            ));
        }
        if cfg.num_attention_heads == 0 || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads)
        {
            return Err(EmbedError::model(
                path,
                "hidden_size must be a multiple of num_attention_heads",
            ));
        }
        Ok(cfg)
    }

    /// Output labels of a classification head (`num_labels`, else `id2label`, else 1).
    pub fn labels(&self) -> usize {
        self.num_labels
            .or_else(|| self.id2label.as_ref().map(|m| m.len()))
            .unwrap_or(1)
    }
}

/// A linear layer applied to the last dimension as one 2-D product, whatever the leading dims:
/// an f32 matmul (weight pre-transposed), f32 products over weights packed for the AVX kernels,
/// or dynamic int8 products; then its [`Epilogue`].
#[derive(Debug, Clone)]
enum Linear {
    F32 {
        weight_t: Tensor,
        epilogue: Arc<Epilogue>,
    },
    Packed(Arc<CpuLinear<PackedMatrix>>),
    Int8(Arc<CpuLinear<Int8Matrix>>),
}

/// What follows a linear product: the bias and, when fused, the exact GELU; on the CPU one pass
/// over each block of output rows as the product writes it (candle's broadcast add and a
/// separate GELU were two passes over the whole output and two allocations).
#[derive(Debug)]
struct Epilogue {
    bias: Tensor,
    values: Vec<f32>,
    gelu: bool,
}

impl Epilogue {
    /// `x` times `weight_t` `[in, out]`, then this epilogue: on a CPU without our AVX kernels
    /// an [`F32Product`], on GPUs candle's matmul, bias and GELU.
    fn product(&self, x: &Tensor, weight_t: &Tensor) -> candle_core::Result<Tensor> {
        if x.device().is_cpu() {
            return x
                .contiguous()?
                .apply_op2_no_bwd(weight_t, &F32Product(self));
        }
        let y = x.matmul(weight_t)?.broadcast_add(&self.bias)?;
        if self.gelu { y.gelu_erf() } else { Ok(y) }
    }

    /// The exact GELU, when fused, for rows written elsewhere (the packed and int8 products).
    fn then(&self) -> Option<fn(&mut [f32])> {
        self.gelu.then_some(gelu_erf_slice as fn(&mut [f32]))
    }
}

/// Input rows per block of an f32 product. Rayon hands blocks to whichever thread is free, so
/// a core the host preempts delays only its own block (gemm's threading splits the work evenly
/// up front and waits for the slowest share), and each block's epilogue runs while the block
/// is in cache.
const BLOCK_ROWS: usize = 128;

/// An f32 linear product on a CPU without our AVX kernels (packed weights): `x` `[rows, in]`
/// times `weight_t` `[in, out]` by gemm, block of rows by block of rows, each followed by the
/// epilogue.
struct F32Product<'a>(&'a Epilogue);

impl CustomOp2 for F32Product<'_> {
    fn name(&self) -> &'static str {
        "linear-f32"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        w: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        use rayon::prelude::*;
        let (x, w) = (
            f32_values(x, xl, "linear-f32")?,
            f32_values(w, wl, "linear-f32")?,
        );
        let (rows, inp) = xl.shape().dims2()?;
        let (w_in, out) = wl.shape().dims2()?;
        let e = self.0;
        if w_in != inp || out != e.values.len() || inp == 0 || out == 0 {
            candle_core::bail!("linear-f32: x {:?}, weight {:?}", xl.shape(), wl.shape());
        }
        let mut y = vec![0f32; rows * out];
        y.par_chunks_mut(BLOCK_ROWS * out)
            .zip(x.par_chunks(BLOCK_ROWS * inp))
            .for_each(|(y, x)| {
                let m = y.len() / out;
                // SAFETY: row-major y (m × out), x (m × inp) and w (inp × out), each slice
                // exactly that long; gemm reads x and w and writes y (read_dst false).
                unsafe {
                    gemm::gemm(
                        m,
                        out,
                        inp,
                        y.as_mut_ptr(),
                        1,
                        out as isize,
                        false,
                        x.as_ptr(),
                        1,
                        inp as isize,
                        w.as_ptr(),
                        1,
                        out as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
                bias_rows(y, &e.values, e.gelu);
            });
        Ok((CpuStorage::F32(y), Shape::from((rows, out))))
    }
}

super::simd::wide! {
    /// Each row of `rows` plus `bias`, then the exact GELU when `gelu`.
    fn bias_rows<M>(rows: &mut [f32], bias: &[f32], gelu: bool) {
        for row in rows.chunks_exact_mut(bias.len()) {
            for (y, &b) in row.iter_mut().zip(bias) {
                *y += b;
            }
            if gelu {
                row.iter_mut().for_each(|y| *y = gelu_erf::<M>(*y));
            }
        }
    }
}

/// A linear layer whose weights a CPU kernel holds (packed f32 or int8), run as a candle CPU op
/// that writes its output rows with the epilogue applied.
#[derive(Debug)]
struct CpuLinear<W> {
    weight: W,
    epilogue: Arc<Epilogue>,
}

impl<W: RowProduct> CustomOp1 for CpuLinear<W> {
    fn name(&self) -> &'static str {
        "cpu-linear"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_values(s, l, "cpu-linear")?;
        let (_, inp) = l.shape().dims2()?;
        if inp != self.weight.inp() {
            candle_core::bail!(
                "cpu-linear: x {:?} for {} inputs",
                l.shape(),
                self.weight.inp()
            );
        }
        let e = &self.epilogue;
        let y = self.weight.matmul(x, &e.values, e.then());
        let rows = y.len() / self.weight.out();
        Ok((CpuStorage::F32(y), Shape::from((rows, self.weight.out()))))
    }
}

impl Linear {
    /// `weight` `[out, in]`, `bias` `[out]`; with `gelu`, the exact GELU follows the product. On
    /// a CPU with the AVX kernels the weight is packed for them once, here.
    fn new(weight: Tensor, bias: Tensor, gelu: bool) -> candle_core::Result<Self> {
        let epilogue = Arc::new(Epilogue {
            values: bias.to_vec1()?,
            bias,
            gelu,
        });
        let (out, inp) = weight.dims2()?;
        if weight.device().is_cpu() && weight.dtype() == DType::F32 && PackedMatrix::packs(out) {
            let w = weight.flatten_all()?.to_vec1::<f32>()?;
            if let Some(weight) = PackedMatrix::new(&w, out, inp) {
                return Ok(Self::Packed(Arc::new(CpuLinear { weight, epilogue })));
            }
        }
        Ok(Self::F32 {
            weight_t: weight.t()?.contiguous()?,
            epilogue,
        })
    }

    fn load(vb: VarBuilder, inp: usize, out: usize, gelu: bool) -> candle_core::Result<Self> {
        Self::new(vb.get((out, inp), "weight")?, vb.get(out, "bias")?, gelu)
    }

    /// The same layer with its weight quantized per output channel (CPU only).
    fn to_int8(&self) -> candle_core::Result<Self> {
        let (w, out, inp, epilogue) = match self {
            Self::F32 { weight_t, epilogue } => {
                if !weight_t.device().is_cpu() {
                    candle_core::bail!("int8 products run on the CPU only");
                }
                let (inp, out) = weight_t.dims2()?;
                let w = weight_t.t()?.contiguous()?.flatten_all()?.to_vec1()?;
                (w, out, inp, epilogue)
            }
            Self::Packed(p) => (
                p.weight.weight(),
                p.weight.out(),
                p.weight.inp(),
                &p.epilogue,
            ),
            Self::Int8(_) => return Ok(self.clone()),
        };
        Ok(Self::Int8(Arc::new(CpuLinear {
            weight: Int8Matrix::new(&w, out, inp),
            epilogue: epilogue.clone(),
        })))
    }

    fn epilogue(&self) -> &Epilogue {
        match self {
            Self::F32 { epilogue, .. } => epilogue,
            Self::Packed(p) => &p.epilogue,
            Self::Int8(q) => &q.epilogue,
        }
    }

    fn out(&self) -> candle_core::Result<usize> {
        match self {
            Self::F32 { weight_t, .. } => weight_t.dim(1),
            Self::Packed(p) => Ok(p.weight.out()),
            Self::Int8(q) => Ok(q.weight.out()),
        }
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dims = x.dims();
        let inp = dims[dims.len() - 1];
        let rows = x.elem_count() / inp;
        let x = x.reshape((rows, inp))?;
        let y = match self {
            Self::F32 { weight_t, epilogue } => epilogue.product(&x, weight_t)?,
            Self::Packed(p) => x.contiguous()?.apply_op1_no_bwd(p.as_ref())?,
            Self::Int8(q) => x.contiguous()?.apply_op1_no_bwd(q.as_ref())?,
        };
        let mut out = dims.to_vec();
        *out.last_mut().expect("non-empty dims") = self.out()?;
        y.reshape(out)
    }
}

#[derive(Debug, Clone, Copy)]
enum Act {
    Gelu,
    GeluTanh,
    Relu,
}

impl Act {
    /// Whether linear layers take this activation into their epilogue.
    fn fused(self) -> bool {
        matches!(self, Self::Gelu)
    }

    /// `linear(x)`, then this activation (unless the linear layer applied it).
    fn after(self, linear: &Linear, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = linear.forward(x)?;
        match self {
            Self::Gelu if linear.epilogue().gelu => Ok(y),
            Self::Gelu => y.gelu_erf(),
            Self::GeluTanh => y.gelu(),
            Self::Relu => y.relu(),
        }
    }
}

/// erf for f32 as a rational function of x² on [-4, 4] (outside it erf is ±1 in f32): the
/// approximation Eigen and XLA use, branch-free so it vectorises, within 1e-6 of libm's erff.
#[inline(always)]
fn erf_f32<M: Isa>(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = M::mul_add(x2, -2.726_142_3e-10, 2.770_681_4e-8);
    for a in [
        -2.101_024e-6,
        -5.692_506_4e-5,
        -7.349_906_3e-4,
        -2.954_6e-3,
        -1.609_603_3e-2,
    ] {
        p = M::mul_add(x2, p, a);
    }
    let mut q = M::mul_add(x2, -1.456_607_2e-5, -2.133_740_6e-4);
    for b in [-1.682_827e-3, -7.373_329e-3, -1.426_474e-2] {
        q = M::mul_add(x2, q, b);
    }
    x * p / q
}

/// Exact (erf) GELU of one value.
#[inline(always)]
fn gelu_erf<M: Isa>(y: f32) -> f32 {
    0.5 * y * (1.0 + erf_f32::<M>(y * std::f32::consts::FRAC_1_SQRT_2))
}

super::simd::wide! {
    /// Exact (erf) GELU in place.
    fn gelu_erf_slice<M>(v: &mut [f32]) {
        for y in v {
            *y = gelu_erf::<M>(*y);
        }
    }
}

fn act(name: &str) -> Act {
    match name {
        "gelu_new" => Act::GeluTanh,
        "relu" => Act::Relu,
        _ => Act::Gelu,
    }
}

#[derive(Debug, Clone)]
struct Layer {
    qkv: Linear,
    attn_out: Linear,
    attn_norm: Norm,
    inter: Linear,
    out: Linear,
    out_norm: Norm,
}

impl Layer {
    /// Loads layer `vb` of `c`, the intermediate product ending in `act` when it is fused.
    fn load(vb: VarBuilder, c: &BertConfig, act: Act) -> candle_core::Result<Self> {
        let h = c.hidden_size;
        let att = vb.pp("attention");
        let s = att.pp("self");
        let (q, k, v) = (s.pp("query"), s.pp("key"), s.pp("value"));
        let weight = Tensor::cat(
            &[
                q.get((h, h), "weight")?,
                k.get((h, h), "weight")?,
                v.get((h, h), "weight")?,
            ],
            0,
        )?;
        let bias = Tensor::cat(
            &[q.get(h, "bias")?, k.get(h, "bias")?, v.get(h, "bias")?],
            0,
        )?;
        Ok(Self {
            qkv: Linear::new(weight, bias, false)?,
            attn_out: Linear::load(att.pp("output").pp("dense"), h, h, false)?,
            attn_norm: Norm::load(att.pp("output").pp("LayerNorm"), h, c.layer_norm_eps)?,
            inter: Linear::load(
                vb.pp("intermediate").pp("dense"),
                h,
                c.intermediate_size,
                act.fused(),
            )?,
            out: Linear::load(vb.pp("output").pp("dense"), c.intermediate_size, h, false)?,
            out_norm: Norm::load(vb.pp("output").pp("LayerNorm"), h, c.layer_norm_eps)?,
        })
    }

    /// The layer with its four linear products in int8.
    fn to_int8(&self) -> candle_core::Result<Self> {
        Ok(Self {
            qkv: self.qkv.to_int8()?,
            attn_out: self.attn_out.to_int8()?,
            inter: self.inter.to_int8()?,
            out: self.out.to_int8()?,
            ..self.clone()
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        bias: &Tensor,
        attn: &Attention,
        act: Act,
    ) -> candle_core::Result<Tensor> {
        let qkv = self.qkv.forward(x)?;
        let dh = x.dim(2)? / attn.heads;
        let ctx = if x.device().is_cpu() && Attention::supports(dh) {
            qkv.apply_op2_no_bwd(bias, attn)?
        } else {
            attention(&qkv, bias, attn.heads)?
        };
        let x = self
            .attn_norm
            .forward_sum(&self.attn_out.forward(&ctx)?, x)?;
        let inner = act.after(&self.inter, &x)?;
        self.out_norm.forward_sum(&self.out.forward(&inner)?, &x)
    }
}

/// Attention with candle's tensor operations (a GPU, or heads the CPU op does not take): per
/// head `softmax(q·kᵀ/√d + bias)·v` over `qkv` `[b, t, 3·h]`; the context `[b, t, h]`.
fn attention(qkv: &Tensor, bias: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (b, t, h3) = qkv.dims3()?;
    let (h, dh) = (h3 / 3, h3 / 3 / heads);
    let qkv = qkv
        .reshape((b, t, 3, heads, dh))?
        .permute((2, 0, 3, 1, 4))?;
    let q = (qkv.get(0)?.contiguous()? * (1.0 / (dh as f64).sqrt()))?;
    let k = qkv.get(1)?.t()?.contiguous()?;
    let v = qkv.get(2)?.contiguous()?;
    let probs = candle_nn::ops::softmax_last_dim(&q.matmul(&k)?.broadcast_add(bias)?)?;
    probs
        .matmul(&v)?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((b, t, h))
}

/// A BERT encoder: token ids in, hidden states out.
#[derive(Debug, Clone)]
pub struct Bert {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    emb_norm: Norm,
    layers: Vec<Layer>,
    attention: Attention,
    act: Act,
    pub config: BertConfig,
    pub device: Device,
}

/// Where the encoder weights live: under `bert.` in task checkpoints, at the root in bare ones.
fn encoder_root<'a>(vb: &VarBuilder<'a>) -> VarBuilder<'a> {
    if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
        vb.pp("bert")
    } else {
        vb.clone()
    }
}

impl Bert {
    fn load(vb: VarBuilder, config: &BertConfig) -> candle_core::Result<Self> {
        let c = config;
        let emb = vb.pp("embeddings");
        let act = act(&c.hidden_act);
        let layers = (0..c.num_hidden_layers)
            .map(|i| Layer::load(vb.pp("encoder").pp("layer").pp(i), c, act))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            word: candle_nn::embedding(c.vocab_size, c.hidden_size, emb.pp("word_embeddings"))?,
            position: candle_nn::embedding(
                c.max_position_embeddings,
                c.hidden_size,
                emb.pp("position_embeddings"),
            )?,
            token_type: candle_nn::embedding(
                c.type_vocab_size,
                c.hidden_size,
                emb.pp("token_type_embeddings"),
            )?,
            emb_norm: Norm::load(emb.pp("LayerNorm"), c.hidden_size, c.layer_norm_eps)?,
            layers,
            attention: Attention::new(c.num_attention_heads, false),
            act,
            config: c.clone(),
            device: vb.device().clone(),
        })
    }

    /// Hidden states `[batch, tokens, hidden]` for `ids`, `type_ids` and `mask` (`[batch,
    /// tokens]`, u32; mask 1 for real tokens, 0 for padding).
    pub fn forward(
        &self,
        ids: &Tensor,
        type_ids: &Tensor,
        mask: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let (_, t) = ids.dims2()?;
        let positions = Tensor::arange(0u32, t as u32, &self.device)?;
        let x = self
            .word
            .forward(ids)?
            .broadcast_add(&self.position.forward(&positions)?)?
            .add(&self.token_type.forward(type_ids)?)?;
        let mut x = self.emb_norm.forward(&x)?;
        // Additive attention bias: 0 for tokens, a large negative number for padding.
        let bias = ((mask.to_dtype(DType::F32)? - 1.0)? * 1e4)?
            .unsqueeze(1)?
            .unsqueeze(1)?;
        for layer in &self.layers {
            x = layer.forward(&x, &bias, &self.attention, self.act)?;
        }
        Ok(x)
    }
}

/// Weights of a model folder, memory-mapped.
pub fn var_builder(weights: &Path, device: &Device) -> Result<VarBuilder<'static>, EmbedError> {
    // SAFETY: the file is mapped read-only and not modified while the model is alive; this is
    // how candle loads safetensors without copying them.
    unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, device) }
        .map_err(|e| EmbedError::model(weights, e))
}

/// Loads the encoder (with or without the `bert.` prefix), its layers' linear products in
/// `precision` (embeddings and norms stay f32; in int8, attention's products are bf16 where the
/// CPU has AVX-512 BF16).
pub fn load_encoder(
    vb: VarBuilder,
    config: &BertConfig,
    precision: Precision,
) -> candle_core::Result<Bert> {
    let mut bert = Bert::load(encoder_root(&vb), config)?;
    if precision == Precision::Int8 {
        bert.layers = bert
            .layers
            .iter()
            .map(Layer::to_int8)
            .collect::<candle_core::Result<_>>()?;
        bert.attention = Attention::new(bert.attention.heads, true);
    }
    Ok(bert)
}

/// A cross-encoder: BERT, then `classifier(tanh(pooler(h[CLS])))`, one score per pair.
#[derive(Debug, Clone)]
pub struct CrossEncoder {
    pub bert: Bert,
    pooler: Linear,
    classifier: Linear,
}

impl CrossEncoder {
    /// Loads a `BertForSequenceClassification` checkpoint.
    pub fn load(vb: VarBuilder, config: &BertConfig) -> candle_core::Result<Self> {
        let h = config.hidden_size;
        let base = encoder_root(&vb);
        Ok(Self {
            bert: Bert::load(base.clone(), config)?,
            pooler: Linear::load(base.pp("pooler").pp("dense"), h, h, false)?,
            classifier: Linear::load(vb.pp("classifier"), h, config.labels(), false)?,
        })
    }

    /// Relevance logits `[batch]` (the first label when the head has several).
    pub fn forward(
        &self,
        ids: &Tensor,
        type_ids: &Tensor,
        mask: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let h = self.bert.forward(ids, type_ids, mask)?;
        let cls = h.narrow(1, 0, 1)?.squeeze(1)?;
        let pooled = self.pooler.forward(&cls)?.tanh()?;
        self.classifier
            .forward(&pooled)?
            .narrow(1, 0, 1)?
            .squeeze(1)
    }
}

/// A SPLADE encoder: BERT plus the masked-LM head; vectors are
/// `max over tokens of log(1 + relu(logits)) * mask`.
#[derive(Debug, Clone)]
pub struct Splade {
    pub bert: Bert,
    transform: Linear,
    transform_norm: Norm,
    decoder: Linear,
}

impl Splade {
    /// Loads a `BertForMaskedLM` checkpoint; a decoder tied to the word embeddings is
    /// taken from them.
    pub fn load(vb: VarBuilder, config: &BertConfig) -> candle_core::Result<Self> {
        let (h, v) = (config.hidden_size, config.vocab_size);
        let base = encoder_root(&vb);
        let bert = Bert::load(base.clone(), config)?;
        let fused = bert.act.fused();
        let head = vb.pp("cls").pp("predictions");
        let weight = if head.contains_tensor("decoder.weight") {
            head.get((v, h), "decoder.weight")?
        } else {
            base.get((v, h), "embeddings.word_embeddings.weight")?
        };
        let bias = if head.contains_tensor("bias") {
            head.get(v, "bias")?
        } else {
            head.get(v, "decoder.bias")?
        };
        Ok(Self {
            bert,
            transform: Linear::load(head.pp("transform").pp("dense"), h, h, fused)?,
            transform_norm: Norm::load(
                head.pp("transform").pp("LayerNorm"),
                h,
                config.layer_norm_eps,
            )?,
            decoder: Linear::new(weight, bias, false)?,
        })
    }

    /// Term weights `[batch, vocab]`.
    pub fn forward(
        &self,
        ids: &Tensor,
        type_ids: &Tensor,
        mask: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let h = self.bert.forward(ids, type_ids, mask)?;
        let h = self.bert.act.after(&self.transform, &h)?;
        let logits = self.decoder.forward(&self.transform_norm.forward(&h)?)?;
        let m = mask.to_dtype(DType::F32)?.unsqueeze(D::Minus1)?;
        (logits.relu()? + 1.0)?.log()?.broadcast_mul(&m)?.max(1)
    }
}

#[cfg(test)]
mod tests {
    use crate::embed::simd::{Fused, Isa, Separate};

    /// The largest |error| of `erf_f32::<M>` over [−6, 6].
    fn worst<M: Isa>() -> f64 {
        (-60_000..=60_000)
            .map(|i| {
                let x = i as f32 / 10_000.0;
                (super::erf_f32::<M>(x) as f64 - libm_erf(x as f64)).abs()
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn fast_erf_matches_libm() {
        for worst in [worst::<Separate>(), worst::<Fused<8>>()] {
            assert!(worst < 1e-6, "max |erf error| {worst}");
        }
    }

    /// Both CPU forms of an f32 layer, the blocked gemm product and the packed weights (on
    /// CPUs with our AVX kernels), with bias and GELU against candle's matmul, broadcast add
    /// and GELU, over a row count that is not a multiple of the block.
    #[test]
    fn cpu_products_match_candle() {
        use candle_core::{Device, Tensor};
        let (rows, inp, out) = (2 * super::BLOCK_ROWS + 37, 24, 48);
        let values = |n: usize, seed: u64| -> Vec<f32> {
            let mut r = crate::rng::Rng::new(seed);
            (0..n).map(|_| (r.unit() * 2.0 - 1.0) as f32).collect()
        };
        let dev = Device::Cpu;
        let x = Tensor::from_vec(values(rows * inp, 1), (rows, inp), &dev).unwrap();
        let w = Tensor::from_vec(values(inp * out, 2), (inp, out), &dev).unwrap();
        let b = Tensor::from_vec(values(out, 3), out, &dev).unwrap();
        for gelu in [false, true] {
            let e = super::Epilogue {
                values: b.to_vec1().unwrap(),
                bias: b.clone(),
                gelu,
            };
            let mut want = x.matmul(&w).unwrap().broadcast_add(&b).unwrap();
            if gelu {
                want = want.gelu_erf().unwrap();
            }
            let layer = super::Linear::new(w.t().unwrap(), b.clone(), gelu).unwrap();
            let packed = super::PackedMatrix::packs(out);
            assert_eq!(matches!(layer, super::Linear::Packed(_)), packed);
            // Rows of another width are an error, not a panic.
            let wider = Tensor::zeros((3, inp + 1), candle_core::DType::F32, &dev).unwrap();
            assert!(layer.forward(&wider).is_err());
            for got in [e.product(&x, &w).unwrap(), layer.forward(&x).unwrap()] {
                let worst = (got - &want)
                    .unwrap()
                    .abs()
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .max(0)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(worst < 1e-5, "gelu {gelu}: {worst}");
            }
        }
    }

    /// erf in f64 by its Taylor series (|x| ≤ 3) or continued fraction (beyond).
    fn libm_erf(x: f64) -> f64 {
        let a = x.abs();
        let v = if a <= 3.0 {
            let (mut term, mut sum, mut n) = (a, a, 0.0);
            while term.abs() > 1e-17 {
                n += 1.0;
                term *= -a * a / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let mut f = 0.0;
            for k in (1..60).rev() {
                f = k as f64 / 2.0 / (a + f);
            }
            1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / (a + f)
        };
        v.copysign(x)
    }
}
