//! Parameter groups: the CLIP visual encoder, the rest of the model, and biases of each, with their
//! own learning rates. Burn's optimisers take one learning rate per step, so the gradients are
//! split by parameter id and the (per-parameter-state) Adam optimiser is stepped once per group.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;

/// The learning-rate group of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ParamGroup {
    /// Weights of the CLIP visual encoder.
    ClipWeight,
    /// Biases of the CLIP visual encoder.
    ClipBias,
    /// Weights of the experts, aggregation and head.
    HeadWeight,
    /// Biases of the experts, aggregation and head.
    HeadBias,
}

impl ParamGroup {
    /// All groups in a fixed order (the order of optimiser steps).
    pub const ALL: [ParamGroup; 4] = [
        ParamGroup::ClipWeight,
        ParamGroup::ClipBias,
        ParamGroup::HeadWeight,
        ParamGroup::HeadBias,
    ];

    /// Classify a parameter by its module path (e.g. `["vision", "layers", "0", "fc1", "bias"]`).
    pub fn of_path(path: &[String]) -> Self {
        let clip = path.first().is_some_and(|p| p == "vision");
        let bias = path.last().is_some_and(|p| p == "bias" || p == "beta");
        match (clip, bias) {
            (true, false) => ParamGroup::ClipWeight,
            (true, true) => ParamGroup::ClipBias,
            (false, false) => ParamGroup::HeadWeight,
            (false, true) => ParamGroup::HeadBias,
        }
    }

    /// Learning rate of this group given the two base rates and the bias factor.
    pub fn lr(self, clip_lr: f64, base_lr: f64, bias_factor: f64) -> f64 {
        match self {
            ParamGroup::ClipWeight => clip_lr,
            ParamGroup::ClipBias => clip_lr * bias_factor,
            ParamGroup::HeadWeight => base_lr,
            ParamGroup::HeadBias => base_lr * bias_factor,
        }
    }
}

/// Parameter ids (with their paths) of every float parameter of a module, in visit order.
pub fn collect_params<B: Backend, M: Module<B>>(module: &M) -> Vec<(ParamId, Vec<String>)> {
    struct Collector {
        path: Vec<String>,
        found: Vec<(ParamId, Vec<String>)>,
    }
    impl<B: Backend> ModuleVisitor<B> for Collector {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.found.push((param.id, self.path.clone()));
        }
    }
    let mut collector = Collector {
        path: Vec::new(),
        found: Vec::new(),
    };
    module.visit(&mut collector);
    collector.found
}

/// A 64-bit FNV-1a digest of every float parameter's values in visit order (ids excluded), as
/// hex: equal digests mean equal weights, whatever the parameter ids.
pub fn weights_digest<B: Backend, M: Module<B>>(module: &M) -> String {
    struct Digest {
        hash: u64,
    }
    impl<B: Backend> ModuleVisitor<B> for Digest {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let data = param.val().into_data().convert::<f32>();
            for v in data.iter::<f32>() {
                for b in v.to_bits().to_le_bytes() {
                    self.hash ^= b as u64;
                    self.hash = self.hash.wrapping_mul(0x100000001b3);
                }
            }
        }
    }
    let mut digest = Digest {
        hash: 0xcbf29ce484222325,
    };
    module.visit(&mut digest);
    format!("{:016x}", digest.hash)
}

/// The parameter ids of each group.
#[derive(Debug, Clone, Default)]
pub struct GroupIds {
    /// `(group, ids)` for every non-empty group, in [`ParamGroup::ALL`] order.
    pub groups: Vec<(ParamGroup, Vec<ParamId>)>,
}

impl GroupIds {
    /// Classify every float parameter of `module`.
    pub fn of_module<B: Backend, M: Module<B>>(module: &M) -> Self {
        let params = collect_params::<B, M>(module);
        let groups = ParamGroup::ALL
            .iter()
            .map(|&g| {
                let ids: Vec<ParamId> = params
                    .iter()
                    .filter(|(_, p)| ParamGroup::of_path(p) == g)
                    .map(|(id, _)| *id)
                    .collect();
                (g, ids)
            })
            .filter(|(_, ids)| !ids.is_empty())
            .collect();
        Self { groups }
    }

    /// Number of parameter tensors in `group`.
    pub fn count(&self, group: ParamGroup) -> usize {
        self.groups
            .iter()
            .find(|(g, _)| *g == group)
            .map_or(0, |(_, ids)| ids.len())
    }

    /// Split the backward gradients into one [`GradientsParams`] per group.
    pub fn split<B: AutodiffBackend, M: burn::module::AutodiffModule<B>>(
        &self,
        grads: &mut B::Gradients,
        module: &M,
    ) -> Vec<(ParamGroup, GradientsParams)> {
        self.groups
            .iter()
            .map(|(g, ids)| (*g, GradientsParams::from_params(grads, module, ids)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn paths_map_to_groups_and_rates() {
        assert_eq!(
            ParamGroup::of_path(&path(&["vision", "layers", "0", "fc1", "weight"])),
            ParamGroup::ClipWeight
        );
        assert_eq!(
            ParamGroup::of_path(&path(&["vision", "post_ln", "beta"])),
            ParamGroup::ClipBias
        );
        assert_eq!(
            ParamGroup::of_path(&path(&["tmse", "experts", "1", "fc2", "bias"])),
            ParamGroup::HeadBias
        );
        assert_eq!(
            ParamGroup::of_path(&path(&["neck", "classifier", "weight"])),
            ParamGroup::HeadWeight
        );
        assert_eq!(ParamGroup::HeadBias.lr(5e-6, 3.5e-4, 2.0), 7e-4);
        assert_eq!(ParamGroup::ClipWeight.lr(5e-6, 3.5e-4, 2.0), 5e-6);
    }

    #[test]
    fn linear_layer_params_split_into_weight_and_bias_groups() {
        type B = burn::backend::Flex;
        #[derive(burn::module::Module, Debug)]
        struct Net<B: Backend> {
            vision: burn::nn::Linear<B>,
            head: burn::nn::Linear<B>,
        }
        let device = Default::default();
        let net = Net::<B> {
            vision: burn::nn::LinearConfig::new(2, 3).init(&device),
            head: burn::nn::LinearConfig::new(3, 1).init(&device),
        };
        let ids = GroupIds::of_module::<B, _>(&net);
        for g in ParamGroup::ALL {
            assert_eq!(ids.count(g), 1, "{g:?}");
        }
    }
}
