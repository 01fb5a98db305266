//! What differential dataflow maintains: per window, a multiset of
//! [`Contribution`]s whose multiplicities add up across workers, and the
//! reduction of that multiset into the row's measures ([`Agg`]).
//!
//! Events are pre-aggregated per worker and tick ([`WindowAcc`]): a tick of
//! 100,000 events turns into a few hundred contributions, and differential
//! only sees those.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHasher};
use serde::{Deserialize, Serialize};

use crate::window::latency_value;

/// The tenant and endpoint of a `metrics_minute` row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct RowNames {
    /// Tenant.
    pub tenant: String,
    /// Endpoint.
    pub endpoint: String,
}

/// Identity of a `metrics_minute` row. The names travel with the key, so
/// whichever worker or process writes the row knows them: no row can wait
/// for (or be dropped for lack of) a name sent separately, and the names
/// are released with the window's state. They are shared (`Arc`), so the
/// many contributions of one row do not copy them, and the source reuses
/// one key per row and worker across ticks, so comparing two copies of a
/// row's key (what differential's merges do most) stops at the pointers
/// instead of comparing the strings (see the `Ord` impl).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MetricKey {
    /// [`hash_strs`] of (tenant, service, endpoint): compared first, so
    /// ordering rarely looks at the names.
    pub hash: u64,
    /// Bucket start, epoch ms.
    pub minute: i64,
    /// [`hash_strs`] of the service.
    pub service_hash: u64,
    /// Service.
    #[serde(with = "shared")]
    pub service: Arc<String>,
    /// Tenant and endpoint.
    #[serde(with = "shared")]
    pub names: Arc<RowNames>,
}

/// Identity of a `service_minute` row, with its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ServiceKey {
    /// [`hash_strs`] of the service.
    pub hash: u64,
    /// Bucket start, epoch ms.
    pub minute: i64,
    /// Service (shared with the metric keys it came from).
    #[serde(with = "shared")]
    pub service: Arc<String>,
}

/// (De)serializes an `Arc<T>` as its `T` (between processes of a cluster).
mod shared {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer, T: Serialize>(
        v: &Arc<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        (**v).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Arc<T>, D::Error> {
        T::deserialize(d).map(Arc::new)
    }
}

/// Orders shared values, deciding "equal" from the pointers when both
/// sides share one allocation (the same order as comparing the values).
fn cmp_shared<T: Ord>(a: &Arc<T>, b: &Arc<T>) -> std::cmp::Ordering {
    if Arc::ptr_eq(a, b) {
        std::cmp::Ordering::Equal
    } else {
        (**a).cmp(&**b)
    }
}

// The same order a derive would give (fields in declaration order), with
// the names compared by pointer first: differential compares equal keys
// all the time, and the hashes alone cannot tell two names apart.
impl Ord for MetricKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.hash
            .cmp(&other.hash)
            .then(self.minute.cmp(&other.minute))
            .then(self.service_hash.cmp(&other.service_hash))
            .then_with(|| cmp_shared(&self.service, &other.service))
            .then_with(|| cmp_shared(&self.names, &other.names))
    }
}

impl PartialOrd for MetricKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ServiceKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.hash
            .cmp(&other.hash)
            .then(self.minute.cmp(&other.minute))
            .then_with(|| cmp_shared(&self.service, &other.service))
    }
}

impl PartialOrd for ServiceKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

// Equal keys have equal hashes (the hash is a function of the names), so
// hashing only the hash and the minute is consistent with `Eq` and cheap.
impl Hash for MetricKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.hash.hash(state);
        self.minute.hash(state);
    }
}

impl Hash for ServiceKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.hash.hash(state);
        self.minute.hash(state);
    }
}

impl MetricKey {
    /// The `service_minute` row this row adds to.
    pub(crate) fn service_key(&self) -> ServiceKey {
        ServiceKey {
            hash: self.service_hash,
            minute: self.minute,
            service: self.service.clone(),
        }
    }
}

/// A 64-bit hash of strings, stable within one build of the binary (it
/// never reaches storage: ids are only used in memory and on the wire
/// between workers of one run).
pub(crate) fn hash_strs(parts: &[&str]) -> u64 {
    let mut h = FxHasher::default();
    for p in parts {
        p.hash(&mut h);
    }
    // Fx is fast but weak in its low bits; finish with a 64-bit mixer.
    let mut x = h.finish();
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ceb9fe1a85ec53);
    x ^ (x >> 33)
}

