//! The keyed reduction of contributions to rows ([`row_totals`]).
//!
//! Differential's `reduce` would do the same thing: it keeps, per key, the
//! accumulated multiset of contributions and outputs `(key, aggregate)`
//! whenever it changes. It does so through arrangements (sorted batches of
//! every update, merged in the background), and a distinct count of users
//! needs two more (`threshold_total`, `count_total`): at real key
//! cardinality, where a row sees a handful of events per tick and almost
//! every event brings a new user and a new latency bucket, those sorts and
//! merges were most of the dataflow's CPU (issue 9). A row's contributions
//! are sums (counts per kind, per latency bucket, per user), so this
//! operator keeps them in one hash map per worker instead, updated in
//! O(1) per contribution, and outputs the same collection — `(key, agg)`
//! with multiplicity 1 per key with a non-empty input, changes only when
//! the aggregate changes, consolidated per timestamp. A key whose
//! contributions all cancel (its window closed and the source retracted
//! it) leaves the map, so the state is bounded by the open rows.
//!
//! The test below checks it against differential's `reduce` on random
//! streams of inserts and retractions.

use std::collections::{BTreeMap, hash_map::Entry};
use std::hash::{Hash, Hasher};

use differential_dataflow::{AsCollection, VecCollection};
use prometheus::IntGauge;
use rustc_hash::{FxHashMap, FxHasher};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use crate::aggregate::{Agg, Contribution};
use crate::window::quantile_bucket;

/// What a row has accumulated: the net multiplicity of every contribution.
#[derive(Debug, Default)]
struct RowState {
    requests: i64,
    errors: i64,
    /// Latency bucket → net count (no zero entries), in bucket order.
    latency: BTreeMap<u16, i64>,
    /// User → net count (no zero entries).
    users: FxHashMap<u64, i64>,
    /// Users whose net count is positive (what the row counts).
    positive_users: i64,
    /// The aggregate last output (what a change must retract).
    output: Option<Agg>,
    /// Changed at the timestamp being processed.
    dirty: bool,
}

impl RowState {
    fn add(&mut self, c: Contribution, n: i64) {
        match c {
            Contribution::Request => self.requests += n,
            Contribution::Error => self.errors += n,
            Contribution::Latency(b) => {
                let v = self.latency.entry(b).or_default();
                *v += n;
                if *v == 0 {
                    self.latency.remove(&b);
                }
            }
            Contribution::User(u) => {
                let (before, after) = match self.users.entry(u) {
                    Entry::Occupied(mut e) => {
                        let before = *e.get();
                        *e.get_mut() += n;
                        let after = *e.get();
                        if after == 0 {
                            e.remove();
                        }
                        (before, after)
                    }
                    Entry::Vacant(e) => {
                        e.insert(n);
                        (0, n)
                    }
                };
                self.positive_users += i64::from(after > 0) - i64::from(before > 0);
            }
        }
    }

    /// No contribution with a non-zero net multiplicity: the key has no row.
    fn is_empty(&self) -> bool {
        self.requests == 0 && self.errors == 0 && self.latency.is_empty() && self.users.is_empty()
    }

    /// The same measures [`crate::aggregate::aggregate`] computes from the
    /// consolidated contributions.
    fn agg(&self) -> Agg {
        let hist = || self.latency.iter().map(|(b, n)| (b, *n));
        let latency = !self.latency.is_empty();
        Agg {
            requests: self.requests,
            errors: self.errors,
            p50: latency.then(|| quantile_bucket(hist(), 0.50)).flatten(),
            p95: latency.then(|| quantile_bucket(hist(), 0.95)).flatten(),
            p99: latency.then(|| quantile_bucket(hist(), 0.99)).flatten(),
            active_users: self.positive_users,
        }
    }
}

/// A key's worker: the same for every worker and process of a run.
fn route<K: Hash>(key: &K) -> u64 {
    let mut h = FxHasher::default();
    key.hash(&mut h);
    h.finish()
}

