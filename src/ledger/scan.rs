//! The report's single streaming pass over the ledger: counts, seen losses, top-k lists,
//! per-source sums and forgetting counts, all accumulated record by record. Every record is
//! checked against its checksum as it is read, so a damaged ledger fails the report instead of
//! being summarised.

use super::record::LedgerRead;
use super::stats::{LossMetric, Ranked, TopK};
use super::LedgerError;

/// Per-source accumulators.
#[derive(Clone, Debug, Default)]
pub(super) struct SourceAcc {
    pub blocks: u64,
    pub seen: u64,
    /// Seen blocks with a finite metric (all of them, unless the file was damaged).
    pub seen_finite: u64,
    pub loss_sum: f64,
    pub samples: u64,
}

pub(super) struct Scan {
    pub total: u64,
    pub seen: u64,
    pub samples: u64,
    pub trained_3_plus: u64,
    /// The metric of every seen block (finite values only).
    pub losses: Vec<f32>,
    pub loss_sum: f64,
    pub hardest: TopK,
    pub easiest: TopK,
    /// Indexed by source id.
    pub per_source: Vec<SourceAcc>,
    pub forgotten_once: u64,
    pub forgotten_more: u64,
    pub events: u64,
}

impl Scan {
    /// One pass over `ledger`: O(N log k) time; memory O(seen + k + sources). Stops at the
    /// first record that fails its checksum.
    pub(super) fn run(
        ledger: &(impl LedgerRead + ?Sized),
        metric: LossMetric,
        k: usize,
    ) -> Result<Scan, LedgerError> {
        let mut s = Scan {
            total: ledger.len() as u64,
            seen: 0,
            samples: 0,
            trained_3_plus: 0,
            losses: Vec::new(),
            loss_sum: 0.0,
            hardest: TopK::new(k, true),
            easiest: TopK::new(k, false),
            per_source: Vec::new(),
            forgotten_once: 0,
            forgotten_more: 0,
            events: 0,
        };
        for id in 0..ledger.len() {
            s.add(id as u64, ledger.checked_record(id)?, metric);
        }
        Ok(s)
    }

    fn add(&mut self, id: u64, r: super::BlockRecord, metric: LossMetric) {
        let src = usize::from(r.source);
        if src >= self.per_source.len() {
            self.per_source.resize(src + 1, SourceAcc::default());
        }
        let acc = &mut self.per_source[src];
        acc.blocks += 1;
        if !r.seen() {
            return;
        }
        acc.seen += 1;
        acc.samples += u64::from(r.times_trained);
        self.seen += 1;
        self.samples += u64::from(r.times_trained);
        self.trained_3_plus += u64::from(r.times_trained >= 3);
        self.forgotten_once += u64::from(r.forget_events >= 1);
        self.forgotten_more += u64::from(r.forget_events >= 2);
        self.events += u64::from(r.forget_events);
        let loss = metric.of(&r);
        if loss.is_finite() {
            acc.seen_finite += 1;
            acc.loss_sum += f64::from(loss);
            self.losses.push(loss);
            self.loss_sum += f64::from(loss);
            let ranked = Ranked {
                loss,
                id,
                record: r,
            };
            self.hardest.push(ranked);
            self.easiest.push(ranked);
        }
    }
}
