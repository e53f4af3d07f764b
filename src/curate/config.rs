//! The curation config: one TOML file, one table per stage. A stage runs when its table is
//! present (and `enabled` is not false). Every struct rejects unknown keys; [`CurateConfig::parse`]
//! reports every unknown key and every bad value together, one per line.
//!
//! Defaults follow DCLM-Baseline (Li et al. 2024, arXiv 2406.11794, appendix on the RefinedWeb
//! reproduction) unless a field says otherwise.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use super::bloom::BloomConfig;
use super::checks::{check_range, yes};
use super::heuristics::HeuristicsConfig;
pub use super::minhash::MinHashConfig;
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
        super::keys::unknown_keys(&mut table, &full_schema(), "", &mut problems);
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
            m.problems(&mut p);
        }
        if let Some(b) = &self.bloom {
            b.problems(&mut p);
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

/// A config with every table present and every optional key set: the key schema.
fn full_schema() -> toml::Table {
    let full = CurateConfig {
        inputs: vec![],
        seed: 0,
        batch_mib: 1,
        output: OutputConfig {
            dir: "x".into(),
            format: OutputFormat::Jsonl,
            shard_mib: 1,
            zstd_level: 1,
        },
        report: ReportConfig::default(),
        exact: Some(ExactConfig::default()),
        heuristics: Some(HeuristicsConfig::default()),
        minhash: Some(MinHashConfig::default()),
        bloom: Some(BloomConfig::default()),
        quality: Some(QualityConfig {
            threshold: Some(0.5),
            keep_fraction: Some(0.5),
            ..QualityConfig::default()
        }),
        mix: Some(MixConfig::default()),
    };
    toml::Table::try_from(&full).unwrap_or_default()
}