/// Reduces `contributions` to one `(key, aggregate)` per key, as
/// differential's `reduce` with [`crate::aggregate::aggregate`] would (see
/// the module docs for why it is not): keys are exchanged by hash, each
/// worker keeps the accumulated contributions of its keys, and once the
/// input frontier has passed a timestamp the keys that changed at it output
/// their new aggregate (and retract the previous one).
///
/// `held` counts the keys held (every worker adds its own).
pub(crate) fn row_totals<'s, K>(
    contributions: VecCollection<'s, u64, (K, Contribution)>,
    name: &str,
    held: IntGauge,
) -> VecCollection<'s, u64, (K, Agg)>
where
    K: differential_dataflow::ExchangeData + Hash,
{
    type Update<K> = ((K, Contribution), u64, isize);
    contributions
        .inner
        .unary_frontier::<CapacityContainerBuilder<Vec<((K, Agg), u64, isize)>>, _, _, _>(
            Exchange::new(|((k, _), _, _): &Update<K>| route(k)),
            name,
            |_cap, _info| {
                let mut rows: FxHashMap<K, RowState> = FxHashMap::default();
                let mut pending: BTreeMap<u64, (Capability<u64>, Vec<Update<K>>)> = BTreeMap::new();
                let mut dirty: Vec<K> = Vec::new();
                move |(input, frontier), output| {
                    input.for_each_time(|cap, data| {
                        for batch in data {
                            for update in batch.drain(..) {
                                let t = update.1;
                                pending
                                    .entry(t)
                                    .or_insert_with(|| (cap.delayed(&t, 0), Vec::new()))
                                    .1
                                    .push(update);
                            }
                        }
                    });
                    while let Some((&t, _)) = pending.first_key_value() {
                        if frontier.less_equal(&t) {
                            break;
                        }
                        let (_, (cap, updates)) = pending.pop_first().expect("first exists");
                        for ((key, c), _, n) in updates {
                            let n = n as i64;
                            match rows.get_mut(&key) {
                                Some(row) => {
                                    row.add(c, n);
                                    if !row.dirty {
                                        row.dirty = true;
                                        dirty.push(key);
                                    }
                                }
                                None => {
                                    let mut row = RowState {
                                        dirty: true,
                                        ..RowState::default()
                                    };
                                    row.add(c, n);
                                    rows.insert(key.clone(), row);
                                    held.inc();
                                    dirty.push(key);
                                }
                            }
                        }
                        let mut session = output.session(&cap);
                        for key in dirty.drain(..) {
                            let Entry::Occupied(mut e) = rows.entry(key) else {
                                continue;
                            };
                            let row = e.get_mut();
                            row.dirty = false;
                            let new = (!row.is_empty()).then(|| row.agg());
                            if new == row.output {
                                if new.is_none() {
                                    e.remove();
                                    held.dec();
                                }
                                continue;
                            }
                            let old = std::mem::replace(&mut row.output, new);
                            let key = e.key().clone();
                            if new.is_none() {
                                e.remove();
                                held.dec();
                            }
                            if let Some(old) = old {
                                session.give(((key.clone(), old), t, -1));
                            }
                            if let Some(new) = new {
                                session.give(((key, new), t, 1));
                            }
                        }
                    }
                }
            },
        )
        .as_collection()
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use differential_dataflow::input::InputSession;
    use proptest::prelude::*;
    use timely::dataflow::operators::Inspect;
    use timely::dataflow::operators::Probe;

    use super::*;
    use crate::aggregate::aggregate;

    type Key = (u8, i64);
    type Changes = Rc<RefCell<BTreeMap<(u64, Key, Agg), isize>>>;
    /// Output changes, consolidated: (time, key, aggregate, multiplicity).
    type Output = Vec<(u64, Key, Agg, isize)>;

    /// Runs `ticks` (each a list of contribution changes) through
    /// [`row_totals`] and through differential's `reduce`, on `workers`
    /// threads, and returns both outputs, consolidated per timestamp.
    fn both(ticks: Vec<Vec<(Key, Contribution, isize)>>, workers: usize) -> (Output, Output) {
        both_holding(
            ticks,
            workers,
            IntGauge::new("held", "held").expect("gauge"),
            |_| {},
        )
    }

    /// As [`both`], calling `after_tick(ticks done)` after every tick.
    fn both_holding(
        ticks: Vec<Vec<(Key, Contribution, isize)>>,
        workers: usize,
        held: IntGauge,
        after_tick: impl Fn(u64) + Send + Sync + 'static,
    ) -> (Output, Output) {
        let config = timely::Config::process(workers);
        let results = timely::execute(config, move |worker| {
            let ours: Changes = Rc::default();
            let reference: Changes = Rc::default();
            let mut input = InputSession::<u64, (Key, Contribution), isize>::new();
            let (o, r) = (ours.clone(), reference.clone());
            let probe = worker.dataflow::<u64, _, _>(|scope| {
                let c = input.to_collection(scope);
                let reduced = c
                    .clone()
                    .reduce(|_k, input, output| output.push((aggregate(input), 1isize)));
                reduced.inner.inspect(move |((k, a), t, n)| {
                    *r.borrow_mut().entry((*t, *k, *a)).or_default() += n
                });
                row_totals(c, "Test", held.clone())
                    .inner
                    .inspect(move |((k, a), t, n)| {
                        *o.borrow_mut().entry((*t, *k, *a)).or_default() += n
                    })
                    .probe()
                    .0
            });
            for (t, changes) in ticks.iter().enumerate() {
                if worker.index() == 0 {
                    for (k, c, n) in changes {
                        input.update((*k, *c), *n);
                    }
                }
                input.advance_to(t as u64 + 1);
                input.flush();
                while probe.less_than(&(t as u64 + 1)) {
                    worker.step();
                }
                after_tick(t as u64 + 1);
            }
            drop(input);
            while !probe.done() {
                worker.step();
            }
            let flat = |m: &Changes| {
                m.borrow()
                    .iter()
                    .filter(|(_, n)| **n != 0)
                    .map(|((t, k, a), n)| (*t, *k, *a, *n))
                    .collect::<Vec<_>>()
            };
            (flat(&ours), flat(&reference))
        })
        .expect("timely")
        .join();
        let mut ours = Vec::new();
        let mut reference = Vec::new();
        for r in results {
            let (o, r) = r.expect("worker");
            ours.extend(o);
            reference.extend(r);
        }
        ours.sort();
        reference.sort();
        (ours, reference)
    }

    fn contribution() -> impl Strategy<Value = Contribution> {
        prop_oneof![
            Just(Contribution::Request),
            Just(Contribution::Error),
            (900u16..912).prop_map(Contribution::Latency),
            (0u64..6).prop_map(Contribution::User),
        ]
    }

    /// Every tick inserts random contributions and retracts some of what
    /// earlier ticks inserted (a window closing retracts all of its row's,
    /// a partial retraction also happens on replays); keys come and go.
    fn ticks() -> impl Strategy<Value = Vec<Vec<(Key, Contribution, isize)>>> {
        let change = ((0u8..5, 0i64..2), contribution(), 1isize..4);
        prop::collection::vec(
            (
                prop::collection::vec(change, 0..12),
                prop::collection::vec(any::<prop::sample::Index>(), 0..6),
            ),
            1..8,
        )
        .prop_map(|ticks| {
            let mut inserted: Vec<(Key, Contribution, isize)> = Vec::new();
            let mut out = Vec::new();
            for (adds, removals) in ticks {
                let mut tick = adds.clone();
                for i in removals {
                    if inserted.is_empty() {
                        break;
                    }
                    let (k, c, n) = inserted.swap_remove(i.index(inserted.len()));
                    tick.push((k, c, -n));
                }
                inserted.extend(adds);
                out.push(tick);
            }
            // The last tick closes every window: nothing is left.
            out.push(inserted.iter().map(|(k, c, n)| (*k, *c, -n)).collect());
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn row_totals_output_what_differentials_reduce_outputs(ticks in ticks(), workers in 1usize..3) {
            let (ours, reference) = both(ticks, workers);
            prop_assert_eq!(ours, reference);
        }
    }

    /// Issue 9's key churn at a small scale: rows open and close at a
    /// constant rate, so what the operator holds must stay at the live rows
    /// (it grew with every row ever seen when users went through
    /// differential 0.25's `distinct_total`), and drop to zero at the end.
    #[test]
    fn rows_held_stay_at_the_live_rows_under_key_churn() {
        let (rows_per_tick, open_ticks, n_ticks) = (50u64, 4u64, 60u64);
        let row = |tick: u64, i: u64| {
            let key = ((tick * rows_per_tick + i) as u8, tick as i64);
            [
                (key, Contribution::Request, 1),
                (key, Contribution::Latency(900 + (i % 7) as u16), 1),
                (key, Contribution::User(i % 5), 1),
            ]
        };
        let mut ticks = Vec::new();
        for tick in 0..n_ticks + open_ticks {
            let mut changes = Vec::new();
            if tick < n_ticks {
                (0..rows_per_tick).for_each(|i| changes.extend(row(tick, i)));
            }
            if tick >= open_ticks && tick - open_ticks < n_ticks {
                (0..rows_per_tick).for_each(|i| {
                    changes.extend(row(tick - open_ticks, i).map(|(k, c, n)| (k, c, -n)))
                });
            }
            ticks.push(changes);
        }
        let held = IntGauge::new("held", "held").expect("gauge");
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
        let (h, p) = (held.clone(), peak.clone());
        both_holding(ticks, 2, held.clone(), move |_| {
            p.fetch_max(h.get(), std::sync::atomic::Ordering::Relaxed);
        });
        let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
        // Keys are (u8, minute): at most 256 × open_ticks distinct live ones.
        assert!(peak > 0 && peak <= (256 * open_ticks) as i64, "peak {peak}");
        assert_eq!(held.get(), 0, "every closed row released");
    }

    #[test]
    fn a_closed_key_leaves_no_row() {
        let k = (1u8, 0i64);
        let (ours, _) = both(
            vec![
                vec![
                    (k, Contribution::Request, 2),
                    (k, Contribution::User(3), 2),
                    (k, Contribution::Latency(950), 2),
                ],
                vec![
                    (k, Contribution::Request, -2),
                    (k, Contribution::User(3), -2),
                    (k, Contribution::Latency(950), -2),
                ],
            ],
            2,
        );
        assert_eq!(ours.len(), 2, "{ours:?}");
        assert_eq!((ours[0].0, ours[0].3), (0, 1));
        assert_eq!(ours[0].2.requests, 2);
        assert_eq!(ours[0].2.active_users, 1);
        assert_eq!((ours[1].0, ours[1].3), (1, -1));
    }
}
