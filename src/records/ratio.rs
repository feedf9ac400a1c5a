//! Compression ratio estimates, so that a producer fills compressed batches
//! up to `batch.size` instead of stopping at `batch.size` of uncompressed
//! records.
//!
//! The rule is the Java client's `CompressionRatioEstimator`: per topic and
//! codec, start at 1.0; after each batch, when the observed ratio is worse
//! (larger) than the estimate, move the estimate up by at least 0.05 at once;
//! when it is better, move it down by at most 0.005. Overestimating costs a
//! little batch space, underestimating would make batches overflow, hence the
//! asymmetry.

use std::collections::HashMap;

use super::Compression;

/// Step up when a batch compressed worse than estimated.
const DETERIORATE_STEP: f32 = 0.05;
/// Largest step down when a batch compressed better than estimated.
const IMPROVING_STEP: f32 = 0.005;

/// The estimate for one topic and codec.
///
/// ```
/// use ferrokafka::records::CompressionRatio;
///
/// let mut ratio = CompressionRatio::default();
/// assert_eq!(ratio.get(), 1.0);
/// ratio.update(0.3); // better than estimated: creeps down
/// assert!((ratio.get() - 0.995).abs() < 1e-6);
/// ratio.update(1.2); // worse: jumps up
/// assert!((ratio.get() - 1.2).abs() < 1e-6);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompressionRatio(f32);

impl Default for CompressionRatio {
    fn default() -> Self {
        CompressionRatio(1.0)
    }
}

impl CompressionRatio {
    /// The current estimate (compressed size / uncompressed size).
    pub fn get(self) -> f32 {
        self.0
    }

    /// Folds in the ratio a sealed batch actually had; returns the new estimate.
    /// Non-finite or non-positive observations are ignored.
    pub fn update(&mut self, observed: f32) -> f32 {
        if !observed.is_finite() || observed <= 0.0 {
            return self.0;
        }
        if observed > self.0 {
            self.0 = (self.0 + DETERIORATE_STEP).max(observed);
        } else if observed < self.0 {
            self.0 = (self.0 - IMPROVING_STEP).max(observed);
        }
        self.0
    }
}

/// Compression ratio estimates per topic and codec (see [`CompressionRatio`]).
///
/// Looking a topic up allocates nothing; the first update of a topic stores
/// its name once.
///
/// ```
/// use ferrokafka::records::{Compression, CompressionRatioEstimator};
///
/// let mut ratios = CompressionRatioEstimator::default();
/// assert_eq!(ratios.estimate("orders", Compression::Lz4), 1.0);
/// for _ in 0..1000 {
///     ratios.update("orders", Compression::Lz4, 0.25);
/// }
/// assert!((ratios.estimate("orders", Compression::Lz4) - 0.25).abs() < 1e-6);
/// assert_eq!(ratios.estimate("orders", Compression::Zstd), 1.0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct CompressionRatioEstimator {
    topics: HashMap<Box<str>, [CompressionRatio; 5]>,
}

impl CompressionRatioEstimator {
    /// The estimate for `topic` with `codec` (1.0 until a batch was seen;
    /// always 1.0 without a codec).
    pub fn estimate(&self, topic: &str, codec: Compression) -> f32 {
        self.topics
            .get(topic)
            .map_or(1.0, |ratios| ratios[usize::from(codec.id())].get())
    }

    /// Folds in the ratio a sealed batch of `topic` had; returns the new estimate.
    pub fn update(&mut self, topic: &str, codec: Compression, observed: f32) -> f32 {
        if codec == Compression::None {
            return 1.0;
        }
        let ratios = match self.topics.get_mut(topic) {
            Some(ratios) => ratios,
            None => self.topics.entry(topic.into()).or_default(),
        };
        ratios[usize::from(codec.id())].update(observed)
    }

    /// Forgets a topic's estimates.
    pub fn remove(&mut self, topic: &str) {
        self.topics.remove(topic);
    }
}