/// One kind of thing an event adds to its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum Contribution {
    /// One request.
    Request,
    /// One request with status ≥ 500.
    Error,
    /// One latency sample in this histogram bucket.
    Latency(u16),
    /// A user, by hash of (tenant, user); counted once whatever its
    /// multiplicity (if positive).
    User(u64),
}

/// The measures of one row.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub(crate) struct Agg {
    /// Events.
    pub requests: i64,
    /// Events with status ≥ 500.
    pub errors: i64,
    /// Median latency bucket.
    pub p50: Option<u16>,
    /// 95th percentile latency bucket.
    pub p95: Option<u16>,
    /// 99th percentile latency bucket.
    pub p99: Option<u16>,
    /// Distinct users.
    pub active_users: i64,
}

impl Agg {
    /// Latency quantiles in milliseconds.
    pub(crate) fn latencies_ms(&self) -> [Option<f64>; 3] {
        [self.p50, self.p95, self.p99].map(|b| b.map(latency_value))
    }
}

/// Reduces a window's contributions (sorted, with multiplicities) to its
/// measures: what `crate::rows::row_totals` maintains incrementally for
/// both `metrics_minute` and `service_minute`, and the reference its test
/// checks it against (differential's `reduce` with this logic).
#[cfg(test)]
pub(crate) fn aggregate(input: &[(&Contribution, isize)]) -> Agg {
    let mut agg = Agg::default();
    let mut first_latency = None;
    let mut last_latency = 0;
    for (i, (c, n)) in input.iter().enumerate() {
        let n = *n as i64;
        match c {
            Contribution::Request => agg.requests += n,
            Contribution::Error => agg.errors += n,
            Contribution::Latency(_) => {
                first_latency.get_or_insert(i);
                last_latency = i + 1;
            }
            Contribution::User(_) => agg.active_users += i64::from(n > 0),
        }
    }
    if let Some(first) = first_latency {
        let hist = input[first..last_latency]
            .iter()
            .filter_map(|(c, n)| match c {
                Contribution::Latency(b) => Some((b, *n as i64)),
                _ => None,
            });
        agg.p50 = crate::window::quantile_bucket(hist.clone(), 0.50);
        agg.p95 = crate::window::quantile_bucket(hist.clone(), 0.95);
        agg.p99 = crate::window::quantile_bucket(hist, 0.99);
    }
    agg
}

/// What one worker has added to one window: used both for the per-tick
/// delta and for the running total it retracts when the window closes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct WindowAcc {
    /// Requests.
    pub requests: i64,
    /// Errors.
    pub errors: i64,
    /// Latency histogram: bucket → count.
    pub latency: FxHashMap<u16, i64>,
    /// Users: hash → count.
    pub users: FxHashMap<u64, i64>,
}

impl WindowAcc {
    /// Adds one event.
    pub(crate) fn add_event(
        &mut self,
        is_error: bool,
        latency_bucket: Option<u16>,
        user: Option<u64>,
    ) {
        self.requests += 1;
        self.errors += i64::from(is_error);
        if let Some(b) = latency_bucket {
            *self.latency.entry(b).or_default() += 1;
        }
        if let Some(u) = user {
            *self.users.entry(u).or_default() += 1;
        }
    }

    /// Adds another accumulation into this one.
    pub(crate) fn merge(&mut self, other: &WindowAcc) {
        self.requests += other.requests;
        self.errors += other.errors;
        for (b, n) in &other.latency {
            *self.latency.entry(*b).or_default() += n;
        }
        for (u, n) in &other.users {
            *self.users.entry(*u).or_default() += n;
        }
    }

