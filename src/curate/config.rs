//! The curation config: one TOML file, one table per stage. A stage runs when its table is
//! present (and `enabled` is not false). Every struct rejects unknown keys; [`CurateConfig::parse`]
//! reports every unknown key and every bad value together, one per line.
//!
//! Defaults follow DCLM-Baseline (Li et al. 2024, arXiv 2406.11794, appendix on the RefinedWeb
//! reproduction) unless a field says otherwise.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::heuristics::HeuristicsConfig;
use super::CurateError;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurateConfig {
    /// Input files or directories (JSONL with `text` and optional `source`, optionally `.gz`).
    pub inputs: Vec<PathBuf>,
    /// Seeds every hash the pipeline draws from (MinHash permutations, mixing). Default 0.
    #[serde(default)]
    pub seed: u64,
    /// Text read per streaming batch, in MiB. Default 16.
    #[serde(default = "default_batch_mib")]
    pub batch_mib: usize,
    pub output: OutputConfig,
    #[serde(default)]
    pub report: ReportConfig,
    pub exact: Option<ExactConfig>,
    pub heuristics: Option<HeuristicsConfig>,
    pub minhash: Option<MinHashConfig>,
    pub bloom: Option<BloomConfig>,
    pub quality: Option<QualityConfig>,
    pub mix: Option<MixConfig>,
}

fn default_batch_mib() -> usize {
    16
}
fn yes() -> bool {
    true
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputFormat {
    /// Zstandard-compressed JSONL shards (`.jsonl.zst`).
    #[serde(rename = "jsonl.zst")]
    JsonlZst,
    /// Plain JSONL shards (`.jsonl`).
    #[serde(rename = "jsonl")]
    Jsonl,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Directory for the shards and the report; must not exist unless `--overwrite`.
    pub dir: PathBuf,
    /// `"jsonl.zst"` (default) or `"jsonl"`.
    #[serde(default = "default_format")]
    pub format: OutputFormat,
    /// Uncompressed text per shard, in MiB; a shard closes after the document that crosses
    /// it. Default 256.
    #[serde(default = "default_shard_mib")]
    pub shard_mib: usize,
    /// Zstandard level (1..=19). Default 3.
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
}

fn default_format() -> OutputFormat {
    OutputFormat::JsonlZst
}
fn default_shard_mib() -> usize {
    256
}
fn default_zstd_level() -> i32 {
    3
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Removed-text examples kept per rule. Default 3.
    #[serde(default = "default_examples")]
    pub examples: usize,
    /// Characters kept of each example. Default 200.
    #[serde(default = "default_example_chars")]
    pub example_chars: usize,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            examples: default_examples(),
            example_chars: default_example_chars(),
        }
    }
}
fn default_examples() -> usize {
    3
}
fn default_example_chars() -> usize {
    200
}

/// Exact dedup by a 64-bit hash of the normalised text (see `normalize.rs`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExactConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// MinHash + LSH near-duplicate removal over word n-gram shingles of the normalised text.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinHashConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Hash functions per signature; must equal `bands * rows`. Default 128.
    #[serde(default = "default_num_perm")]
    pub num_perm: usize,
    /// LSH bands. Default 16.
    #[serde(default = "default_bands")]
    pub bands: usize,
    /// Signature rows per band. Default 8.
    #[serde(default = "default_rows")]
    pub rows: usize,
    /// Words per shingle. Default 5.
    #[serde(default = "default_shingle")]
    pub ngram: usize,
    /// A candidate pair is a duplicate when its estimated Jaccard similarity is at least
    /// this. Default 0.8.
    #[serde(default = "default_jaccard")]
    pub threshold: f64,
}

impl Default for MinHashConfig {
    fn default() -> Self {
        MinHashConfig {
            enabled: true,
            num_perm: default_num_perm(),
            bands: default_bands(),
            rows: default_rows(),
            ngram: default_shingle(),
            threshold: default_jaccard(),
        }
    }
}
fn default_num_perm() -> usize {
    128
}
fn default_bands() -> usize {
    16
}
fn default_rows() -> usize {
    8
}
fn default_shingle() -> usize {
    5
}
fn default_jaccard() -> f64 {
    0.8
}

/// BFF-style Bloom-filter n-gram dedup (DCLM's final dedup), "old-both" mode.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BloomConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Words per n-gram. Default 13 (DCLM).
    #[serde(default = "default_bloom_ngram")]
    pub ngram: usize,
    /// Target false-positive rate at `expected_ngrams` insertions. Default 0.01.
    #[serde(default = "default_fp")]
    pub fp_rate: f64,
    /// N-grams the filter is sized for; its memory is about
    /// `-expected_ngrams * ln(fp_rate) / ln(2)^2` bits. Default 50,000,000 (~60 MB at 1%).
    #[serde(default = "default_expected")]
    pub expected_ngrams: u64,
    /// A paragraph (or document) whose fraction of already-seen n-grams is at least this is
    /// removed. Default 0.8 (DCLM).
    #[serde(default = "default_bloom_threshold")]
    pub threshold: f64,
}

impl Default for BloomConfig {
    fn default() -> Self {
        BloomConfig {
            enabled: true,
            ngram: default_bloom_ngram(),
            fp_rate: default_fp(),
            expected_ngrams: default_expected(),
            threshold: default_bloom_threshold(),
        }
    }
}
fn default_bloom_ngram() -> usize {
    13
}
fn default_fp() -> f64 {
    0.01
}
fn default_expected() -> u64 {
    50_000_000
}
fn default_bloom_threshold() -> f64 {
    0.8
}

