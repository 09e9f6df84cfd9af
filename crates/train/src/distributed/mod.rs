//! Data-parallel training: one model replica per device (one thread each), the devices of a
//! process joined by Burn's collective engine (`burn-collective`), several processes (machines)
//! by the orchestrator of [`crate::orchestrator`] over Burn's websocket transport
//! (burn-collective 0.21.0's own global level completes one all-reduce only: see there).
//!
//! Each step, every rank runs the per-sample part of the model (CLIP encoders, experts,
//! aggregation, and with UMM the token mapper, synthesiser and cue learner:
//! [`NextModel::forward_train_pre_neck`]) on its share of the PK batch (whole PK groups,
//! [`next_data::PkSampler::shard_batches`]). The pre-neck features of all ranks are then
//! gathered, and every rank runs the BNNecks and the losses on the whole global batch, with its
//! own rows differentiable and the other ranks' rows constants. So the BatchNorm statistics,
//! the batch-hard triplet mining (negatives from every identity of the global batch) and the
//! loss means are exactly those of the single-device batch: the gradient of a backbone
//! parameter is the sum over ranks of its partial gradients (all-reduce `Sum`), and the
//! gradients of the neck parameters, already global on every rank, are averaged (`Mean`, equal
//! values up to rounding). Parameters and BatchNorm running statistics are broadcast from rank
//! 0 at the start. Checkpoints and logs are written by rank 0 only. The UMM modality
//! augmentation draws each sample's dropout from its position in the whole batch (so a sample
//! is dropped the same on any rank), and the reconstruction loss is rescaled to the whole
//! batch's mean ([`Replica::global_output`]).
//!
//! What is not bitwise the single-device run: dropout masks and caption-sentence draws come
//! from per-rank random streams (Burn's device RNG draws whole tensors, so a sample's mask
//! cannot follow it to another device), and the all-reduce sums in another order.

mod replica;

pub use replica::{collective_time, neck_param_ids, GlobalOutput, Replica};

use crate::trainer::{prepare, TrainOptions, TrainOutcome, Training};
use crate::TrainConfig;
use crate::TrainError;
use burn::tensor::backend::{AutodiffBackend, Backend, Device, DeviceId};
use burn_collective::CollectiveConfig;
use next_data::Dataset;
use next_model::NextConfig;
use replica::drop_node_link;
use std::time::Duration;

/// How a training is spread over devices (threads of this process) and processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataParallel {
    /// Devices (replicas, one thread each) in this process.
    pub devices: usize,
    /// This process's place among several (absent: a single process).
    pub node: Option<NodeConfig>,
    /// Longest wait for the other ranks in one collective call before the training stops with
    /// an error (a rank that died or hangs): it must cover rank 0's periodic evaluation, which
    /// the other ranks wait for.
    pub timeout: Duration,
}

/// Default of [`DataParallel::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// One process of a multi-process (multi-machine) data-parallel training.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// This process's index, `0..num_nodes` (node 0 holds global rank 0: it writes the run).
    pub rank: usize,
    /// Number of processes.
    pub num_nodes: usize,
    /// Address of the orchestrator (`next orchestrator`, [`run_orchestrator`]), e.g.
    /// `ws://10.0.0.1:3000`.
    pub orchestrator: String,
}

impl Default for DataParallel {
    fn default() -> Self {
        Self::single()
    }
}

impl DataParallel {
    /// One device, one process: the plain training.
    pub fn single() -> Self {
        Self::local(1)
    }