    /// The accumulation as contributions with multiplicities, each scaled by `sign`.
    pub(crate) fn contributions(
        &self,
        sign: isize,
    ) -> impl Iterator<Item = (Contribution, isize)> + '_ {
        let counts = [
            (Contribution::Request, self.requests),
            (Contribution::Error, self.errors),
        ];
        counts
            .into_iter()
            .filter(|(_, n)| *n != 0)
            .map(move |(c, n)| (c, n as isize * sign))
            .chain(
                self.latency
                    .iter()
                    .map(move |(b, n)| (Contribution::Latency(*b), *n as isize * sign)),
            )
            .chain(
                self.users
                    .iter()
                    .map(move |(u, n)| (Contribution::User(*u), *n as isize * sign)),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reduce(acc: &WindowAcc) -> Agg {
        let mut v: Vec<(Contribution, isize)> = acc.contributions(1).collect();
        v.sort();
        let refs: Vec<(&Contribution, isize)> = v.iter().map(|(c, n)| (c, *n)).collect();
        aggregate(&refs)
    }

    #[test]
    fn aggregates_counts_users_and_quantiles() {
        let mut acc = WindowAcc::default();
        for i in 0..100u16 {
            acc.add_event(
                i % 10 == 0,
                Some(crate::window::latency_bucket(f64::from(i + 1))),
                Some(u64::from(i % 7)),
            );
        }
        acc.add_event(false, None, None);
        let agg = reduce(&acc);
        assert_eq!(agg.requests, 101);
        assert_eq!(agg.errors, 10);
        assert_eq!(agg.active_users, 7);
        let [p50, p95, p99] = agg.latencies_ms();
        assert!((p50.unwrap() - 50.0).abs() / 50.0 < 0.02, "{p50:?}");
        assert!((p95.unwrap() - 95.0).abs() / 95.0 < 0.02);
        assert!((p99.unwrap() - 99.0).abs() / 99.0 < 0.02);
    }

    #[test]
    fn retraction_cancels_and_merging_adds() {
        let mut a = WindowAcc::default();
        a.add_event(true, Some(900), Some(1));
        let mut b = a.clone();
        b.merge(&a);
        assert_eq!(b.requests, 2);
        assert_eq!(b.users[&1], 2);
        let mut all: FxHashMap<Contribution, isize> = FxHashMap::default();
        for (c, n) in b.contributions(1).chain(b.contributions(-1)) {
            *all.entry(c).or_default() += n;
        }
        assert!(all.values().all(|n| *n == 0));
        assert_eq!(reduce(&WindowAcc::default()), Agg::default());
    }

    fn key(hash: u64, minute: i64, service: &str, tenant: &str, endpoint: &str) -> MetricKey {
        MetricKey {
            hash,
            minute,
            service_hash: hash_strs(&[service]),
            service: Arc::new(service.to_string()),
            names: Arc::new(RowNames {
                tenant: tenant.to_string(),
                endpoint: endpoint.to_string(),
            }),
        }
    }

    #[test]
    fn key_order_is_field_order_whether_or_not_names_are_shared() {
        // Same hash on purpose: only the names can order these.
        let keys = [
            key(1, 0, "a", "t", "e"),
            key(1, 0, "a", "t", "f"),
            key(1, 0, "a", "u", "a"),
            key(1, 1, "a", "t", "e"),
            key(2, 0, "a", "a", "a"),
        ];
        let tuple = |k: &MetricKey| {
            (
                k.hash,
                k.minute,
                k.service_hash,
                (*k.service).clone(),
                (*k.names).clone(),
            )
        };
        for a in &keys {
            for b in &keys {
                assert_eq!(a.cmp(b), tuple(a).cmp(&tuple(b)), "{a:?} vs {b:?}");
                assert_eq!(a.cmp(b) == std::cmp::Ordering::Equal, a == b);
                let sa = a.service_key();
                let sb = b.service_key();
                let st = |k: &ServiceKey| (k.hash, k.minute, (*k.service).clone());
                assert_eq!(sa.cmp(&sb), st(&sa).cmp(&st(&sb)));
            }
            // A copy sharing the names and one with its own equal names.
            let copy = a.clone();
            let fresh = key(
                a.hash,
                a.minute,
                &a.service,
                &a.names.tenant,
                &a.names.endpoint,
            );
            assert_eq!(a.cmp(&copy), std::cmp::Ordering::Equal);
            assert_eq!(a.cmp(&fresh), std::cmp::Ordering::Equal);
            assert_eq!(a, &fresh);
        }
    }

    #[test]
    fn hashes_separate_fields() {
        assert_ne!(hash_strs(&["ab", "c"]), hash_strs(&["a", "bc"]));
        assert_eq!(hash_strs(&["x"]), hash_strs(&["x"]));
    }
}
