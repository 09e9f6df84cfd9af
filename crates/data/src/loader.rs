//! Batches: worker threads decode and transform samples ahead of the model (a bounded number of
//! batches in flight), and the consumer packs them into Burn tensors.

use crate::dataset::{SketchImage, TripletRecord};
use crate::error::{DataError, Result};
use crate::transform::{
    decode_pixels, load_present_pixels, mix_seed, test_transform_pixels, test_transform_sketch,
    train_transform_present, train_transform_sketch, Pixels, TransformConfig,
};
use crate::xdog::{xdog_sketch, XdogParams};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Loader settings (the `[loader]` section of run configs; missing keys take the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoaderConfig {
    /// Samples per batch.
    pub batch_size: usize,
    /// Instances per identity in a training batch (K of the PK sampler).
    pub instances_per_id: usize,
    /// Decoding threads.
    pub workers: usize,
    /// Batches prepared ahead of the consumer (bounds memory).
    pub prefetch: usize,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self {
            batch_size: 64,
            instances_per_id: 8,
            workers: 2,
            prefetch: 2,
        }
    }
}

impl LoaderConfig {
    /// Check every field's range; the error names the key (`loader.batch_size`, ...).
    pub fn validate(&self) -> Result<()> {
        let ranges: [(&str, usize, usize, usize); 4] = [
            ("loader.batch_size", self.batch_size, 1, 1 << 16),
            ("loader.instances_per_id", self.instances_per_id, 1, 1 << 16),
            ("loader.workers", self.workers, 1, 1024),
            ("loader.prefetch", self.prefetch, 1, 1024),
        ];
        for (key, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err(DataError::Setting(format!(
                    "{key} = {value}: expected {min}..={max}"
                )));
            }
        }
        if !self.batch_size.is_multiple_of(self.instances_per_id) {
            return Err(DataError::Setting(format!(
                "loader.batch_size = {} must be a multiple of loader.instances_per_id = {} \
                 (P identities x K instances)",
                self.batch_size, self.instances_per_id
            )));
        }
        Ok(())
    }

    /// A PK sampler over the labels of `records` with this batch size and K, seeded with `seed`.
    pub fn sampler(
        &self,
        records: &[TripletRecord],
        seed: u64,
    ) -> Result<crate::sampler::PkSampler> {
        let labels: Vec<i64> = records.iter().map(|r| r.label).collect();
        crate::sampler::PkSampler::new(&labels, self.batch_size, self.instances_per_id, seed)
    }
}

/// One batch on the host: transformed pixels and ids, before conversion to tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct HostBatch {
    /// Pixels per modality (RGB, NIR, TIR), each `[B, 3, H, W]` row-major.
    pub pixels: [Vec<f32>; 3],
    /// Image `[height, width]`.
    pub size: [u32; 2],
    /// Record indices of the samples.
    pub indices: Vec<usize>,
    /// Training labels (relabelled pids in train, raw pids elsewhere).
    pub labels: Vec<i64>,
    /// Raw pids.
    pub pids: Vec<i64>,
    /// Camera ids.
    pub camids: Vec<i64>,
    /// Scene ids (-1 where none).
    pub sceneids: Vec<i64>,
    /// Captions per modality.
    pub captions: [Vec<String>; 3],
    /// Per sample, which of RGB, NIR, TIR its record has (all true for tri-modal data); the
    /// pixels of an absent one are zeros.
    pub present: Vec<[bool; 3]>,
    /// Sketch pixels `[B, 3, H, W]` (the grey sketch replicated to three channels, normalised
    /// like the spectra; zeros for a sample without sketch); `None` when no sample of the batch
    /// has a sketch.
    pub sketch: Option<Vec<f32>>,
    /// Per sample, whether it has a sketch.
    pub sketch_present: Vec<bool>,
    /// Position of the first sample within its whole batch: a data-parallel rank's part starts
    /// past the parts of the ranks before it (0 otherwise); per-sample random draws key on the
    /// whole-batch position, so a sample is augmented the same on any rank.
    pub first_position: usize,
}

