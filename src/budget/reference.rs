//! Reference throughput: the tokens/s that turns accelerator hours into steps (Languini's
//! `throughput_test`, arXiv 2309.11197): random token ids, warm-up steps, then timed forward +
//! backward + optimizer steps with data loading excluded; tokens/s = tokens per step / mean step
//! time. The forward-only rate of the same batches is measured alongside, to charge policies'
//! extra scoring work. Written once as JSON (`syllabus throughput`), never re-measured mid-run.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::BudgetError;
use crate::config::Config;
use crate::fsutil::{from_checksummed_json, to_checksummed_json, write_atomic};
use crate::model::Architecture;
use crate::perf::{bench, BenchOptions};

pub const THROUGHPUT_FORMAT: &str = "syllabus-throughput";
pub const THROUGHPUT_VERSION: u32 = 1;
/// Languini's protocol: 5 warm-up rounds, then ~15 timed ones.
pub const LANGUINI_WARMUP: usize = 5;
pub const LANGUINI_TIMED: usize = 15;
/// Forward-only work costs a third of a training step per token when nothing was measured:
/// 2N of the 6N FLOPs per token (Kaplan et al. 2020).
pub const FORWARD_COST_BY_FLOPS: f64 = 1.0 / 3.0;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThroughputReference {
    pub format: String,
    pub format_version: u32,
    /// Training tokens per second (mean step).
    pub tokens_per_s: f64,
    /// Forward-only tokens per second on the same batches.
    pub forward_tokens_per_s: f64,
    /// `measured` or `config` (a number given in `[budget] tokens_per_s`).
    pub source: String,
    pub device: String,
    pub threads: usize,
    pub dtype: String,
    /// Sequences per micro-batch x micro-batches per step.
    pub batch_size: usize,
    pub grad_accum: usize,
    pub context: usize,
    /// The architecture the rate belongs to (files from before architectures were plugins:
    /// absent, meaning gpt2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The model shape the rate belongs to (a rate only converts hours for the same model).
    pub model: Option<toml::Table>,
    pub warmup_steps: usize,
    pub timed_steps: usize,
    /// Step times of the measurement (absent for a rate given in the config).
    pub step_ms_mean: Option<f64>,
    pub step_ms_median: Option<f64>,
    pub syllabus_version: String,
    pub candle_version: String,
    pub measured_unix: u64,
}

impl ThroughputReference {
    /// A published figure given in the config (`[budget] tokens_per_s`): no model or device
    /// attached, forward-only work charged by FLOPs.
    pub fn from_rate(
        tokens_per_s: f64,
        batch_size: usize,
        grad_accum: usize,
        context: usize,
    ) -> Self {
        Self {
            format: THROUGHPUT_FORMAT.into(),
            format_version: THROUGHPUT_VERSION,
            tokens_per_s,
            forward_tokens_per_s: tokens_per_s / FORWARD_COST_BY_FLOPS,
            source: "config".into(),
            device: "reference device (given in config)".into(),
            threads: 0,
            dtype: "unknown".into(),
            batch_size,
            grad_accum,
            context,
            arch: None,
            model: None,
            warmup_steps: 0,
            timed_steps: 0,
            step_ms_mean: None,
            step_ms_median: None,
            syllabus_version: env!("CARGO_PKG_VERSION").into(),
            candle_version: env!("SYLLABUS_CANDLE_VERSION").into(),
            measured_unix: crate::fsutil::unix_now(),
        }
    }

    /// Cost of one forward-only token relative to one training token.
    pub fn forward_cost(&self) -> f64 {
        self.tokens_per_s / self.forward_tokens_per_s
    }

    /// Reads and checks a reference file; `model` is the run's shape, which must match.
    pub fn read(path: &Path, model: &dyn Architecture) -> Result<Self, BudgetError> {
        let bad = |message: String| BudgetError::Reference {
            path: path.to_path_buf(),
            message,
        };
        let text = fs::read(path).map_err(|e| bad(e.to_string()))?;
        // Files `syllabus throughput` writes carry a checksum (an edit is caught); a reference
        // written by hand (a published figure) may have none.
        let r: Self = from_checksummed_json(&text, false).map_err(|e| bad(e.to_string()))?;
        if r.format != THROUGHPUT_FORMAT || r.format_version != THROUGHPUT_VERSION {
            return Err(bad(format!(
                "format {:?} v{}, expected {THROUGHPUT_FORMAT:?} v{THROUGHPUT_VERSION}",
                r.format, r.format_version
            )));
        }
        let rates = [r.tokens_per_s, r.forward_tokens_per_s];
        if rates.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
            return Err(bad(format!("rates must be > 0 tokens/s, got {rates:?}")));
        }
        if let Some(m) = &r.model {
            let arch = r.arch.as_deref().unwrap_or("gpt2");
            let ours = model.resolved();
            if arch != model.name() || *m != ours {
                return Err(bad(format!(
                    "measured for another model ({arch} {m}); this run's model is {} {ours}: \
                     measure it with `syllabus throughput --config <this config>`",
                    model.name()
                )));
            }
        }
        Ok(r)
    }

    /// Writes atomically (temp file + rename), so a crash never leaves half a file.
    pub fn write(&self, path: &Path) -> Result<(), BudgetError> {
        let io = |source| BudgetError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let bytes = to_checksummed_json(self).map_err(|e| BudgetError::Reference {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        write_atomic(path, &bytes).map_err(io)
    }
}

/// Measures the reference throughput of `config`'s model, batch and device.
pub fn measure(
    config: &Config,
    warmup: usize,
    timed: usize,
) -> Result<ThroughputReference, BudgetError> {
    let r = bench(
        config,
        BenchOptions {
            warmup_steps: warmup,
            timed_steps: timed,
        },
    )?;
    let tokens = (r.batch_size * r.grad_accum * r.context) as f64;
    Ok(ThroughputReference {
        format: THROUGHPUT_FORMAT.into(),
        format_version: THROUGHPUT_VERSION,
        tokens_per_s: tokens / (r.step_ms_mean / 1e3),
        forward_tokens_per_s: tokens / (r.forward_only_ms / 1e3),
        source: "measured".into(),
        device: r.device,
        threads: r.threads,
        dtype: r.precision.clone(),
        batch_size: r.batch_size,
        grad_accum: r.grad_accum,
        context: r.context,
        arch: Some(config.arch().name().to_string()),
        model: Some(config.arch().resolved()),
        warmup_steps: warmup,
        timed_steps: timed,
        step_ms_mean: Some(r.step_ms_mean),
        step_ms_median: Some(r.step_ms),
        syllabus_version: env!("CARGO_PKG_VERSION").into(),
        candle_version: env!("SYLLABUS_CANDLE_VERSION").into(),
        measured_unix: crate::fsutil::unix_now(),
    })
}
