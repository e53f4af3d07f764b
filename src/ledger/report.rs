//! `syllabus ledger RUN_DIR`: a summary of a run's ledger, as data (`--json`) or text.
//!
//! Everything is one streaming O(N) pass over the records (see `scan.rs`) plus work on the
//! seen losses: the quantiles use `select_nth_unstable` on a `Vec<f32>` of the seen blocks'
//! losses (exact, 4 bytes per seen block: 400 MB at 10^8 blocks, acceptable for an offline
//! report), and the histogram buckets the same vector. The ledger is opened read-only through
//! the seqlock, so the report works while the run trains; the scan checks every record's
//! checksum as it reads it (so opening does not verify the file a second time), and a damaged
//! record fails the report with an error naming the file and the block.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::file::LEDGER_FILE;
use super::preview::RunData;
use super::reader::LedgerReader;
use super::scan::Scan;
use super::stats::{quantiles, LossMetric, Ranked};
use super::LedgerError;
use crate::logging::Histogram;

/// LFR (arXiv 2409.06131 v1), GPT-2 on OpenWebText over 8 epochs: share of blocks forgotten
/// at least once.
pub const PAPER_SHARE_FORGOTTEN: f64 = 0.25;
/// The same, share of the forgotten blocks that were forgotten more than once.
pub const PAPER_SHARE_FORGOTTEN_MORE_THAN_ONCE: f64 = 0.82;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportOptions {
    /// Blocks in each of the hardest / easiest lists.
    pub top_k: usize,
    /// Rows of the loss histogram.
    pub bins: usize,
    /// Characters of decoded text per listed block; 0 = no previews (skips loading the data).
    pub preview_chars: usize,
    /// The per-block loss summarised.
    pub metric: LossMetric,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            top_k: 10,
            bins: 20,
            preview_chars: 100,
            metric: LossMetric::LastLoss,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LedgerReport {
    pub ledger_path: String,
    pub run_id: u64,
    /// Step of the ledger's last consistent flush.
    pub generation: u64,
    pub block_len: u32,
    pub metric: LossMetric,
    pub blocks_total: u64,
    pub blocks_seen: u64,
    pub blocks_never_seen: u64,
    /// `blocks_seen / blocks_total`; `None` for an empty ledger.
    pub share_seen: Option<f64>,
    /// Training samples recorded: the sum of `times_trained`.
    pub samples_total: u64,
    /// `None` when no block was seen.
    pub loss: Option<LossSummary>,
    /// Highest loss first.
    pub hardest: Vec<BlockSummary>,
    /// Lowest loss first.
    pub easiest: Vec<BlockSummary>,
    pub sources: Vec<SourceSummary>,
    pub forgetting: ForgettingSummary,
    /// Why source names or previews are missing, if they are.
    pub data_note: Option<String>,
}

/// Distribution of the metric over seen blocks (nearest-rank quantiles).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossSummary {
    pub min: f64,
    pub p10: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub max: f64,
    pub mean: f64,
    pub histogram: Vec<HistogramBin>,
}

/// Bucket `[lo, hi)`; the last one includes `hi` (= max).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramBin {
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockSummary {
    pub id: u64,
    pub loss: f32,
    pub times_trained: u32,
    pub last_step: u32,
    pub forget_events: u16,
    pub source: String,
    /// One line of decoded text (newlines as `⏎`), truncated; `None` without data.
    pub preview: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceSummary {
    pub id: u16,
    pub name: String,
    pub blocks: u64,
    pub seen: u64,
    /// Mean metric over the source's seen blocks.
    pub mean_loss: Option<f64>,
    /// Sum of `times_trained` over the source's blocks.
    pub samples: u64,
    /// `samples / samples_total`.
    pub sample_share: Option<f64>,
}

/// Forgetting events as counted by `UpdateRule` (fall by more than the tolerance, then rise
/// by more than it), next to the LFR paper's numbers. Shares are of seen blocks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForgettingSummary {
    /// Blocks trained at least 3 times: a forgetting event needs a first sight, a fall and a
    /// rise, so only these can have one.
    pub blocks_trained_3_plus: u64,
    pub forgotten_at_least_once: u64,
    pub forgotten_more_than_once: u64,
    pub share_forgotten: Option<f64>,
    /// `forgotten_more_than_once / forgotten_at_least_once`.
    pub share_more_than_once_of_forgotten: Option<f64>,
    /// Mean `forget_events` per seen block.
    pub mean_events: Option<f64>,
    pub paper_share_forgotten: f64,
    pub paper_share_more_than_once_of_forgotten: f64,
}

