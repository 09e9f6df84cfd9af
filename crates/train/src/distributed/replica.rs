//! One replica's collective calls: joining and leaving, all-reduce over this process's devices
//! (burn-collective) and over the processes (the orchestrator), the broadcast of rank 0's
//! parameters, the gathers of the pre-neck features and labels, and the gradient reduction.

use super::DataParallel;
use crate::orchestrator::NodeLink;
use crate::TrainError;
use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData, TensorPrimitive};
use burn_collective::{PeerId, ReduceOperation};
use next_model::{NextModel, NextOutput, PreNeckOutput, Presence};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Nanoseconds the replicas of this process have spent in collective calls.
static COLLECTIVE_NANOS: AtomicU64 = AtomicU64::new(0);

/// Time the replicas of this process have spent in collective calls so far, summed over
/// replicas (waiting for a slower replica included): the communication share of a run is
/// this over (replicas x wall time).
pub fn collective_time() -> Duration {
    Duration::from_nanos(COLLECTIVE_NANOS.load(Ordering::Relaxed))
}

/// Adds the time since its start to [`COLLECTIVE_NANOS`] when dropped.
struct CountTime(Instant);

impl Drop for CountTime {
    fn drop(&mut self) {
        let nanos = self.0.elapsed().as_nanos().min(u64::MAX as u128) as u64;
        COLLECTIVE_NANOS.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// This process's connection to the orchestrator (held by its first replica between
/// [`Replica::register`] and [`Replica::finish`]).
static NODE_LINK: Mutex<Option<NodeLink>> = Mutex::new(None);

/// Close this process's connection to the orchestrator: the orchestrator then fails the other
/// processes' pending and later calls at once.
pub(super) fn drop_node_link() {
    drop(NODE_LINK.lock().unwrap_or_else(|e| e.into_inner()).take());
}

/// One replica's handle on the collective: its rank and the world it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replica {
    /// Global rank (0 writes checkpoints and logs).
    pub rank: usize,
    /// Number of replicas over all processes.
    pub world: usize,
    /// Index of this replica's device in its process.
    pub local: usize,
    /// Replicas (devices) per process.
    pub devices: usize,
    /// Number of processes.
    pub nodes: usize,
    /// Longest wait in one collective call.
    pub timeout: Duration,
}

impl Replica {
    fn peer(&self) -> PeerId {
        PeerId(self.rank as u32)
    }

    fn error(&self, what: &str, e: impl std::fmt::Debug) -> TrainError {
        TrainError::Collective {
            rank: Some(self.rank),
            message: format!("{what}: {e:?} (another rank failed or stopped?)"),
        }
    }

    /// Join the collective with `device` (one call per replica before anything else): the
    /// other devices of this process through burn-collective, the other processes through the
    /// orchestrator (the first replica of each process holds the connection).
    pub fn register<B: Backend>(
        &self,
        device: &B::Device,
        parallel: &DataParallel,
    ) -> Result<(), TrainError> {
        if self.devices > 1 {
            let (peer, device, config) =
                (self.peer(), device.clone(), parallel.collective_config());
            self.bounded("joining the collective", move || {
                burn_collective::register::<B>(peer, device, config)
            })?;
        }
        if let (Some(node), 0, true) = (&parallel.node, self.local, self.nodes > 1) {
            let _count = CountTime(Instant::now());
            let link = NodeLink::join(&node.orchestrator, node.rank, node.num_nodes, self.timeout)
                .map_err(|m| self.network_error("joining the other processes", m))?;
            *NODE_LINK.lock().unwrap_or_else(|e| e.into_inner()) = Some(link);
        }
        Ok(())
    }

    /// Leave the collective (after the last step).
    pub fn finish<B: Backend>(&self) -> Result<(), TrainError> {
        if self.devices > 1 {
            let peer = self.peer();
            self.bounded("leaving the collective", move || {
                burn_collective::finish_collective::<B>(peer)
            })?;
        }
        if self.local == 0 && self.nodes > 1 {
            let link = NODE_LINK.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(link) = link {
                link.leave()
                    .map_err(|m| self.network_error("leaving the other processes", m))?;
            }
        }
        Ok(())
    }