/// A batch of triplets as tensors.
#[derive(Debug, Clone)]
pub struct TripletBatch<B: Backend> {
    /// Images per modality (RGB, NIR, TIR), each `[B, 3, H, W]`, normalised.
    pub images: [Tensor<B, 4>; 3],
    /// Training labels `[B]` (relabelled pids in train, raw pids in query/gallery).
    pub pids: Tensor<B, 1, Int>,
    /// Camera ids `[B]`.
    pub camids: Tensor<B, 1, Int>,
    /// Captions per modality.
    pub captions: [Vec<String>; 3],
    /// Raw pids.
    pub raw_pids: Vec<i64>,
    /// Camera ids as plain numbers.
    pub raw_camids: Vec<i64>,
    /// Scene ids (-1 where none).
    pub sceneids: Vec<i64>,
    /// Record indices of the samples.
    pub indices: Vec<usize>,
    /// Per sample, which of RGB, NIR, TIR its record has (absent ones are zero images).
    pub present: Vec<[bool; 3]>,
    /// Sketches `[B, 3, H, W]` (one grey channel replicated to three, normalised; zeros where a
    /// sample has none); `None` when no sample of the batch has a sketch.
    pub sketch: Option<Tensor<B, 4>>,
    /// Per sample, whether it has a sketch.
    pub sketch_present: Vec<bool>,
}

impl HostBatch {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the batch holds no sample.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Move the batch to `device` as tensors.
    pub fn into_tensors<B: Backend>(self, device: &B::Device) -> TripletBatch<B> {
        let n = self.len();
        let [h, w] = self.size.map(|v| v as usize);
        let [p0, p1, p2] = self.pixels;
        let image =
            |p: Vec<f32>| Tensor::<B, 4>::from_data(TensorData::new(p, [n, 3, h, w]), device);
        let ints =
            |v: &[i64]| Tensor::<B, 1, Int>::from_data(TensorData::new(v.to_vec(), [n]), device);
        TripletBatch {
            images: [image(p0), image(p1), image(p2)],
            sketch: self.sketch.map(image),
            sketch_present: self.sketch_present,
            present: self.present,
            pids: ints(&self.labels),
            camids: ints(&self.camids),
            captions: self.captions,
            raw_pids: self.pids,
            raw_camids: self.camids,
            sceneids: self.sceneids,
            indices: self.indices,
        }
    }
}

/// How samples are transformed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadMode {
    /// Train transform; per-sample seeds derive from (seed, epoch, batch, position).
    Train {
        /// Base seed.
        seed: u64,
        /// Epoch number.
        epoch: u64,
        /// Index of the first batch of the job list within its epoch (for resumed epochs).
        first_batch: usize,
        /// Position of each job's first sample within its whole batch (a data-parallel rank's
        /// part starts past the parts of the ranks before it; 0 otherwise).
        first_position: usize,
    },
    /// Test transform (no randomness).
    Eval,
}

