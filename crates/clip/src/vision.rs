//! The CLIP vision transformer, with all tokens projected (the ReID use), a bilinearly resized
//! positional grid for non-square inputs and an optional camera embedding (SIE).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, Initializer, LayerNorm, Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};

use crate::config::ClipVisionConfig;
use crate::error::ClipError;
use crate::layers::{layer_norm, ClipEncoder};
use crate::precision::linear_in;

/// Patch, class-token and position embeddings (`vision_model.embeddings.*`).
#[derive(Module, Debug)]
pub struct VisionEmbeddings<B: Backend> {
    /// Learned class token `[width]`.
    pub class_embedding: Param<Tensor<B, 1>>,
    /// Patch projection: a strided convolution without bias.
    pub patch_embedding: Conv2d<B>,
    /// Positional embedding of the native grid plus the class token `[1 + g*g, width]`.
    pub position_embedding: Embedding<B>,
}

/// CLIP ViT image encoder (`vision_model` plus `visual_projection` in Hugging Face names).
#[derive(Module, Debug)]
pub struct ClipVision<B: Backend> {
    /// Token embeddings.
    pub embeddings: VisionEmbeddings<B>,
    /// Layer norm before the transformer (Hugging Face spells it `pre_layrnorm`).
    pub pre_layrnorm: LayerNorm<B>,
    /// The transformer layers.
    pub encoder: ClipEncoder<B>,
    /// Final layer norm, applied to every token.
    pub post_layernorm: LayerNorm<B>,
    /// Projection into the joint embedding space (no bias), applied to every token.
    pub visual_projection: Linear<B>,
    /// SIE camera embedding `[num_cameras, width]`, added to the class token; `None` when off.
    pub camera_embedding: Option<Param<Tensor<B, 2>>>,
    /// Factor applied to the camera embedding.
    pub camera_coef: f32,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// Patches per side of the native positional grid.
    pub native_grid: usize,
}

/// Output of [`ClipVision::forward`].
#[derive(Debug, Clone)]
pub struct VisionOutput<B: Backend> {
    /// `[B, 1 + N, P]`: post-LN and projection on every token; index 0 is the class token.
    pub tokens: Tensor<B, 3>,
    /// `[B, P]`: the projected class token (Hugging Face `image_embeds`).
    pub pooled: Tensor<B, 2>,
}

impl<B: Backend> ClipVision<B> {
    /// Randomly initialised vision tower; `num_cameras = 0` disables the camera embedding.
    pub fn new(
        config: &ClipVisionConfig,
        projection_dim: usize,
        num_cameras: usize,
        camera_coef: f32,
        device: &B::Device,
    ) -> Self {
        let width = config.hidden_size;
        let grid = config.native_grid();
        let patch = config.patch_size;
        let scale = (width as f64).powf(-0.5);
        let embeddings = VisionEmbeddings {
            class_embedding: Initializer::Normal {
                mean: 0.0,
                std: scale,
            }
            .init([width], device),
            patch_embedding: Conv2dConfig::new([config.num_channels, width], [patch, patch])
                .with_stride([patch, patch])
                .with_bias(false)
                .init(device),
            position_embedding: EmbeddingConfig::new(1 + grid * grid, width)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(device),
        };
        let camera_embedding = (num_cameras > 0).then(|| {
            // Truncated normal, std 0.02, cut at +-2 (timm's bounds; practically untruncated).
            let values = Tensor::<B, 2>::random(
                [num_cameras, width],
                Distribution::Normal(0.0, 0.02),
                device,
            )
            .clamp(-2.0, 2.0);
            Param::from_tensor(values)
        });
        Self {
            embeddings,
            pre_layrnorm: layer_norm(width, config.layer_norm_eps, device),
            encoder: ClipEncoder::new(
                config.num_hidden_layers,
                width,
                config.num_attention_heads,
                config.intermediate_size,
                config.layer_norm_eps,
                device,
            ),
            post_layernorm: layer_norm(width, config.layer_norm_eps, device),
            visual_projection: LinearConfig::new(width, projection_dim)
                .with_bias(false)
                .init(device),
            camera_embedding,
            camera_coef,
            patch_size: patch,
            native_grid: grid,
        }
    }

    /// Width of the projected tokens (the projection dimension).
    pub fn output_dim(&self) -> usize {
        self.visual_projection.weight.dims()[1]
    }

    /// Transformer width.
    pub fn width(&self) -> usize {
        self.embeddings.class_embedding.dims()[0]
    }

    /// Number of cameras of the SIE embedding (0 when off).
    pub fn num_cameras(&self) -> usize {
        self.camera_embedding.as_ref().map_or(0, |p| p.dims()[0])
    }

    /// The patch grid `(rows, cols)` for an input of `height x width` pixels, or an error when a
    /// side is not a positive multiple of the patch size.
    pub fn grid_for(&self, height: usize, width: usize) -> Result<(usize, usize), ClipError> {
        let p = self.patch_size;
        if height == 0 || width == 0 || !height.is_multiple_of(p) || !width.is_multiple_of(p) {
            return Err(ClipError::InvalidInput(format!(
                "image {height}x{width} is not a positive multiple of the {p}-pixel patch"
            )));
        }
        Ok((height / p, width / p))
    }