    fn network_error(&self, what: &str, message: String) -> TrainError {
        TrainError::Collective {
            rank: Some(self.rank),
            message: format!("{what}: {message} (the run stops; resume it with --resume)"),
        }
    }

    /// Sum (or mean) of `tensor` over all ranks: over this process's devices with
    /// burn-collective, then over the processes through the orchestrator (the first replica's
    /// process sum), the result spread back to this process's devices (the others add zeros).
    fn all_reduce<B: Backend, const D: usize>(
        &self,
        tensor: Tensor<B, D>,
        op: ReduceOperation,
    ) -> Result<Tensor<B, D>, TrainError> {
        let in_process = match self.nodes > 1 {
            true => ReduceOperation::Sum,
            false => op,
        };
        let mut tensor = match self.devices > 1 {
            true => self.local_all_reduce(tensor, in_process)?,
            false => tensor,
        };
        if self.nodes > 1 {
            let sum = match self.local {
                0 => self.node_sum(tensor)?,
                _ => tensor.zeros_like(),
            };
            tensor = match self.devices > 1 {
                true => self.local_all_reduce(sum, ReduceOperation::Sum)?,
                false => sum,
            };
            if op == ReduceOperation::Mean {
                tensor = tensor.div_scalar(self.world as f32);
            }
        }
        Ok(tensor)
    }

    /// burn-collective's all-reduce over this process's devices.
    fn local_all_reduce<B: Backend, const D: usize>(
        &self,
        tensor: Tensor<B, D>,
        op: ReduceOperation,
    ) -> Result<Tensor<B, D>, TrainError> {
        let primitive = tensor.into_primitive().tensor();
        let peer = self.peer();
        let reduced = self.bounded("all-reduce", move || {
            burn_collective::all_reduce::<B>(peer, primitive, op)
        })?;
        Ok(Tensor::from_primitive(TensorPrimitive::Float(reduced)))
    }

    /// The sum of `tensor` over the processes, through the orchestrator.
    fn node_sum<B: Backend, const D: usize>(
        &self,
        tensor: Tensor<B, D>,
    ) -> Result<Tensor<B, D>, TrainError> {
        let _count = CountTime(Instant::now());
        let (device, dims) = (tensor.device(), tensor.dims());
        let values = tensor
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .map_err(|e| self.network_error("all-reduce", format!("{e:?}")))?;
        let mut link = NODE_LINK.lock().unwrap_or_else(|e| e.into_inner());
        let link = link.as_mut().ok_or_else(|| {
            self.network_error("all-reduce", "not connected to the orchestrator".into())
        })?;
        let sum = link
            .all_reduce_sum(&values)
            .map_err(|m| self.network_error("all-reduce", m))?;
        Ok(Tensor::from_data(TensorData::new(sum, dims), &device))
    }

    /// Run the collective call `call` on a helper thread and wait at most `self.timeout` for
    /// it: Burn's collective calls wait without a limit for every peer, so a dead rank would
    /// leave the others waiting forever (the helper stays blocked; the error ends the run).
    fn bounded<T: Send + 'static>(
        &self,
        what: &str,
        call: impl FnOnce() -> Result<T, burn_collective::CollectiveError> + Send + 'static,
    ) -> Result<T, TrainError> {
        let _count = CountTime(Instant::now());
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name(format!("next-collective-{}", self.rank))
            .spawn(move || {
                let _ = tx.send(call());
            })
            .map_err(|e| self.error(what, e))?;
        match rx.recv_timeout(self.timeout) {
            Ok(result) => result.map_err(|e| self.error(what, e)),
            Err(RecvTimeoutError::Timeout) => Err(TrainError::Collective {
                rank: Some(self.rank),
                message: format!(
                    "{what}: no answer from the other ranks within {} s: a rank stopped or hangs \
                     (the run stops; resume it with --resume)",
                    self.timeout.as_secs_f64()
                ),
            }),
            Err(RecvTimeoutError::Disconnected) => Err(self.error(what, "the call panicked")),
        }
    }

