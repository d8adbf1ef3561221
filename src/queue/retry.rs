//! Backoff between attempts: exponential, capped, with jitter so that jobs that
//! failed together (an outage) do not all come back in the same instant.
//! A pure function of its inputs; the random part is passed in.
use chrono::{DateTime, Utc};
use std::time::Duration;

/// The policy: `base · 2^(attempt−1)`, capped at `max`, then scaled by a
/// random factor in `[1 − jitter, 1 + jitter]`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Delay after the first failed attempt.
    pub base: Duration,
    /// No delay exceeds this (before jitter).
    pub max: Duration,
    /// Relative jitter, 0.0 to 1.0.
    pub jitter: f64,
}

impl Default for Backoff {
    /// 5 s, 10 s, 20 s, … capped at 10 minutes, ±20 %.
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(5),
            max: Duration::from_secs(600),
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The delay after failed attempt number `attempt` (1-based), with `unit` a
    /// random number in `[0, 1)` choosing the point within the jitter band.
    pub fn delay(&self, attempt: i32, unit: f64) -> Duration {
        let exp = attempt.clamp(1, 31) as u32 - 1;
        let raw = self.base.saturating_mul(2u32.saturating_pow(exp));
        let capped = raw.min(self.max);
        let factor = 1.0 + self.jitter.clamp(0.0, 1.0) * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        capped.mul_f64(factor.max(0.0))
    }

    /// When the next attempt after failed attempt `attempt` may run.
    pub fn next_run_at(&self, attempt: i32, now: DateTime<Utc>) -> DateTime<Utc> {
        let delay = self.delay(attempt, fastrand::f64());
        now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_JITTER: f64 = 0.5; // the middle of the band is the undisturbed value

    #[test]
    fn delay_doubles_per_attempt() {
        let b = Backoff::default();
        assert_eq!(b.delay(1, NO_JITTER), Duration::from_secs(5));
        assert_eq!(b.delay(2, NO_JITTER), Duration::from_secs(10));
        assert_eq!(b.delay(3, NO_JITTER), Duration::from_secs(20));
    }

    #[test]
    fn delay_is_capped() {
        let b = Backoff::default();
        assert_eq!(b.delay(30, NO_JITTER), Duration::from_secs(600));
        assert_eq!(b.delay(i32::MAX, NO_JITTER), Duration::from_secs(600));
    }

    #[test]
    fn jitter_stays_within_its_band() {
        let b = Backoff::default();
        assert_eq!(b.delay(1, 0.0), Duration::from_secs(4));
        assert_eq!(b.delay(1, 1.0), Duration::from_secs(6));
        for _ in 0..1000 {
            let d = b.delay(2, fastrand::f64());
            assert!(
                d >= Duration::from_secs(8) && d <= Duration::from_secs(12),
                "{d:?}"
            );
        }
    }

    #[test]
    fn nonsense_attempts_count_as_the_first() {
        let b = Backoff::default();
        assert_eq!(b.delay(0, NO_JITTER), b.delay(1, NO_JITTER));
        assert_eq!(b.delay(-5, NO_JITTER), b.delay(1, NO_JITTER));
    }
}