/// fastText quality filter. Exactly one of `threshold` and `keep_fraction`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A fastText supervised `.bin` (ours from `curate train-classifier`, or DCLM's).
    pub model: PathBuf,
    /// The positive label. Default `"__label__hq"` (DCLM's).
    #[serde(default = "default_label")]
    pub label: String,
    /// Keep documents with P(label) >= threshold.
    pub threshold: Option<f64>,
    /// Keep this top fraction by P(label) (ties broken by input order).
    pub keep_fraction: Option<f64>,
}

pub(crate) fn default_label() -> String {
    "__label__hq".into()
}

/// Per-source up/down-sampling: weight `w` gives `floor(w)` copies plus one more with
/// probability `w - floor(w)`, decided by a seeded hash of the text. Unlisted sources weigh 1.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub weights: BTreeMap<String, f64>,
}

impl CurateConfig {
    /// Parses and validates TOML text (named `origin` in messages).
    pub fn parse(text: &str, origin: &str) -> Result<CurateConfig, CurateError> {
        let invalid = |problems| CurateError::Config {
            path: origin.to_string(),
            problems,
        };
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| invalid(vec![e.to_string()]))?;
        let mut problems = Vec::new();
        // Serde stops at the first unknown key: list them all, then check the values of the
        // rest so one run reports everything.
        super::keys::unknown_keys(&mut table, &super::keys::full_schema(), "", &mut problems);
        let config: CurateConfig = match table.try_into() {
            Ok(c) => c,
            Err(e) => {
                problems.push(e.message().to_string());
                return Err(invalid(problems));
            }
        };
        problems.extend(config.problems());
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(invalid(problems))
        }
    }

    /// Reads and validates a config file.
    pub fn load(path: &std::path::Path) -> Result<CurateConfig, CurateError> {
        let text = std::fs::read_to_string(path).map_err(|e| CurateError::io(path, e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Every problem with the values (keys were checked during parsing).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.inputs.is_empty() {
            p.push("inputs is empty: give at least one file or directory".into());
        }
        if self.batch_mib == 0 {
            p.push("batch_mib must be > 0".into());
        }
        let o = &self.output;
        if o.dir.as_os_str().is_empty() {
            p.push("output.dir is empty".into());
        }
        if o.shard_mib == 0 {
            p.push("output.shard_mib must be > 0".into());
        }
        if !(1..=19).contains(&o.zstd_level) {
            p.push(format!(
                "output.zstd_level must be in 1..=19, got {}",
                o.zstd_level
            ));
        }
        if let Some(h) = &self.heuristics {
            p.extend(h.problems());
        }
        if let Some(m) = &self.minhash {
            minhash_problems(m, &mut p);
        }
        if let Some(b) = &self.bloom {
            bloom_problems(b, &mut p);
        }
        if let Some(q) = &self.quality {
            quality_problems(q, &mut p);
        }
        for (source, w) in self.mix.iter().flat_map(|m| &m.weights) {
            if !(w.is_finite() && *w >= 0.0) {
                p.push(format!(
                    "mix.weights.{source} must be a number >= 0, got {w}"
                ));
            }
        }
        p
    }
}

/// Pushes a problem unless `lo <= v <= hi` (`lo_open`: `lo < v`).
pub(crate) fn check_range(
    name: &str,
    v: f64,
    lo: f64,
    hi: f64,
    lo_open: bool,
    p: &mut Vec<String>,
) {
    let ok = v <= hi && if lo_open { v > lo } else { v >= lo };
    if !ok {
        let open = if lo_open { "(" } else { "[" };
        p.push(format!("{name} must be in {open}{lo}, {hi}], got {v}"));
    }
}

fn minhash_problems(m: &MinHashConfig, p: &mut Vec<String>) {
    if m.num_perm == 0 || m.bands == 0 || m.rows == 0 || m.ngram == 0 {
        p.push("minhash.num_perm, bands, rows and ngram must all be > 0".into());
    } else if m.bands * m.rows != m.num_perm {
        p.push(format!(
            "minhash.bands * minhash.rows ({} * {}) must equal minhash.num_perm ({})",
            m.bands, m.rows, m.num_perm
        ));
    }
    check_range("minhash.threshold", m.threshold, 0.0, 1.0, true, p);
}

fn bloom_problems(b: &BloomConfig, p: &mut Vec<String>) {
    if b.ngram == 0 {
        p.push("bloom.ngram must be > 0".into());
    }
    if b.expected_ngrams == 0 {
        p.push("bloom.expected_ngrams must be > 0".into());
    }
    if !(b.fp_rate > 0.0 && b.fp_rate < 0.5) {
        p.push(format!(
            "bloom.fp_rate must be in (0, 0.5), got {}",
            b.fp_rate
        ));
    }
    check_range("bloom.threshold", b.threshold, 0.0, 1.0, true, p);
}

fn quality_problems(q: &QualityConfig, p: &mut Vec<String>) {
    if q.model.as_os_str().is_empty() {
        p.push("quality.model is empty: give a fastText .bin".into());
    }
    if q.label.is_empty() {
        p.push("quality.label is empty".into());
    }
    match (q.threshold, q.keep_fraction) {
        (Some(t), None) => check_range("quality.threshold", t, 0.0, 1.0, false, p),
        (None, Some(f)) => check_range("quality.keep_fraction", f, 0.0, 1.0, true, p),
        _ => p.push("quality: give exactly one of threshold and keep_fraction".into()),
    }
}
