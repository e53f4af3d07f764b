//! Whole-ledger statistics: streaming O(N) passes over the records, for eval-time TensorBoard
//! logging (`ledger/loss` histogram, `ledger/forgotten_fraction`) and for the report. The
//! passes read through [`LedgerRead::checked_record`]: a record that fails its checksum is an
//! error, not a value in the statistics.

use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

use super::record::{BlockRecord, LedgerRead};
use super::LedgerError;
use crate::logging::Histogram;

/// Which per-block loss a statistic describes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossMetric {
    /// The loss the last time the block was trained: one direct measurement, by the model as
    /// it was at that step. The default: it is what LFR ranks blocks by (the loss recorded in
    /// the training forward pass), and it has no tuning parameter.
    #[default]
    LastLoss,
    /// The exponential moving average of the block's losses (`UpdateRule::ema_alpha`).
    EmaLoss,
}

impl LossMetric {
    pub fn of(self, r: &BlockRecord) -> f32 {
        match self {
            LossMetric::LastLoss => r.last_loss,
            LossMetric::EmaLoss => r.ema_loss,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LossMetric::LastLoss => "last_loss",
            LossMetric::EmaLoss => "ema_loss",
        }
    }
}

/// Histogram of `metric` over the seen blocks, bucketed exactly like
/// [`Histogram::from_values`]; `None` when no block was seen. Two streaming passes over the
/// ledger (range, then counts), no allocation beyond the buckets: O(N) time, O(bins) memory.
/// Fails on the first record that fails its checksum.
pub fn loss_histogram(
    ledger: &(impl LedgerRead + ?Sized),
    metric: LossMetric,
    bins: usize,
) -> Result<Option<Histogram>, LedgerError> {
    // The histogram pulls values from an infallible stream, twice. The first pass reads
    // through the checksum: a failed read ends the stream and parks its error here, to be
    // returned instead of the histogram. The second pass (bucket counts) reads the records
    // just checked without checking them again, which halves the cost; only a change made
    // between the two passes by someone other than the writer could slip into the counts.
    let failed = Cell::new(None);
    let pass = Cell::new(0u32);
    let hist = Histogram::from_stream(
        || {
            pass.set(pass.get() + 1);
            seen_losses(ledger, metric, pass.get() == 1, &failed)
        },
        bins,
    );
    match failed.into_inner() {
        Some(e) => Err(e),
        None => Ok(hist),
    }
}

/// Share of seen blocks forgotten at least once (`forget_events >= 1`); 0 when no block was
/// seen, so the logged scalar is always finite. O(N). Fails on the first record that fails
/// its checksum.
pub fn forgotten_fraction(ledger: &(impl LedgerRead + ?Sized)) -> Result<f64, LedgerError> {
    let (mut seen, mut forgotten) = (0u64, 0u64);
    for id in 0..ledger.len() {
        let r = ledger.checked_record(id)?;
        if r.seen() {
            seen += 1;
            forgotten += u64::from(r.forget_events > 0);
        }
    }
    Ok(if seen == 0 {
        0.0
    } else {
        forgotten as f64 / seen as f64
    })
}

/// The metric of every seen block, in id order. With `check`, reads through the checksum and
/// stops at the first record that fails it, storing its error in `failed`.
fn seen_losses<'a>(
    ledger: &'a (impl LedgerRead + ?Sized),
    metric: LossMetric,
    check: bool,
    failed: &'a Cell<Option<LedgerError>>,
) -> impl Iterator<Item = f32> + 'a {
    let read = move |id| match check {
        true => ledger.checked_record(id),
        false => Ok(ledger.record(id)),
    };
    (0..ledger.len())
        .map_while(move |id| match read(id) {
            Ok(r) => Some(r),
            Err(e) => {
                failed.set(Some(e));
                None
            }
        })
        .filter(BlockRecord::seen)
        .map(move |r| metric.of(&r))
}

