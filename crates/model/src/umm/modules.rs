//! The three learned UMM parts: the token mapper (images to CLIP tokens, per-modality
//! embedding), the token synthesiser (absent modalities from present ones) and the cross-modal
//! cue interactive learner (self-attention over the full R/N/T token set).

use super::config::{Tokenizer, UmmConfig};
use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::TensorData;
use next_aggregation::CrossAttentionBlock;
use next_clip::layers::ClipEncoder;
use next_clip::ClipVision;

/// Additive attention score of a blocked key (exp underflows to exactly 0 in f32).
const BLOCKED: f32 = -1.0e9;

/// All UMM modules of a model.
#[derive(Module, Debug)]
pub struct UmmModules<B: Backend> {
    /// Images to tokens.
    pub token_mapper: TokenMapper<B>,
    /// Absent modalities' tokens from the present ones.
    pub synthesizer: TokenSynthesizer<B>,
    /// Self-attention over the tokens of all modalities.
    pub cue: CueLearner<B>,
}

impl UmmConfig {
    /// Build the modules for `vision` (its patch embedding is copied for `per_modality`) and
    /// token width `dim`. Draws random numbers only when enabled, so UMM off leaves NEXT's
    /// initialisation untouched.
    pub fn init<B: Backend>(
        &self,
        vision: &ClipVision<B>,
        dim: usize,
        device: &B::Device,
    ) -> Option<UmmModules<B>> {
        if !self.enabled {
            return None;
        }
        let width = vision.width();
        let small = |shape: Vec<usize>| {
            Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            }
            .init::<B, 2, _>([shape[0], shape[1]], device)
        };
        let mapper = TokenMapper {
            modality_embedding: (self.tokenizer == Tokenizer::SharedEmbed)
                .then(|| small(vec![3, width])),
            patch_embeddings: match self.tokenizer {
                Tokenizer::SharedEmbed => Vec::new(),
                Tokenizer::PerModality => (0..3)
                    .map(|_| {
                        let shared = &vision.embeddings.patch_embedding;
                        let mut own = shared.clone();
                        own.weight = Param::from_tensor(shared.weight.val().detach());
                        own
                    })
                    .collect(),
            },
            sketch_embedding: None,
        };
        let synthesizer = TokenSynthesizer {
            queries: Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            }
            .init([3, 2, dim], device),
            position_projection: LinearConfig::new(width, dim).init(device),
            source_embedding: small(vec![3, dim]),
            layers: (0..self.synth.layers)
                .map(|_| {
                    CrossAttentionBlock::new(
                        dim,
                        self.synth.heads,
                        self.synth.ffn_ratio,
                        0.0,
                        device,
                    )
                })
                .collect(),
        };
        let mut encoder = ClipEncoder::new(
            self.cue.layers,
            dim,
            self.cue.heads,
            self.cue.mlp_ratio * dim,
            1e-5,
            device,
        );
        if self.cue.identity_init {
            for layer in &mut encoder.layers {
                zero_linear(&mut layer.self_attn.out_proj);
                zero_linear(&mut layer.mlp.fc2);
            }
        }
        let cue = CueLearner {
            modality_embedding: small(vec![3, dim]),
            synthesized_flag: small(vec![1, dim]),
            encoder,
        };
        Some(UmmModules {
            token_mapper: mapper,
            synthesizer,
            cue,
        })
    }
}

/// Multimodal token mapper: each image becomes CLIP tokens through the shared ViT, with either a
/// learned modality embedding added to every token or a patch embedding of its own.
#[derive(Module, Debug)]
pub struct TokenMapper<B: Backend> {
    /// Modality embeddings `[3, width]` (RGB, NIR, TIR) added to every token (`shared_embed`).
    pub modality_embedding: Option<Param<Tensor<B, 2>>>,
    /// Patch embeddings of RGB, NIR, TIR (`per_modality`; empty otherwise).
    pub patch_embeddings: Vec<Conv2d<B>>,
    /// The sketch's modality embedding `[1, width]` (`query.sketch`), used in place of RGB's on
    /// the tokens of a sketch in the RGB slot (added to them with `per_modality`).
    pub sketch_embedding: Option<Param<Tensor<B, 2>>>,
}