    /// Encode `pixels` `[B, C, H, W]` (normalised with CLIP's mean/std; H and W multiples of the
    /// patch). `camera_ids` `[B]` select SIE rows (ignored when the embedding is off).
    ///
    /// # Panics
    /// When H or W is not a multiple of the patch size (check with [`ClipVision::grid_for`]) or a
    /// camera id is out of range.
    pub fn forward(
        &self,
        pixels: Tensor<B, 4>,
        camera_ids: Option<Tensor<B, 1, Int>>,
    ) -> VisionOutput<B> {
        let [_, _, height, width_px] = pixels.dims();
        let (rows, cols) = match self.grid_for(height, width_px) {
            Ok(grid) => grid,
            Err(e) => panic!("ClipVision::forward: {e}"),
        };
        let patches = self.embeddings.patch_embedding.forward(pixels);
        let patches: Tensor<B, 3> = patches.flatten(2, 3).swap_dims(1, 2);
        let x = self.embed_patches(patches, rows, cols, camera_ids);
        self.encode_embedded(x)
    }

    /// The transformer input for patch tokens `[B, N, width]` (the output of a patch embedding,
    /// flattened row-major over a `rows x cols` grid): the class token (plus the SIE camera
    /// embedding of `camera_ids`) prepended and the positional embeddings added: `[B, 1 + N, width]`.
    pub fn embed_patches(
        &self,
        patches: Tensor<B, 3>,
        rows: usize,
        cols: usize,
        camera_ids: Option<Tensor<B, 1, Int>>,
    ) -> Tensor<B, 3> {
        let batch = patches.dims()[0];
        let width = self.width();
        let mut cls = self
            .embeddings
            .class_embedding
            .val()
            .reshape([1, 1, width])
            .expand([batch, 1, width]);
        if let (Some(table), Some(ids)) = (&self.camera_embedding, camera_ids) {
            let cameras = table.val().select(0, ids) * self.camera_coef;
            cls = cls + cameras.reshape([batch, 1, width]);
        }
        let tokens = Tensor::cat(vec![cls, patches], 1);
        let positions = self.positions_for(rows, cols);
        tokens + positions.unsqueeze_dim::<3>(0)
    }

    /// Run the transformer, the final layer norm and the projection on embedded tokens
    /// `[B, 1 + N, width]` (from [`ClipVision::embed_patches`]).
    pub fn encode_embedded(&self, x: Tensor<B, 3>) -> VisionOutput<B> {
        let batch = x.dims()[0];
        let x = self.pre_layrnorm.forward(x);
        let x = self.encoder.forward(x, None);
        let x = self.post_layernorm.forward(x);
        let tokens = linear_in(&self.visual_projection, x, None);
        let projection = tokens.dims()[2];
        let pooled = tokens
            .clone()
            .slice([0..batch, 0..1, 0..projection])
            .reshape([batch, projection]);
        VisionOutput { tokens, pooled }
    }

    /// Positional embeddings `[1 + rows*cols, width]` for a `rows x cols` grid: the native grid
    /// resized bilinearly (align_corners = false), the class position unchanged.
    pub fn positions_for(&self, rows: usize, cols: usize) -> Tensor<B, 2> {
        let table = self.embeddings.position_embedding.weight.val();
        let [count, width] = table.dims();
        let g = self.native_grid;
        if rows == g && cols == g {
            return table;
        }
        let cls = table.clone().slice([0..1, 0..width]);
        let grid = table.slice([1..count, 0..width]);
        let weights = bilinear_matrix(g, g, rows, cols);
        let device = grid.device();
        let resize =
            Tensor::<B, 2>::from_data(TensorData::new(weights, [rows * cols, g * g]), &device);
        Tensor::cat(vec![cls, resize.matmul(grid)], 0)
    }
}

/// Per-output source indices and weights of PyTorch's bilinear resize (align_corners = false,
/// no antialias) along one axis.
fn axis_weights(input: usize, output: usize) -> Vec<(usize, usize, f32, f32)> {
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|dst| {
            let src = (scale * (dst as f32 + 0.5) - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(input - 1);
            let i1 = if i0 < input - 1 { i0 + 1 } else { i0 };
            let w1 = src - i0 as f32;
            (i0, i1, 1.0 - w1, w1)
        })
        .collect()
}

/// Row-major `[out_h*out_w, in_h*in_w]` matrix that bilinearly resizes a flattened grid.
fn bilinear_matrix(in_h: usize, in_w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    let ys = axis_weights(in_h, out_h);
    let xs = axis_weights(in_w, out_w);
    let mut m = vec![0.0f32; out_h * out_w * in_h * in_w];
    for (oy, &(y0, y1, wy0, wy1)) in ys.iter().enumerate() {
        for (ox, &(x0, x1, wx0, wx1)) in xs.iter().enumerate() {
            let row = &mut m[(oy * out_w + ox) * in_h * in_w..][..in_h * in_w];
            row[y0 * in_w + x0] += wy0 * wx0;
            row[y0 * in_w + x1] += wy0 * wx1;
            row[y1 * in_w + x0] += wy1 * wx0;
            row[y1 * in_w + x1] += wy1 * wx1;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_rows_sum_to_one_and_identity_when_same_size() {
        let m = bilinear_matrix(14, 14, 16, 8);
        for row in m.chunks(196) {
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() < 1e-6, "row sums to {sum}");
        }
        let id = bilinear_matrix(3, 3, 3, 3);
        for (i, row) in id.chunks(9).enumerate() {
            for (j, v) in row.iter().enumerate() {
                assert_eq!(*v, if i == j { 1.0 } else { 0.0 });
            }
        }
    }

    #[test]
    fn axis_weights_match_pytorch_half_pixel_rule() {
        // 2 -> 4: sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (i1 clamped to the last index).
        let w = axis_weights(2, 4);
        assert_eq!(w[0], (0, 1, 1.0, 0.0));
        assert_eq!(w[1], (0, 1, 0.75, 0.25));
        assert_eq!(w[2], (0, 1, 0.25, 0.75));
        assert_eq!((w[3].0, w[3].1), (1, 1));
    }
}