/// Builds the report of `RUN_DIR/ledger.bin`. Source names and previews come from the run's
/// prepared data (`config.toml` -> `data.prepared_dir`); if that is gone or does not match,
/// the report says so in `data_note` instead of failing.
pub fn build_report(run_dir: &Path, opts: &ReportOptions) -> Result<LedgerReport, LedgerError> {
    let path = run_dir.join(LEDGER_FILE);
    let reader = LedgerReader::open_unverified(&path)?;
    let header = reader.header();
    let mut scan = Scan::run(&reader, opts.metric, opts.top_k)?;
    let want_text = opts.preview_chars > 0 && opts.top_k > 0 && scan.seen > 0;
    let data = RunData::load(run_dir, &header, want_text);
    let loss = loss_summary(&mut scan.losses, scan.loss_sum, opts.bins);
    let list = |v: Vec<Ranked>| -> Vec<BlockSummary> {
        v.iter()
            .map(|r| block_summary(r, &data, opts.preview_chars))
            .collect()
    };
    let sources = source_summaries(&scan, &data);
    let forgetting = forgetting_summary(&scan);
    let hardest = list(scan.hardest.into_sorted());
    let easiest = list(scan.easiest.into_sorted());
    Ok(LedgerReport {
        ledger_path: path.display().to_string(),
        run_id: header.run_id,
        generation: header.generation,
        block_len: header.block_len,
        metric: opts.metric,
        blocks_total: scan.total,
        blocks_seen: scan.seen,
        blocks_never_seen: scan.total - scan.seen,
        share_seen: ratio(scan.seen, scan.total),
        samples_total: scan.samples,
        loss,
        hardest,
        easiest,
        sources,
        forgetting,
        data_note: data.note.clone(),
    })
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

fn loss_summary(losses: &mut [f32], sum: f64, bins: usize) -> Option<LossSummary> {
    let hist = Histogram::from_values(losses, bins)?;
    let histogram = hist
        .bucket_limits
        .iter()
        .zip(&hist.bucket_counts)
        .scan(hist.min, |lo, (&hi, &count)| {
            let bin = HistogramBin {
                lo: *lo,
                hi,
                count: count as u64,
            };
            *lo = hi;
            Some(bin)
        })
        .collect();
    let q = quantiles(losses, &[0.1, 0.25, 0.5, 0.75, 0.9]);
    let at = |i: usize| q.get(i).copied().map_or(f64::NAN, f64::from);
    Some(LossSummary {
        min: hist.min,
        p10: at(0),
        p25: at(1),
        p50: at(2),
        p75: at(3),
        p90: at(4),
        max: hist.max,
        mean: sum / losses.len() as f64,
        histogram,
    })
}

fn block_summary(r: &Ranked, data: &RunData, preview_chars: usize) -> BlockSummary {
    BlockSummary {
        id: r.id,
        loss: r.loss,
        times_trained: r.record.times_trained,
        last_step: r.record.last_step,
        forget_events: r.record.forget_events,
        source: data.source_name(r.record.source),
        preview: data.preview(r.id, preview_chars),
    }
}

fn source_summaries(scan: &Scan, data: &RunData) -> Vec<SourceSummary> {
    scan.per_source
        .iter()
        .enumerate()
        .filter(|(_, acc)| acc.blocks > 0)
        .map(|(id, acc)| {
            // Fits: per_source is indexed by a u16 source id.
            let id = id as u16;
            SourceSummary {
                id,
                name: data.source_name(id),
                blocks: acc.blocks,
                seen: acc.seen,
                mean_loss: (acc.seen_finite > 0).then(|| acc.loss_sum / acc.seen_finite as f64),
                samples: acc.samples,
                sample_share: ratio(acc.samples, scan.samples),
            }
        })
        .collect()
}

fn forgetting_summary(scan: &Scan) -> ForgettingSummary {
    ForgettingSummary {
        blocks_trained_3_plus: scan.trained_3_plus,
        forgotten_at_least_once: scan.forgotten_once,
        forgotten_more_than_once: scan.forgotten_more,
        share_forgotten: ratio(scan.forgotten_once, scan.seen),
        share_more_than_once_of_forgotten: ratio(scan.forgotten_more, scan.forgotten_once),
        mean_events: (scan.seen > 0).then(|| scan.events as f64 / scan.seen as f64),
        paper_share_forgotten: PAPER_SHARE_FORGOTTEN,
        paper_share_more_than_once_of_forgotten: PAPER_SHARE_FORGOTTEN_MORE_THAN_ONCE,
    }
}
