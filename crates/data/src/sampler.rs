//! The PK identity sampler of the references: batches of P identities x K instances.

use crate::error::{DataError, Result};
use crate::transform::mix_seed;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Where a sampler stands: enough to resume training exactly (the batches of an epoch are a pure
/// function of seed and epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamplerState {
    /// Base seed.
    pub seed: u64,
    /// Current epoch (0-based).
    pub epoch: u64,
    /// Index of the next batch within the epoch.
    pub next_batch: usize,
}

/// PK sampler: each batch holds `P = batch_size / K` identities with `K` samples each.
#[derive(Debug, Clone)]
pub struct PkSampler {
    by_id: BTreeMap<i64, Vec<usize>>,
    batch_size: usize,
    instances: usize,
    seed: u64,
}

impl PkSampler {
    /// A sampler over record `labels` (one per record); `batch_size` must be a multiple of `k`
    /// and the data must hold at least `batch_size / k` identities.
    pub fn new(labels: &[i64], batch_size: usize, k: usize, seed: u64) -> Result<Self> {
        if k == 0 || batch_size == 0 || !batch_size.is_multiple_of(k) {
            return Err(DataError::Setting(format!(
                "batch size {batch_size} must be a positive multiple of the instances per id {k}"
            )));
        }
        let mut by_id: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (i, &label) in labels.iter().enumerate() {
            by_id.entry(label).or_default().push(i);
        }
        let p = batch_size / k;
        if by_id.len() < p {
            return Err(DataError::Setting(format!(
                "{} identities cannot fill batches of {p} identities x {k} instances",
                by_id.len()
            )));
        }
        Ok(Self {
            by_id,
            batch_size,
            instances: k,
            seed,
        })
    }

    /// Identities per batch (P).
    pub fn ids_per_batch(&self) -> usize {
        self.batch_size / self.instances
    }

    /// Samples per identity in a batch (K).
    pub fn instances_per_id(&self) -> usize {
        self.instances
    }

    /// The base seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The batches of `epoch` (record indices, `batch_size` each), as the reference builds them:
    /// per id shuffle its samples (drawing with replacement up to K when it has fewer), cut into
    /// chunks of K, then while at least P ids have chunks left draw P of them and take a chunk each.
    pub fn epoch_batches(&self, epoch: u64) -> Vec<Vec<usize>> {
        let mut rng = SmallRng::seed_from_u64(mix_seed(&[self.seed, epoch, 0x5A4D_504C]));
        let k = self.instances;
        let mut chunks: Vec<(i64, VecDeque<Vec<usize>>)> = Vec::with_capacity(self.by_id.len());
        for (&id, idxs) in &self.by_id {
            let mut pool: Vec<usize> = if idxs.len() < k {
                (0..k)
                    .map(|_| idxs[rng.random_range(0..idxs.len())])
                    .collect()
            } else {
                idxs.clone()
            };
            pool.shuffle(&mut rng);
            let list: VecDeque<Vec<usize>> = pool.chunks_exact(k).map(|c| c.to_vec()).collect();
            chunks.push((id, list));
        }
        let p = self.ids_per_batch();
        let mut available: Vec<usize> = (0..chunks.len()).collect();
        let mut batches = Vec::new();
        while available.len() >= p {
            let picked: Vec<usize> = rand::seq::index::sample(&mut rng, available.len(), p)
                .into_iter()
                .collect();
            let mut batch = Vec::with_capacity(self.batch_size);
            let mut emptied = Vec::new();
            for &slot in &picked {
                let id_index = available[slot];
                if let Some(chunk) = chunks[id_index].1.pop_front() {
                    batch.extend(chunk);
                }
                if chunks[id_index].1.is_empty() {
                    emptied.push(slot);
                }
            }
            emptied.sort_unstable_by(|a, b| b.cmp(a));
            for slot in emptied {
                available.remove(slot);
            }
            batches.push(batch);
        }
        batches
    }

    /// The batches still to come from `state` (its epoch, from `state.next_batch` on).
    pub fn resume(&self, state: &SamplerState) -> Vec<Vec<usize>> {
        self.epoch_batches(state.epoch)
            .into_iter()
            .skip(state.next_batch)
            .collect()
    }

    /// The state at the start of `epoch`.
    pub fn state_at(&self, epoch: u64) -> SamplerState {
        SamplerState {
            seed: self.seed,
            epoch,
            next_batch: 0,
        }
    }

    /// Split every batch between `world` data-parallel ranks and keep rank `rank`'s part: each
    /// rank gets `P / world` whole PK groups (the K samples of an identity stay together, so
    /// every positive pair is on one rank), rank 0 the first ones, and the parts concatenated in
    /// rank order are the unsharded batch. `P` must be a multiple of `world`.
    pub fn shard_batches(
        &self,
        batches: Vec<Vec<usize>>,
        rank: usize,
        world: usize,
    ) -> Result<Vec<Vec<usize>>> {
        let part = self.shard_len(rank, world)?;
        Ok(batches
            .into_iter()
            .map(|batch| {
                batch
                    .get(rank * part..(rank + 1) * part)
                    .unwrap_or(&[])
                    .to_vec()
            })
            .collect())
    }

