//! Evaluating a saved checkpoint of a run (`syllabus eval`, the sweep runner): load, run the
//! suite, store the results in `eval.json` and log them at the checkpoint's step.

use std::path::{Path, PathBuf};

use candle_core::Device;

use super::report::{log_scalars, write_eval_json};
use super::suite::{run_suite, SuiteOptions, SuiteReport};
use super::EvalError;
use crate::config::Config;
use crate::data::{self, Gpt2Tokenizer};
use crate::logging::{LoggerOptions, MetricsLogger};
use crate::model::Gpt;
use crate::train::checkpoint;

/// Replacements for the run's `[eval]` settings (command-line flags); `None` keeps the config's.
#[derive(Clone, Debug, Default)]
pub struct EvalOverrides {
    pub tasks: Option<Vec<String>>,
    pub tasks_dir: Option<PathBuf>,
    pub task_limit: Option<usize>,
    pub ppl_max_tokens: Option<usize>,
    pub stride: Option<usize>,
    pub batch_size: Option<usize>,
    pub quiet: bool,
}

impl EvalOverrides {
    /// The run's config with these overrides applied to `[eval]`.
    pub fn apply(&self, config: &Config) -> Config {
        let mut c = config.clone();
        let e = &mut c.eval;
        if let Some(t) = &self.tasks {
            e.tasks = t.clone();
        }
        if let Some(d) = &self.tasks_dir {
            e.tasks_dir = d.clone();
        }
        e.task_limit = self.task_limit.unwrap_or(e.task_limit);
        e.ppl_max_tokens = self.ppl_max_tokens.unwrap_or(e.ppl_max_tokens);
        e.stride = self.stride.or(e.stride);
        e.batch_size = self.batch_size.unwrap_or(e.batch_size);
        c
    }
}

/// What [`evaluate_checkpoint`] did.
#[derive(Debug)]
pub struct CheckpointEval {
    pub step: u64,
    pub checkpoint: PathBuf,
    pub report: SuiteReport,
    /// `run_dir/eval.json`.
    pub eval_json: PathBuf,
}

/// Evaluates `checkpoint` (default: the run's newest complete one) of the run in `run_dir`,
/// whose config is `config` (its `config.toml`). Writes `run_dir/eval.json` and logs the
/// `eval/...` scalars at the checkpoint's step into the run's TensorBoard / JSONL outputs.
pub fn evaluate_checkpoint(
    run_dir: &Path,
    config: &Config,
    checkpoint: Option<&Path>,
    overrides: &EvalOverrides,
    device: &Device,
) -> Result<CheckpointEval, EvalError> {
    let path = match checkpoint {
        Some(p) => p.to_path_buf(),
        None => checkpoint::latest(run_dir)?.ok_or_else(|| {
            EvalError::Invalid(format!(
                "{}: no complete checkpoint to evaluate",
                run_dir.display()
            ))
        })?,
    };
    let ckpt = checkpoint::load(&path, device)?;
    let step = ckpt.manifest.state.step;
    let config = overrides.apply(config);
    let prepared = &config.data.prepared_dir;
    let val = if data::is_prepared(prepared) {
        Some(data::load_prepared(prepared)?.val)
    } else {
        None
    };
    let mut opts = SuiteOptions::from_config(&config, val)?;
    opts.quiet = overrides.quiet;
    let gpt = Gpt::new_inference(&ckpt.manifest.model, &ckpt.params)?;
    let report = run_suite(&gpt, &Gpt2Tokenizer::new()?, &opts, device)?;
    let eval_json = write_eval_json(run_dir, step, Some(&path), &report)?;
    let mut logger = MetricsLogger::open(
        run_dir,
        LoggerOptions {
            tensorboard: config.logging.tensorboard,
            jsonl: config.logging.jsonl,
            ..Default::default()
        },
    )?;
    log_scalars(&mut logger, &report, step);
    logger.close()?;
    Ok(CheckpointEval {
        step,
        checkpoint: path,
        report,
        eval_json,
    })
}