/// Decode and transform one batch of records on the calling thread pool.
pub fn load_batch(
    records: &[TripletRecord],
    indices: &[usize],
    cfg: &TransformConfig,
    mode: LoadMode,
    batch_number: usize,
) -> Result<HostBatch> {
    let len = cfg.image_len();
    let n = indices.len();
    if let Some(&bad) = indices.iter().find(|&&i| i >= records.len()) {
        return Err(DataError::Setting(format!(
            "record index {bad} out of range ({} records)",
            records.len()
        )));
    }
    // Each sample writes its images straight into the modality-major batch buffers. Every value
    // of a present input is overwritten; the zeroing runs on the pool, not on one thread.
    let zeros = || {
        let mut v = Vec::with_capacity(n * len);
        v.par_extend(rayon::iter::repeat_n(0.0f32, n * len));
        v
    };
    let mut pixels: [Vec<f32>; 3] = std::array::from_fn(|_| zeros());
    let sketch_present: Vec<bool> = indices
        .iter()
        .map(|&i| records[i].sketch.is_some())
        .collect();
    let mut sketch = sketch_present.iter().any(|&s| s).then(zeros);
    let sketch_slots: Vec<Option<&mut [f32]>> = match sketch.as_mut() {
        Some(buffer) => buffer.chunks_mut(len).map(Some).collect(),
        None => (0..n).map(|_| None).collect(),
    };
    let [p0, p1, p2] = &mut pixels;
    p0.par_chunks_mut(len)
        .zip(p1.par_chunks_mut(len))
        .zip(p2.par_chunks_mut(len))
        .zip(sketch_slots.into_par_iter())
        .zip(indices.par_iter().enumerate())
        .try_for_each(
            |((((o0, o1), o2), sketch_out), (pos, &idx))| -> Result<()> {
                let record = &records[idx];
                let imgs = load_present_pixels(&record.images)?;
                let seed = match mode {
                    LoadMode::Train {
                        seed,
                        epoch,
                        first_batch,
                        first_position,
                    } => {
                        let s = mix_seed(&[
                            seed,
                            epoch,
                            (first_batch + batch_number) as u64,
                            (first_position + pos) as u64,
                        ]);
                        train_transform_present(
                            &imgs.each_ref().map(Option::as_ref),
                            cfg,
                            s,
                            [o0, o1, o2],
                        );
                        Some(s)
                    }
                    LoadMode::Eval => {
                        for (img, o) in imgs.iter().zip([o0, o1, o2]) {
                            if let Some(img) = img {
                                test_transform_pixels(img, cfg, o);
                            }
                        }
                        None
                    }
                };
                if let (Some(out), Some(source)) = (sketch_out, &record.sketch) {
                    let drawn = sketch_pixels(record, source, &imgs[0])?;
                    match seed {
                        Some(s) => train_transform_sketch(drawn, cfg, s, out),
                        None => test_transform_sketch(drawn, cfg, out),
                    }
                }
                Ok(())
            },
        )?;
    let pick =
        |f: fn(&TripletRecord) -> i64| indices.iter().map(|&i| f(&records[i])).collect::<Vec<_>>();
    let captions = [0, 1, 2].map(|m| {
        indices
            .iter()
            .map(|&i| records[i].captions[m].clone())
            .collect()
    });
    Ok(HostBatch {
        pixels,
        size: cfg.size,
        indices: indices.to_vec(),
        labels: pick(|r| r.label),
        pids: pick(|r| r.pid),
        camids: pick(|r| r.camid),
        sceneids: pick(|r| r.sceneid),
        captions,
        present: indices
            .iter()
            .map(|&i| records[i].images.present())
            .collect(),
        sketch,
        sketch_present,
        first_position: match mode {
            LoadMode::Train { first_position, .. } => first_position,
            LoadMode::Eval => 0,
        },
    })
}

/// The grey sketch of `record`: its file, or the XDoG of its decoded RGB photo `rgb`.
fn sketch_pixels(
    record: &TripletRecord,
    source: &SketchImage,
    rgb: &Option<Pixels>,
) -> Result<Pixels> {
    match (source, rgb) {
        (SketchImage::File(path), _) => Ok(decode_pixels(path)?.into_grey()),
        (SketchImage::Xdog, Some(photo)) => {
            Ok(Pixels::Grey(xdog_sketch(photo, &XdogParams::default())))
        }
        (SketchImage::Xdog, None) => Err(DataError::Setting(format!(
            "sample `{}` ({}) asks for an XDoG sketch but has no RGB photo to draw it from",
            record.key,
            record.primary_file().display()
        ))),
    }
}

/// A stream of batches prepared by worker threads, at most `prefetch` ahead of the consumer.
/// Batches arrive in job order whatever the thread timing; dropping the stream stops the workers.
pub struct BatchStream {
    receiver: Option<Receiver<Result<HostBatch>>>,
    worker: Option<JoinHandle<()>>,
    remaining: usize,
}