/// Nearest-rank quantiles (`values[round(q (n - 1))]` of the sorted values) for ascending
/// `qs`, by successive `select_nth_unstable` on a shrinking suffix: O(n) per quantile, no
/// full sort. `values` is reordered. Empty input gives an empty result.
pub(super) fn quantiles(values: &mut [f32], qs: &[f64]) -> Vec<f32> {
    let n = values.len();
    if n == 0 {
        return Vec::new();
    }
    let mut lo = 0;
    let mut out = Vec::with_capacity(qs.len());
    for &q in qs {
        let idx = ((n - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        let idx = idx.max(lo); // qs ascending; guards against a caller passing them unsorted
        let (_, v, _) = values[lo..].select_nth_unstable_by(idx - lo, f32::total_cmp);
        out.push(*v);
        lo = idx;
    }
    out
}

/// A block in a top-k list.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Ranked {
    pub loss: f32,
    pub id: u64,
    pub record: BlockRecord,
}

/// The k best blocks of a stream under an order (hardest: highest loss first; easiest:
/// lowest first; ties by id), kept in a bounded heap: O(N log k) time, O(k) memory.
pub(super) struct TopK {
    k: usize,
    hardest: bool,
    heap: BinaryHeap<HeapItem>,
}

struct HeapItem {
    r: Ranked,
    hardest: bool,
}

impl HeapItem {
    /// Listing order: `Less` = listed earlier (better).
    fn listing(&self, other: &Self) -> Ordering {
        let by_loss = if self.hardest {
            other.r.loss.total_cmp(&self.r.loss)
        } else {
            self.r.loss.total_cmp(&other.r.loss)
        };
        by_loss.then(self.r.id.cmp(&other.r.id))
    }
}

impl PartialEq for HeapItem {
    fn eq(&self, other: &Self) -> bool {
        self.listing(other) == Ordering::Equal
    }
}
impl Eq for HeapItem {}
impl PartialOrd for HeapItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for HeapItem {
    fn cmp(&self, other: &Self) -> Ordering {
        self.listing(other)
    }
}

impl TopK {
    pub(super) fn new(k: usize, hardest: bool) -> Self {
        TopK {
            k,
            hardest,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    pub(super) fn push(&mut self, r: Ranked) {
        if self.k == 0 {
            return;
        }
        self.heap.push(HeapItem {
            r,
            hardest: self.hardest,
        });
        if self.heap.len() > self.k {
            self.heap.pop(); // the max under the listing order is the worst kept
        }
    }

    /// Best first.
    pub(super) fn into_sorted(self) -> Vec<Ranked> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|h| h.r)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_histogram_matches_from_values() {
        let values: Vec<f32> = (0..500).map(|i| ((i * 37) % 101) as f32 * 0.1).collect();
        let a = Histogram::from_stream(|| values.iter().copied(), 7).expect("non-empty");
        let b = Histogram::from_values(&values, 7).expect("non-empty");
        assert_eq!(a, b);
        let constant = [2.0f32; 4];
        assert_eq!(
            Histogram::from_stream(|| constant.iter().copied(), 3),
            Histogram::from_values(&constant, 3)
        );
        assert!(Histogram::from_stream(std::iter::empty, 3).is_none());
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut v: Vec<f32> = (0..101).rev().map(|i| i as f32).collect();
        let q = quantiles(&mut v, &[0.0, 0.1, 0.25, 0.5, 0.9, 1.0]);
        assert_eq!(q, vec![0.0, 10.0, 25.0, 50.0, 90.0, 100.0]);
        assert!(quantiles(&mut [], &[0.5]).is_empty());
        assert_eq!(quantiles(&mut [3.0], &[0.0, 1.0]), vec![3.0, 3.0]);
    }

    #[test]
    fn top_k_keeps_the_extremes_in_listing_order() {
        let losses = [3.0, 1.0, 5.0, 1.0, 4.0, 2.0];
        let mut hard = TopK::new(3, true);
        let mut easy = TopK::new(3, false);
        for (id, &loss) in losses.iter().enumerate() {
            let r = Ranked {
                loss,
                id: id as u64,
                record: BlockRecord::default(),
            };
            hard.push(r);
            easy.push(r);
        }
        let ids = |v: Vec<Ranked>| v.iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(hard.into_sorted()), vec![2, 4, 0]);
        assert_eq!(ids(easy.into_sorted()), vec![1, 3, 5], "ties by id");
        let mut none = TopK::new(0, true);
        none.push(Ranked {
            loss: 1.0,
            id: 0,
            record: BlockRecord::default(),
        });
        assert!(none.into_sorted().is_empty());
    }

    #[test]
    fn ledger_helpers_on_an_in_memory_ledger() {
        let mut v = vec![BlockRecord::unseen(0); 4];
        for (i, loss) in [(0usize, 2.0f32), (1, 4.0)] {
            v[i].times_trained = 1;
            v[i].last_loss = loss;
            v[i].ema_loss = loss + 1.0;
        }
        v[1].forget_events = 2;
        assert_eq!(forgotten_fraction(&v).expect("in memory"), 0.5);
        let h = loss_histogram(&v, LossMetric::EmaLoss, 2)
            .expect("in memory")
            .expect("seen blocks");
        assert_eq!((h.min, h.max, h.num), (3.0, 5.0, 2.0));
        let unseen = vec![BlockRecord::unseen(0)];
        let none = loss_histogram(&unseen, LossMetric::LastLoss, 2).expect("in memory");
        assert!(none.is_none());
        let empty = Vec::<BlockRecord>::new();
        assert_eq!(forgotten_fraction(&empty).expect("in memory"), 0.0);
    }
}
