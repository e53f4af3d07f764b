//! Evaluating a saved checkpoint of a run (`syllabus eval`): load, run the suite, store the
//! results in `eval.json` and log them at the checkpoint's step.

use std::path::{Path, PathBuf};

use candle_core::Device;

use std::sync::Arc;

use super::{checkpoint, TrainError};
use crate::config::Config;
use crate::data::{self, TokenStore};
use crate::eval::{locate_tasks_dir, log_scalars, resolve, run_suite, write_eval_json};
use crate::eval::{EvalError, TaskSelection};
use crate::eval::{SuiteOptions, SuiteReport};
use crate::logging::{LoggerOptions, MetricsLogger};
use crate::model::BuildOptions;

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
            e.tasks_dir = Some(d.clone());
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
) -> Result<CheckpointEval, TrainError> {
    let path = match checkpoint {
        Some(p) => p.to_path_buf(),
        None => checkpoint::latest(run_dir)?.ok_or_else(|| {
            TrainError::RunDir(format!(
                "{}: no complete checkpoint to evaluate",
                run_dir.display()
            ))
        })?,
    };
    let ckpt = checkpoint::load_for(&path, config.arch(), device)?;
    let step = ckpt.manifest.state.step;
    let config = overrides.apply(config);
    let prepared = &config.data.prepared_dir;
    let val = if data::is_prepared(prepared) {
        Some(data::load_prepared(prepared)?.val)
    } else {
        None
    };
    let mut opts = suite_options(&config, val)?;
    opts.quiet = overrides.quiet;
    let model = ckpt.arch.build(&ckpt.params, BuildOptions::inference())?;
    let tokenizer = super::load_run_tokenizer(run_dir)?;
    let report = run_suite(model.as_ref(), &tokenizer, &opts, device)?;
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

/// Suite options from a run's `[eval]` config. `val` is the run's prepared validation split
/// (`None` when it is not available: auto mode then skips `val`).
pub fn suite_options(
    config: &Config,
    val: Option<Arc<TokenStore>>,
) -> Result<SuiteOptions, EvalError> {
    let e = &config.eval;
    let context = config.context();
    let selection = TaskSelection::parse(&e.tasks)?;
    let tasks_dir = locate_tasks_dir(e.tasks_dir.as_deref());
    match &e.tasks_dir {
        Some(configured) if *configured != tasks_dir => eprintln!(
            "eval: task files from {} ({} does not exist)",
            tasks_dir.display(),
            configured.display()
        ),
        _ => {}
    }
    let (tasks, skipped) = resolve(&selection, &tasks_dir, val.is_some())?;
    Ok(SuiteOptions {
        tasks,
        skipped,
        tasks_dir,
        task_limit: e.task_limit,
        ppl_max_tokens: e.ppl_max_tokens,
        context,
        stride: e.stride.unwrap_or((context / 4).max(1)),
        batch_size: e.batch_size,
        val,
        quiet: false,
    })
}