    /// Samples of one rank's part of a batch (`batch_size / world`); an error unless `world`
    /// divides the identities per batch and `rank < world`.
    pub fn shard_len(&self, rank: usize, world: usize) -> Result<usize> {
        let p = self.ids_per_batch();
        if world == 0 || !p.is_multiple_of(world) || rank >= world {
            return Err(DataError::Setting(format!(
                "rank {rank} of {world}: the {p} identities of a batch (loader.batch_size / \
                 loader.instances_per_id) must split evenly between the {world} ranks"
            )));
        }
        Ok(self.batch_size / world)
    }

    /// Rebuild a sampler for `labels` from a saved state (the resume position is `state` itself).
    pub fn from_state(
        labels: &[i64],
        batch_size: usize,
        k: usize,
        state: &SamplerState,
    ) -> Result<Self> {
        Self::new(labels, batch_size, k, state.seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<i64> {
        // 6 ids: sizes 1, 3, 5, 8, 9, 12 (id 10 has a single sample: drawn with replacement).
        [(10, 1), (11, 3), (12, 5), (13, 8), (14, 9), (15, 12)]
            .iter()
            .flat_map(|&(id, n)| std::iter::repeat_n(id, n))
            .collect()
    }

    #[test]
    fn batches_hold_p_ids_times_k_and_are_deterministic() {
        let labels = labels();
        let s = PkSampler::new(&labels, 8, 4, 42).unwrap();
        let e0 = s.epoch_batches(0);
        assert_eq!(e0, s.epoch_batches(0));
        assert_ne!(e0, s.epoch_batches(1));
        assert!(!e0.is_empty());
        for batch in &e0 {
            assert_eq!(batch.len(), 8);
            let mut ids: Vec<i64> = batch.iter().map(|&i| labels[i]).collect();
            // Two blocks of K identical ids, two distinct ids.
            assert_eq!(ids[0..4].iter().filter(|&&x| x == ids[0]).count(), 4);
            assert_eq!(ids[4..8].iter().filter(|&&x| x == ids[4]).count(), 4);
            ids.dedup();
            assert_eq!(ids.len(), 2);
        }
        // Chunks of 4: ids with 1 and 3 samples give one each (drawn with replacement), then
        // 1 + 2 + 2 + 3 = 10 chunks; pairs are drawn while two ids have chunks, so at most the
        // 3 chunks of one id stay unused.
        let chunks_used: usize = e0.len() * 2;
        assert!((7..=10).contains(&chunks_used), "{}", e0.len());
        // Samples are used at most once per epoch except where drawn with replacement.
        let mut seen = std::collections::HashMap::new();
        for &i in e0.iter().flatten() {
            *seen.entry(i).or_insert(0) += 1;
        }
        for (&i, &n) in &seen {
            assert!(n == 1 || labels[i] <= 11, "index {i} used {n} times");
        }
    }

    #[test]
    fn shards_hold_whole_pk_groups_and_concatenate_to_the_batch() {
        let labels = labels();
        let s = PkSampler::new(&labels, 8, 2, 7).unwrap();
        let batches = s.epoch_batches(0);
        let parts: Vec<Vec<Vec<usize>>> = (0..2)
            .map(|r| s.shard_batches(batches.clone(), r, 2).unwrap())
            .collect();
        for (b, batch) in batches.iter().enumerate() {
            let joined: Vec<usize> = parts.iter().flat_map(|p| p[b].clone()).collect();
            assert_eq!(&joined, batch);
            for part in &parts {
                let ids: Vec<i64> = part[b].iter().map(|&i| labels[i]).collect();
                assert_eq!(ids.len(), 4);
                assert!(ids.chunks(2).all(|c| c[0] == c[1]), "{ids:?}");
                assert_ne!(ids[0], ids[2]);
            }
        }
        assert!(s.shard_batches(batches.clone(), 0, 3).is_err());
        assert!(s.shard_batches(batches, 2, 2).is_err());
    }

    #[test]
    fn resume_continues_exactly_and_bad_settings_are_rejected() {
        let labels = labels();
        let s = PkSampler::new(&labels, 8, 4, 9).unwrap();
        let all = s.epoch_batches(3);
        let state = SamplerState {
            seed: 9,
            epoch: 3,
            next_batch: 1,
        };
        let json = serde_json::to_string(&state).unwrap();
        let back: SamplerState = serde_json::from_str(&json).unwrap();
        let again = PkSampler::from_state(&labels, 8, 4, &back).unwrap();
        assert_eq!(again.resume(&back), all[1..].to_vec());
        assert!(PkSampler::new(&labels, 10, 4, 0).is_err());
        assert!(PkSampler::new(&labels, 32, 4, 0).is_err());
    }
}