impl<B: Backend> TokenMapper<B> {
    /// Tokens `[B, 3, 1 + N, D]` of the images (each `[B, C, H, W]`, C = 1 replicated to 3 or
    /// C = 3) where `encode[b][m]`, zeros elsewhere; the transformer runs once on the selected
    /// images only. `camera_ids` `[B]` are already validated. Where `sketch[b]`, the RGB slot of
    /// sample b holds a sketch and gets the sketch embedding (RGB's without one).
    pub fn encode(
        &self,
        vision: &ClipVision<B>,
        images: &[Tensor<B, 4>; 3],
        camera_ids: Option<&Tensor<B, 1, Int>>,
        grid: (usize, usize),
        encode: &[[bool; 3]],
        sketch: &[bool],
    ) -> Tensor<B, 4> {
        let batch = encode.len();
        let device = images[0].device();
        let (tokens_n, dim) = (1 + grid.0 * grid.1, vision.output_dim());
        let mut patches = Vec::new();
        let mut cameras = Vec::new();
        let mut modality_of_row = Vec::new();
        let mut sketch_row = Vec::new();
        let mut slot = vec![-1i64; batch * 3];
        for (m, image) in images.iter().enumerate() {
            let rows: Vec<i64> = (0..batch)
                .filter(|&b| encode[b][m])
                .map(|b| b as i64)
                .collect();
            if rows.is_empty() {
                continue;
            }
            for &b in &rows {
                slot[b as usize * 3 + m] = modality_of_row.len() as i64;
                modality_of_row.push(m as i64);
                sketch_row.push(m == 0 && sketch.get(b as usize).copied().unwrap_or(false));
            }
            let index = int_tensor::<B>(rows, &device);
            let mut pixels = image.clone().select(0, index.clone());
            if pixels.dims()[1] == 1 {
                pixels = pixels.repeat_dim(1, 3);
            }
            let conv = self
                .patch_embeddings
                .get(m)
                .unwrap_or(&vision.embeddings.patch_embedding);
            patches.push(conv.forward(pixels).flatten::<3>(2, 3).swap_dims(1, 2));
            if let Some(ids) = camera_ids {
                cameras.push(ids.clone().select(0, index));
            }
        }
        let encoded = modality_of_row.len();
        let cameras = (!cameras.is_empty()).then(|| Tensor::cat(cameras, 0));
        let mut x = vision.embed_patches(Tensor::cat(patches, 0), grid.0, grid.1, cameras);
        let any_sketch = sketch_row.iter().any(|&s| s);
        match (&self.modality_embedding, &self.sketch_embedding) {
            (Some(table), Some(own)) if any_sketch => {
                // Row 3 of the extended table is the sketch's embedding.
                let table = Tensor::cat(vec![table.val(), own.val()], 0);
                let index = modality_of_row
                    .iter()
                    .zip(&sketch_row)
                    .map(|(&m, &s)| if s { 3 } else { m })
                    .collect();
                x = x + table
                    .select(0, int_tensor::<B>(index, &device))
                    .unsqueeze_dim::<3>(1);
            }
            (Some(table), _) => {
                let rows = table
                    .val()
                    .select(0, int_tensor::<B>(modality_of_row, &device));
                x = x + rows.unsqueeze_dim::<3>(1);
            }
            (None, Some(own)) if any_sketch => {
                let flags: Vec<f32> = sketch_row.iter().map(|&s| f32::from(u8::from(s))).collect();
                let flags = Tensor::<B, 1>::from_data(TensorData::new(flags, [encoded]), &device)
                    .reshape([encoded, 1, 1]);
                x = x + flags * own.val().unsqueeze_dim::<3>(0);
            }
            (None, _) => {}
        }
        let tokens = vision.encode_embedded(x).tokens; // [encoded, T, D]
        let table = Tensor::cat(vec![tokens, Tensor::zeros([1, tokens_n, dim], &device)], 0);
        let slot: Vec<i64> = slot
            .into_iter()
            .map(|s| if s < 0 { encoded as i64 } else { s })
            .collect();
        table
            .select(0, int_tensor::<B>(slot, &device))
            .reshape([batch, 3, tokens_n, dim])
    }
}

/// Token synthesiser: per target modality, learned queries (class token + one per patch
/// position, the position taken from the CLIP positional embedding) cross-attend to the tokens of
/// the other, present modalities. Each query starts from the mean of those modalities' tokens at
/// its position (a skip path: the layers learn the correction from the sources to the target).
#[derive(Module, Debug)]
pub struct TokenSynthesizer<B: Backend> {
    /// Query offsets `[3, 2, D]`: per target modality, one for the class token, one for patches.
    pub queries: Param<Tensor<B, 3>>,
    /// Maps the CLIP positional embeddings `[1 + N, width]` to query positions `[1 + N, D]`.
    pub position_projection: Linear<B>,
    /// Source modality embeddings `[3, D]` added to the key tokens.
    pub source_embedding: Param<Tensor<B, 2>>,
    /// Pre-LN cross-attention layers (queries attend to the source tokens).
    pub layers: Vec<CrossAttentionBlock<B>>,
}