    /// `devices` replicas in this process.
    pub fn local(devices: usize) -> Self {
        Self {
            devices,
            node: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Total number of replicas over all processes.
    pub fn world_size(&self) -> usize {
        self.devices * self.node.as_ref().map_or(1, |n| n.num_nodes)
    }

    /// Whether anything is distributed (more than one replica).
    pub fn is_distributed(&self) -> bool {
        self.world_size() > 1
    }

    /// Global rank of this process's `local`-th device.
    pub fn global_rank(&self, local: usize) -> usize {
        self.node.as_ref().map_or(0, |n| n.rank) * self.devices + local
    }

    /// Check the numbers (devices at least 1, node rank below the node count).
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |message: String| {
            Err(TrainError::Collective {
                rank: None,
                message,
            })
        };
        if self.devices == 0 {
            return bad("--devices must be at least 1".into());
        }
        if let Some(n) = &self.node {
            if n.num_nodes == 0 || n.rank >= n.num_nodes {
                return bad(format!(
                    "--rank {} must be below --world-size {}",
                    n.rank, n.num_nodes
                ));
            }
        }
        Ok(())
    }

    /// Burn's collective configuration of this process's devices (the processes are joined
    /// by [`crate::orchestrator`], not by burn-collective's global level: see there why).
    fn collective_config(&self) -> CollectiveConfig {
        CollectiveConfig::default().with_num_devices(self.devices)
    }
}

/// A data-parallel training that has passed every check, one prepared replica per device of
/// this process (nothing written, no collective joined yet).
pub struct ParallelTraining<'a, B: AutodiffBackend> {
    replicas: Vec<(Replica, Training<'a, B>)>,
    parallel: DataParallel,
}

/// Check and build one replica per entry of `devices` (the length must be
/// `parallel.devices`), as [`prepare`] does for one device: every replica starts from the
/// same model, the run's checkpoint on resume (with the same or another device count: the
/// training state holds no per-device part). Writes nothing.
pub fn prepare_parallel<'a, B: AutodiffBackend>(
    model_cfg: &NextConfig,
    config: &TrainConfig,
    dataset: &'a Dataset,
    options: &TrainOptions,
    parallel: &DataParallel,
    devices: &[B::Device],
) -> Result<ParallelTraining<'a, B>, TrainError> {
    parallel.validate()?;
    if devices.len() != parallel.devices {
        return Err(TrainError::Collective {
            rank: None,
            message: format!(
                "{} devices given for {} replicas",
                devices.len(),
                parallel.devices
            ),
        });
    }
    let world = parallel.world_size();
    config
        .loader
        .sampler(&dataset.train, config.solver.seed)?
        .shard_len(0, world)?;
    let mut replicas = Vec::with_capacity(devices.len());
    // One replica after the other: model building seeds the device RNG, so every replica
    // builds exactly what a single-device run builds.
    for (local, device) in devices.iter().enumerate() {
        let replica = Replica {
            rank: parallel.global_rank(local),
            world,
            local,
            devices: parallel.devices,
            nodes: parallel.node.as_ref().map_or(1, |n| n.num_nodes),
            timeout: parallel.timeout,
        };
        let mut options = options.clone();
        options.verbose &= replica.rank == 0;
        // Only rank 0 writes: the others may share its folder (and read its checkpoint on
        // resume) without counting as overwriting a run.
        options.force |= replica.rank != 0;
        let mut training = prepare::<B>(model_cfg, config, dataset, &options, device)?;
        if parallel.is_distributed() {
            training.set_replica(replica);
        }
        replicas.push((replica, training));
    }
    Ok(ParallelTraining {
        replicas,
        parallel: parallel.clone(),
    })
}

/// Train with data parallelism: [`prepare_parallel`] then [`ParallelTraining::run`].
pub fn train_parallel<B: AutodiffBackend>(
    model_cfg: &NextConfig,
    config: &TrainConfig,
    dataset: &Dataset,
    options: &TrainOptions,
    parallel: &DataParallel,
    devices: &[B::Device],
) -> Result<TrainOutcome<B::InnerBackend>, TrainError> {
    prepare_parallel::<B>(model_cfg, config, dataset, options, parallel, devices)?.run()
}

