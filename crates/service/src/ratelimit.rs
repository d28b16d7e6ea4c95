//! Rate limits as a policy: a token bucket per (access key, operation), off unless configured.
//!
//! The clock is injected (`now_ms` is passed in, never read here) so the buckets are deterministic
//! under test and share the server's one notion of "now".

use std::collections::{BTreeMap, HashMap};

use parking_lot::Mutex;

use crate::config::RateLimitConfig;

/// A call refused because its bucket is empty.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("rate exceeded for {operation}: limit {per_second} requests per second per access key")]
pub struct Throttled {
    pub operation: String,
    pub per_second: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last_ms: i64,
}

/// Token buckets keyed by (access key, operation).
///
/// Hard-coded: a bucket holds one second's worth of tokens (`max(1, rate)`), so `LookupEvents = 2.0`
/// allows bursts of 2, as CloudTrail's "2 requests per second" does. The map is bounded by the
/// configured principals times the operations, because only authenticated keys reach it.
#[derive(Debug, Default)]
pub struct RateLimiter {
    default_per_second: Option<f64>,
    operations: BTreeMap<String, f64>,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

impl RateLimiter {
    pub fn from_config(cfg: &RateLimitConfig) -> RateLimiter {
        RateLimiter {
            default_per_second: cfg.default_per_second,
            operations: cfg.operations.clone(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The configured rate for `operation`, if any: its own entry, else the default.
    pub fn limit(&self, operation: &str) -> Option<f64> {
        self.operations.get(operation).copied().or(self.default_per_second).filter(|r| r.is_finite())
    }

    /// Takes one token for (access key, operation) at `now_ms` (epoch milliseconds), or says why not.
    pub fn check(&self, access_key_id: &str, operation: &str, now_ms: i64) -> Result<(), Throttled> {
        let Some(rate) = self.limit(operation) else { return Ok(()) };
        let throttled = || Throttled { operation: operation.to_string(), per_second: rate };
        if rate <= 0.0 {
            return Err(throttled());
        }
        let capacity = rate.max(1.0);
        let mut buckets = self.buckets.lock();
        let bucket = buckets
            .entry((access_key_id.to_string(), operation.to_string()))
            .or_insert(Bucket { tokens: capacity, last_ms: now_ms });
        // A clock that steps backwards refills nothing rather than draining the bucket.
        let elapsed_secs = (now_ms - bucket.last_ms).max(0) as f64 / 1000.0;
        bucket.tokens = (bucket.tokens + elapsed_secs * rate).min(capacity);
        bucket.last_ms = bucket.last_ms.max(now_ms);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(throttled())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(default: Option<f64>, ops: &[(&str, f64)]) -> RateLimiter {
        RateLimiter::from_config(&RateLimitConfig {
            default_per_second: default,
            operations: ops.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        })
    }

    #[test]
    fn nothing_is_limited_by_default() {
        let l = limiter(None, &[]);
        assert!((0..1000).all(|_| l.check("AKIA1", "LookupEvents", 0).is_ok()));
    }

    #[test]
    fn one_per_second_allows_one_then_refills_after_a_second() {
        let l = limiter(None, &[("LookupEvents", 1.0)]);
        assert!(l.check("AKIA1", "LookupEvents", 1_000).is_ok());
        assert_eq!(
            l.check("AKIA1", "LookupEvents", 1_010),
            Err(Throttled { operation: "LookupEvents".into(), per_second: 1.0 })
        );
        assert!(l.check("AKIA1", "LookupEvents", 1_500).is_err());
        assert!(l.check("AKIA1", "LookupEvents", 2_000).is_ok());
        // Another key and another operation have buckets of their own.
        assert!(l.check("AKIA2", "LookupEvents", 2_000).is_ok());
        assert!(l.check("AKIA1", "ListTrails", 2_000).is_ok());
    }

    #[test]
    fn the_burst_is_one_seconds_worth_and_the_default_covers_other_operations() {
        let l = limiter(Some(5.0), &[("LookupEvents", 2.0)]);
        let ok = |op: &str, n: usize| (0..n).filter(|_| l.check("AKIA1", op, 0).is_ok()).count();
        assert_eq!(ok("LookupEvents", 10), 2);
        assert_eq!(ok("ListTrails", 10), 5);
        assert!(l.check("AKIA1", "LookupEvents", 499).is_err());
        assert!(l.check("AKIA1", "LookupEvents", 500).is_ok());
    }

    #[test]
    fn a_clock_stepping_back_does_not_grant_or_drain_tokens() {
        let l = limiter(None, &[("LookupEvents", 1.0)]);
        assert!(l.check("AKIA1", "LookupEvents", 10_000).is_ok());
        assert!(l.check("AKIA1", "LookupEvents", 5_000).is_err());
        assert!(l.check("AKIA1", "LookupEvents", 11_000).is_ok());
    }

    #[test]
    fn a_zero_rate_refuses_everything() {
        let l = limiter(None, &[("LookupEvents", 0.0)]);
        assert!(l.check("AKIA1", "LookupEvents", 0).is_err());
    }
}
