//! Re-identification losses of NEXT (Eq. 12): label-smoothed identity cross-entropy on the BNNeck
//! logits, batch-hard triplet loss on Euclidean distances of the pre-BN feature, and the BNNeck
//! head itself; and the similarity-distribution matching (SDM) loss that aligns single-modality
//! query embeddings with the fused ones. Loss functions are pure functions on tensors, generic over any Burn backend.

#![warn(missing_docs)]

mod bnneck;
mod functions;
mod sdm;

pub use bnneck::{BnNeck, BnNeckConfig, BnNeckOutput};
pub use functions::{
    batch_hard_triplet, label_smoothed_cross_entropy, pairwise_euclidean, reid_loss,
    scaled_distances, ReidLoss, ReidLossConfig, TripletMargin, TripletScale,
};
pub use sdm::sdm_loss;
