//! Exponential backoff with jitter, as the Java client computes it for
//! `retry.backoff.ms`/`retry.backoff.max.ms` and the reconnect settings.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff: `initial * 2^attempt`, capped at `max`, with ±20 %
/// random jitter (never above `max`).
///
/// ```
/// use std::time::Duration;
/// use ferrokafka::network::Backoff;
///
/// let backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
/// let first = backoff.delay(0);
/// assert!(first >= Duration::from_millis(80) && first <= Duration::from_millis(120));
/// assert!(backoff.delay(30) <= Duration::from_millis(1000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before the first retry.
    pub initial: Duration,
    /// The largest delay.
    pub max: Duration,
}

/// Relative jitter applied to each delay.
const JITTER: f64 = 0.2;

impl Backoff {
    /// A backoff from `initial` doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
        }
    }

    /// The delay without jitter before retry number `attempt` (0-based).
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(31));
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay with jitter before retry number `attempt` (0-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.base_delay(attempt);
        let factor = rand::rng().random_range((1.0 - JITTER)..=(1.0 + JITTER));
        base.mul_f64(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_up_to_the_cap_with_bounded_jitter() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        assert_eq!(b.base_delay(0), Duration::from_millis(100));
        assert_eq!(b.base_delay(1), Duration::from_millis(200));
        assert_eq!(b.base_delay(3), Duration::from_millis(800));
        assert_eq!(b.base_delay(4), Duration::from_millis(1000));
        assert_eq!(b.base_delay(u32::MAX), Duration::from_millis(1000));
        let mut seen = std::collections::HashSet::new();
        for attempt in 0..6 {
            for _ in 0..50 {
                let d = b.delay(attempt);
                let base = b.base_delay(attempt);
                assert!(
                    d >= base.mul_f64(0.8) && d <= base.mul_f64(1.2).min(b.max),
                    "{d:?}"
                );
                seen.insert(d);
            }
        }
        assert!(seen.len() > 10, "jitter should vary the delays");
        // max below initial is raised to initial.
        let b = Backoff::new(Duration::from_millis(50), Duration::from_millis(10));
        assert_eq!(b.base_delay(5), Duration::from_millis(50));
    }
}