impl<B: AutodiffBackend> ParallelTraining<'_, B> {
    /// Run every replica on its own thread (one replica in all: the plain [`Training::run`]).
    /// Returns the outcome of this process's first replica (rank 0's on node 0). When a
    /// replica fails, the others' pending collective calls fail too and the first cause is
    /// returned.
    pub fn run(self) -> Result<TrainOutcome<B::InnerBackend>, TrainError> {
        let ParallelTraining {
            mut replicas,
            parallel,
        } = self;
        if !parallel.is_distributed() {
            return match replicas.pop() {
                Some((_, training)) => training.run(),
                None => Err(TrainError::Collective {
                    rank: None,
                    message: "no replica to run".into(),
                }),
            };
        }
        let parallel = &parallel;
        let results: Vec<Result<TrainOutcome<B::InnerBackend>, TrainError>> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = replicas
                    .into_iter()
                    .map(|(replica, training)| {
                        std::thread::Builder::new()
                            .name(format!("next-replica-{}", replica.rank))
                            .spawn_scoped(scope, move || {
                                let result = run_replica(replica, training, parallel);
                                if result.is_err() {
                                    // Wake the replicas waiting on this one: their pending
                                    // collective calls fail instead of waiting forever (the
                                    // other processes' through the orchestrator).
                                    burn_collective::reset_collective::<B::InnerBackend>();
                                    drop_node_link();
                                }
                                result
                            })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| match h {
                        Ok(h) => h.join().unwrap_or_else(|_| {
                            burn_collective::reset_collective::<B::InnerBackend>();
                            Err(TrainError::Collective {
                                rank: None,
                                message: "a replica thread panicked".into(),
                            })
                        }),
                        Err(e) => Err(TrainError::Collective {
                            rank: None,
                            message: format!("starting a replica thread: {e}"),
                        }),
                    })
                    .collect()
            });
        first_outcome(results)
    }
}

/// The first replica's outcome, or the first error that is not a collective failure (the
/// cause: the other replicas' collective errors follow from it).
fn first_outcome<T>(results: Vec<Result<T, TrainError>>) -> Result<T, TrainError> {
    let mut outcome = None;
    let mut cause: Option<TrainError> = None;
    for result in results {
        match result {
            Ok(o) => {
                outcome.get_or_insert(o);
            }
            Err(e) => {
                let follows = matches!(e, TrainError::Collective { .. });
                let replace = match &cause {
                    None => true,
                    Some(TrainError::Collective { .. }) => !follows,
                    Some(_) => false,
                };
                if replace {
                    cause = Some(e);
                }
            }
        }
    }
    match (cause, outcome) {
        (Some(e), _) => Err(e),
        (None, Some(o)) => Ok(o),
        (None, None) => Err(TrainError::Collective {
            rank: None,
            message: "no replica ran".into(),
        }),
    }
}

/// One replica's thread: join the collective, train, leave.
fn run_replica<B: AutodiffBackend>(
    replica: Replica,
    training: Training<'_, B>,
    parallel: &DataParallel,
) -> Result<TrainOutcome<B::InnerBackend>, TrainError> {
    replica.register::<B::InnerBackend>(training.device(), parallel)?;
    let outcome = training.run()?;
    replica.finish::<B::InnerBackend>()?;
    Ok(outcome)
}

/// The first `n` devices of backend `B` (index 0..n of the default device's kind; on the CPU
/// backend, `n` handles of the one CPU device: one replica thread each).
pub fn devices<B: Backend>(n: usize) -> Vec<B::Device> {
    let base = B::Device::default().to_id();
    (0..n)
        .map(|i| {
            B::Device::from_id(DeviceId {
                type_id: base.type_id,
                index_id: i as u16,
            })
        })
        .collect()
}

/// Serve the orchestrator of multi-process trainings ([`crate::orchestrator`]) on `port`
/// until the process is stopped.
pub fn run_orchestrator(port: u16) -> Result<(), TrainError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| TrainError::Collective {
            rank: None,
            message: format!("starting the orchestrator's runtime: {e}"),
        })?;
    runtime
        .block_on(crate::orchestrator::serve(port))
        .map_err(|message| TrainError::Collective {
            rank: None,
            message: format!("the orchestrator: {message}"),
        })
}