impl<B: Backend> TokenSynthesizer<B> {
    /// Synthesise every modality `[B, 3, T, D]` from `tokens` `[B, 3, T, D]`: target m of sample b
    /// attends only to modalities k != m with `present[b][k]` (so a present modality's synthesis
    /// never sees its own tokens). `positions` `[T, width]` are the CLIP positional embeddings.
    pub fn forward(
        &self,
        tokens: Tensor<B, 4>,
        positions: Tensor<B, 2>,
        present: &[[bool; 3]],
    ) -> Tensor<B, 4> {
        let [batch, _, t, dim] = tokens.dims();
        let device = tokens.device();
        let base = mean_of_sources(tokens.clone(), present);
        let keys = tokens + self.source_embedding.val().reshape([1, 3, 1, dim]);
        let keys = keys.reshape([batch, 3 * t, dim]);
        let position = self.position_projection.forward(positions); // [T, D]
        let offsets = self.queries.val(); // [3, 2, D]
        let class = offsets.clone().slice_dim(1, 0..1); // [3, 1, D]
        let patch = offsets.slice_dim(1, 1..2).expand([3, t - 1, dim]);
        let queries = Tensor::cat(vec![class, patch], 1) + position.unsqueeze_dim::<3>(0);
        let queries = queries.reshape([1, 3 * t, dim]) + base;
        let blocked: Vec<bool> = source_table(present).map(|usable| !usable).collect();
        let blocked =
            Tensor::<B, 5, Bool>::from_data(TensorData::new(blocked, [batch, 3, 1, 3, 1]), &device)
                .expand([batch, 3, t, 3, t])
                .reshape([batch, 3 * t, 3 * t]);
        let mut x = queries;
        for layer in &self.layers {
            x = layer.forward_masked(x, keys.clone(), Some(blocked.clone()));
        }
        x.reshape([batch, 3, t, dim])
    }
}

/// Cross-modal cue interactive learner: pre-LN self-attention over the tokens of all three
/// modalities (real or synthesised), each marked with its modality embedding and, when
/// synthesised, the synthesised flag.
#[derive(Module, Debug)]
pub struct CueLearner<B: Backend> {
    /// Modality embeddings `[3, D]`.
    pub modality_embedding: Param<Tensor<B, 2>>,
    /// The "synthesised" flag embedding `[1, D]`.
    pub synthesized_flag: Param<Tensor<B, 2>>,
    /// The transformer layers.
    pub encoder: ClipEncoder<B>,
}

impl<B: Backend> CueLearner<B> {
    /// Run over `tokens` `[B, 3, T, D]`; `synthesized` `[B, 3]` is 1 for synthesised modalities;
    /// with `key_mask` `[B, 3]` (1 = usable) no token attends to a modality marked 0.
    pub fn forward(
        &self,
        tokens: Tensor<B, 4>,
        synthesized: Tensor<B, 2>,
        key_mask: Option<Tensor<B, 2>>,
    ) -> Tensor<B, 4> {
        let [batch, _, t, dim] = tokens.dims();
        let flag = synthesized.reshape([batch, 3, 1, 1])
            * self.synthesized_flag.val().reshape([1, 1, 1, dim]);
        let x = tokens + self.modality_embedding.val().reshape([1, 3, 1, dim]) + flag;
        let x = x.reshape([batch, 3 * t, dim]);
        let mask = key_mask.map(|usable| {
            let blocked = (usable.neg() + 1.0) * BLOCKED; // [B, 3]
            blocked
                .reshape([batch, 1, 1, 3, 1])
                .expand([batch, 1, 3 * t, 3, t])
                .reshape([batch, 1, 3 * t, 3 * t])
        });
        self.encoder.forward(x, mask).reshape([batch, 3, t, dim])
    }
}

/// Per sample, target m and source k (in that order), whether target m may read source k:
/// k is present and not m itself; when m is the only present modality it reads itself (its
/// synthesis is never used then, but the attention stays finite).
fn source_table(present: &[[bool; 3]]) -> impl Iterator<Item = bool> + '_ {
    present.iter().flat_map(|p| {
        let count = (0..3).filter(|&k| p[k]).count();
        (0..3).flat_map(move |m| {
            (0..3).map(move |k| (p[k] && k != m) || (count == 1 && p[m] && k == m))
        })
    })
}

/// The starting point of each target's queries: per sample and target m, the mean `[B, 3T, D]`
/// of the tokens of the sources m may read (position by position).
fn mean_of_sources<B: Backend>(tokens: Tensor<B, 4>, present: &[[bool; 3]]) -> Tensor<B, 3> {
    let [batch, _, t, dim] = tokens.dims();
    let usable: Vec<bool> = source_table(present).collect();
    let weights: Vec<f32> = usable
        .chunks(3)
        .flat_map(|row| {
            let n = row.iter().filter(|&&u| u).count().max(1) as f32;
            row.iter().map(move |&u| if u { 1.0 / n } else { 0.0 })
        })
        .collect();
    let weights =
        Tensor::<B, 3>::from_data(TensorData::new(weights, [batch, 3, 3]), &tokens.device());
    weights
        .matmul(tokens.reshape([batch, 3, t * dim]))
        .reshape([batch, 3 * t, dim])
}

/// Set a linear layer's weight and bias to zero (new trainable parameters).
fn zero_linear<B: Backend>(linear: &mut Linear<B>) {
    linear.weight = Param::from_tensor(linear.weight.val().zeros_like());
    if let Some(bias) = &linear.bias {
        linear.bias = Some(Param::from_tensor(bias.val().zeros_like()));
    }
}

fn int_tensor<B: Backend>(values: Vec<i64>, device: &B::Device) -> Tensor<B, 1, Int> {
    let len = values.len();
    Tensor::from_data(TensorData::new(values, [len]), device)
}