impl BatchStream {
    /// Start workers over `jobs` (record indices per batch).
    pub fn start(
        records: Arc<Vec<TripletRecord>>,
        jobs: Vec<Vec<usize>>,
        cfg: TransformConfig,
        mode: LoadMode,
        workers: usize,
        prefetch: usize,
    ) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers.max(1))
            .thread_name(|i| format!("next-data-{i}"))
            .build()
            .map_err(|e| DataError::Worker(e.to_string()))?;
        let (tx, rx) = sync_channel(prefetch.max(1));
        let remaining = jobs.len();
        let worker = std::thread::Builder::new()
            .name("next-data-loader".into())
            .spawn(move || {
                for (b, job) in jobs.iter().enumerate() {
                    let batch = pool.install(|| load_batch(&records, job, &cfg, mode, b));
                    let failed = batch.is_err();
                    if tx.send(batch).is_err() || failed {
                        return;
                    }
                }
            })
            .map_err(|e| DataError::Worker(e.to_string()))?;
        Ok(Self {
            receiver: Some(rx),
            worker: Some(worker),
            remaining,
        })
    }

    /// Batches not yet received.
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// The next batch as tensors on `device`, or `None` at the end.
    pub fn next_tensors<B: Backend>(
        &mut self,
        device: &B::Device,
    ) -> Option<Result<TripletBatch<B>>> {
        self.next().map(|r| r.map(|b| b.into_tensors(device)))
    }
}

impl Iterator for BatchStream {
    type Item = Result<HostBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let rx = self.receiver.as_ref()?;
        match rx.recv() {
            Ok(Ok(batch)) => {
                self.remaining -= 1;
                Some(Ok(batch))
            }
            Ok(Err(e)) => {
                self.remaining = 0;
                Some(Err(e))
            }
            Err(_) => {
                self.remaining = 0;
                Some(Err(DataError::Worker("loader thread ended early".into())))
            }
        }
    }
}

impl Drop for BatchStream {
    fn drop(&mut self) {
        self.receiver.take();
        if let Some(handle) = self.worker.take() {
            let _ = handle.join();
        }
    }
}

/// Evaluation batches over `records` in order (no augmentation), `batch_size` each (the last may be smaller).
pub fn eval_stream(
    records: &[TripletRecord],
    cfg: TransformConfig,
    batch_size: usize,
    workers: usize,
    prefetch: usize,
) -> Result<BatchStream> {
    if batch_size == 0 {
        return Err(DataError::Setting("batch size must be positive".into()));
    }
    let jobs: Vec<Vec<usize>> = (0..records.len())
        .collect::<Vec<_>>()
        .chunks(batch_size)
        .map(|c| c.to_vec())
        .collect();
    BatchStream::start(
        Arc::new(records.to_vec()),
        jobs,
        cfg,
        LoadMode::Eval,
        workers,
        prefetch,
    )
}

/// Training batches of one epoch from a PK sampler, starting at `state.next_batch`.
pub fn train_stream(
    records: &[TripletRecord],
    sampler: &crate::sampler::PkSampler,
    state: &crate::sampler::SamplerState,
    cfg: TransformConfig,
    workers: usize,
    prefetch: usize,
) -> Result<BatchStream> {
    train_stream_shard(records, sampler, state, cfg, workers, prefetch, 0, 1)
}

/// Data-parallel rank `rank` of `world`'s part of [`train_stream`]: whole PK groups of every
/// batch ([`crate::sampler::PkSampler::shard_batches`]), each sample augmented with the seed it
/// has in the unsharded batch.
#[allow(clippy::too_many_arguments)]
pub fn train_stream_shard(
    records: &[TripletRecord],
    sampler: &crate::sampler::PkSampler,
    state: &crate::sampler::SamplerState,
    cfg: TransformConfig,
    workers: usize,
    prefetch: usize,
    rank: usize,
    world: usize,
) -> Result<BatchStream> {
    let jobs = sampler.shard_batches(sampler.resume(state), rank, world)?;
    let mode = LoadMode::Train {
        seed: state.seed,
        epoch: state.epoch,
        first_batch: state.next_batch,
        first_position: rank * sampler.shard_len(rank, world)?,
    };
    BatchStream::start(
        Arc::new(records.to_vec()),
        jobs,
        cfg,
        mode,
        workers,
        prefetch,
    )
}