    /// Rank 0's value of `tensor` on every rank: a sum where the other ranks add exact zeros
    /// (Burn's broadcast is not implemented between processes; this works in both cases).
    fn broadcast<B: Backend, const D: usize>(
        &self,
        tensor: Tensor<B, D>,
    ) -> Result<Tensor<B, D>, TrainError> {
        let mine = if self.rank == 0 {
            tensor
        } else {
            tensor.zeros_like()
        };
        self.all_reduce(mine, ReduceOperation::Sum)
    }

    /// Rank 0's parameters and running statistics on every replica.
    pub fn broadcast_module<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
        module: M,
    ) -> Result<M, TrainError> {
        struct Broadcast<'a> {
            replica: &'a Replica,
            error: Option<TrainError>,
        }
        impl<B: AutodiffBackend> ModuleMapper<B> for Broadcast<'_> {
            fn map_float<const D: usize>(
                &mut self,
                param: Param<Tensor<B, D>>,
            ) -> Param<Tensor<B, D>> {
                let (id, tensor, mapper) = param.consume();
                let grad = tensor.is_require_grad();
                let tensor = match self.error {
                    Some(_) => tensor,
                    None => match self.replica.broadcast(tensor.clone().inner()) {
                        Ok(value) => Tensor::from_inner(value).set_require_grad(grad),
                        Err(e) => {
                            self.error = Some(e);
                            tensor
                        }
                    },
                };
                Param::from_mapped_value(id, tensor, mapper)
            }
        }
        let mut mapper = Broadcast {
            replica: self,
            error: None,
        };
        let module = module.map(&mut mapper);
        match mapper.error {
            Some(e) => Err(e),
            None => Ok(module),
        }
    }

    /// The rows of every rank's `local` `[n, F]` (same `n` everywhere) in rank order `[n·world,
    /// F]`: this rank's rows stay differentiable, the others are constants.
    pub fn gather_rows<B: AutodiffBackend>(
        &self,
        local: Tensor<B, 2>,
    ) -> Result<Tensor<B, 2>, TrainError> {
        let [n, f] = local.dims();
        let all = self.gather_inner(local.clone().inner(), n, f)?;
        let mut parts = Vec::with_capacity(3);
        if self.rank > 0 {
            parts.push(Tensor::from_inner(
                all.clone().slice([0..self.rank * n, 0..f]),
            ));
        }
        parts.push(local);
        if self.rank + 1 < self.world {
            parts.push(Tensor::from_inner(
                all.slice([(self.rank + 1) * n..self.world * n, 0..f]),
            ));
        }
        Ok(Tensor::cat(parts, 0))
    }

    /// Every rank's `local` rows `[k, dim]` (`None`: this rank has none; `k` may differ between
    /// ranks) in rank order `[Σk, dim]`, this rank's rows differentiable, with every rank's
    /// `tags` (one per row, small integers such as row indices) in the same order. `None` when
    /// no rank has a row. Every rank must call it with the same `dim`.
    pub fn gather_ragged<B: AutodiffBackend>(
        &self,
        local: Option<Tensor<B, 2>>,
        tags: &[i64],
        dim: usize,
        device: &B::Device,
    ) -> Result<Option<Tagged<B>>, TrainError> {
        let k = tags.len();
        if local.as_ref().map_or(0, |t| t.dims()[0]) != k || local.is_none() && k > 0 {
            return Err(self.error("gathering rows", "rows and tags differ in number"));
        }
        let mut mine = vec![0.0f32; self.world];
        mine[self.rank] = k as f32;
        let counts = self.all_reduce(
            Tensor::<B::InnerBackend, 1>::from_floats(mine.as_slice(), device),
            ReduceOperation::Sum,
        )?;
        let counts: Vec<usize> = counts
            .into_data()
            .iter::<f32>()
            .map(|c| c.round().max(0.0) as usize)
            .collect();
        let most = counts.iter().copied().max().unwrap_or(0);
        if most == 0 {
            return Ok(None);
        }
        // Pad every rank's block to the longest one, gather the blocks, keep the real rows.
        let pad = |t: Option<Tensor<B, 2>>, width: usize| match t {
            Some(t) if k == most => t,
            Some(t) => Tensor::cat(vec![t, Tensor::zeros([most - k, width], device)], 0),
            None => Tensor::zeros([most, width], device),
        };
        let rows = self.gather_rows(pad(local, dim))?;
        let tag_values: Vec<f32> = tags.iter().map(|&t| t as f32).collect();
        let tag_block =
            (k > 0).then(|| Tensor::<B, 2>::from_data(TensorData::new(tag_values, [k, 1]), device));
        let all_tags: Vec<f32> = self
            .gather_inner(pad(tag_block, 1).inner(), most, 1)?
            .into_data()
            .iter::<f32>()
            .collect();
        let keep: Vec<i64> = counts
            .iter()
            .enumerate()
            .flat_map(|(r, &c)| (0..c).map(move |j| (r * most + j) as i64))
            .collect();
        let tags = keep
            .iter()
            .map(|&i| all_tags.get(i as usize).map_or(-1, |t| t.round() as i64))
            .collect();
        let index =
            Tensor::<B, 1, Int>::from_data(TensorData::new(keep.clone(), [keep.len()]), device);
        Ok(Some((rows.select(0, index), tags)))
    }

    /// Every rank's labels `[n]` in rank order `[n·world]` (exact: labels are small integers).
    pub fn gather_labels<B: Backend>(
        &self,
        local: Tensor<B, 1, Int>,
    ) -> Result<Tensor<B, 1, Int>, TrainError> {
        let [n] = local.dims();
        let all = self.gather_inner(local.float().reshape([n, 1]), n, 1)?;
        Ok(all.reshape([n * self.world]).round().int())
    }

    /// All ranks' `[n, f]` blocks stacked in rank order: each rank writes its block into zeros
    /// and the blocks are summed (adding zeros is exact).
    fn gather_inner<B: Backend>(
        &self,
        local: Tensor<B, 2>,
        n: usize,
        f: usize,
    ) -> Result<Tensor<B, 2>, TrainError> {
        let device = local.device();
        let padded = Tensor::<B, 2>::zeros([n * self.world, f], &device)
            .slice_assign([self.rank * n..(self.rank + 1) * n, 0..f], local);
        self.all_reduce(padded, ReduceOperation::Sum)
    }

    /// The training output of the whole global batch from this rank's pre-neck features
    /// `pre` ([`NextModel::forward_train_pre_neck`] of its part): the features of every rank
    /// gathered in rank order (this rank's rows differentiable), the BNNecks run on them, and
    /// the labels gathered the same way. UMM's reconstruction loss, a mean over the targets of
    /// this rank's part, is rescaled to this part's share of the mean over the whole batch's
    /// targets, so that the ranks' gradients add up to the single-device one;
    /// [`GlobalOutput::reconstruction`] is the whole batch's value (for the logs).
    pub fn global_output<B: AutodiffBackend>(
        &self,
        model: &NextModel<B>,
        pre: PreNeckOutput<B>,
        labels: Tensor<B, 1, Int>,
        presence: Option<&Presence>,
    ) -> Result<GlobalOutput<B>, TrainError> {
        let device = pre.feature.device();
        let (local_rec, reconstruction) = match presence {
            // Every rank takes this branch or none (presence comes with the configuration), so
            // the ranks make the same collective calls.
            Some(p) => self.share_reconstruction(pre.reconstruction, p.num_targets(), &device)?,
            None => (None, None),
        };
        let gathered = PreNeckOutput {
            feature: self.gather_rows(pre.feature)?,
            branch_features: pre
                .branch_features
                .into_iter()
                .map(|f| self.gather_rows(f))
                .collect::<Result<_, _>>()?,
            // Only the losses use the output: the per-sample expert outputs stay local.
            semantic: pre.semantic,
            structure_routing: pre.structure_routing,
            reconstruction: local_rec,
        };
        let labels = self.gather_labels(labels.inner())?;
        Ok(GlobalOutput {
            output: model.apply_necks(gathered),
            labels: Tensor::from_inner(labels),
            reconstruction,
        })
    }

    /// This rank's reconstruction loss `local` (a mean over its `targets` targets) rescaled to
    /// `sum over its targets / all ranks' targets`, and the whole batch's mean (`None` when no
    /// rank has a reconstruction loss).
    fn share_reconstruction<B: AutodiffBackend>(
        &self,
        local: Option<Tensor<B, 1>>,
        targets: usize,
        device: &B::Device,
    ) -> Result<(Option<Tensor<B, 1>>, Option<f64>), TrainError> {
        let value: Option<f64> = local.as_ref().map(|r| r.clone().into_scalar().elem());
        let counts = Tensor::<B::InnerBackend, 1>::from_floats(
            [
                targets as f32,
                (value.unwrap_or(0.0) * targets as f64) as f32,
                f32::from(u8::from(local.is_some())),
            ],
            device,
        );
        let sums: Vec<f32> = self
            .all_reduce(counts, ReduceOperation::Sum)?
            .into_data()
            .iter::<f32>()
            .collect();
        let (all_targets, sum, with_rec) = match sums.as_slice() {
            [t, s, w] => (f64::from(t.max(1.0)), f64::from(*s), *w > 0.0),
            _ => return Err(self.error("sharing the reconstruction loss", sums)),
        };
        let local = local.map(|r| r.mul_scalar(targets as f64 / all_targets));
        Ok((local, with_rec.then_some(sum / all_targets)))
    }

    /// Reduce `grads` over the ranks in the module's parameter order: parameters in `global`
    /// (computed on the gathered batch, equal on every rank) are averaged, the others (partial
    /// gradients of the local rows) summed.
    pub fn reduce_gradients<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
        grads: &mut GradientsParams,
        module: &M,
        global: &HashSet<ParamId>,
    ) -> Result<(), TrainError> {
        struct Reduce<'a> {
            replica: &'a Replica,
            grads: &'a mut GradientsParams,
            global: &'a HashSet<ParamId>,
            error: Option<TrainError>,
        }
        impl<B: AutodiffBackend> ModuleVisitor<B> for Reduce<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                if self.error.is_some() {
                    return;
                }
                let Some(grad) = self.grads.remove::<B::InnerBackend, D>(param.id) else {
                    return;
                };
                let op = if self.global.contains(&param.id) {
                    ReduceOperation::Mean
                } else {
                    ReduceOperation::Sum
                };
                match self.replica.all_reduce(grad, op) {
                    Ok(g) => self.grads.register::<B::InnerBackend, D>(param.id, g),
                    Err(e) => self.error = Some(e),
                }
            }
        }
        let mut visitor = Reduce {
            replica: self,
            grads,
            global,
            error: None,
        };
        module.visit(&mut visitor);
        match visitor.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Rows `[n, F]` with one tag per row ([`Replica::gather_ragged`]).
pub type Tagged<B> = (Tensor<B, 2>, Vec<i64>);

/// The training output of a data-parallel step on the whole global batch.
pub struct GlobalOutput<B: AutodiffBackend> {
    /// The model output: necks and logits of every rank's rows.
    pub output: NextOutput<B>,
    /// The labels of every rank's rows, in the same order.
    pub labels: Tensor<B, 1, Int>,
    /// The whole batch's UMM reconstruction loss, when there is one.
    pub reconstruction: Option<f64>,
}

/// Ids of the BNNeck parameters (main and branch necks): those computed on the whole batch.
pub fn neck_param_ids<B: Backend>(model: &NextModel<B>) -> HashSet<ParamId> {
    std::iter::once(&model.neck)
        .chain(&model.branch_necks)
        .flat_map(crate::params::collect_params::<B, _>)
        .map(|(id, _)| id)
        .collect()
}
