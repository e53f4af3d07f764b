//! Config structs. Units and defaults are documented on each field; a missing section or key
//! takes its default.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use super::sampling::SamplingConfig;
use crate::ledger::UpdateRule;
use crate::model::Precision;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub run: RunConfig,
    pub data: DataConfig,
    pub model: super::ModelConfig,
    #[serde(default)]
    pub optim: OptimConfig,
    #[serde(default)]
    pub schedule: ScheduleConfig,
    pub train: TrainConfig,
    /// `[budget]`: how much compute the run may spend (steps, tokens, FLOPs or
    /// accelerator-hours). Required.
    pub budget: super::BudgetConfig,
    #[serde(default)]
    pub eval: EvalConfig,
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    #[serde(default)]
    pub logging: LoggingConfig,
    #[serde(default)]
    pub sampling: SamplingConfig,
    /// `[ledger]`: EMA weight and forgetting tolerance of the per-block update.
    #[serde(default)]
    pub ledger: UpdateRule,
    /// `[perf]`: the peak FLOP/s MFU is reported against.
    #[serde(default)]
    pub perf: crate::device::PerfConfig,
    /// The architecture `model` resolves to, set when the config is loaded.
    #[serde(skip)]
    pub(super) resolved: super::model::ResolvedArch,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Run name, used in the default output directory. Default `"run"`.
    pub name: String,
    /// Run directory (checkpoints, events, metrics.jsonl, config.toml). Default `runs/<name>`.
    pub out_dir: Option<PathBuf>,
    /// Seed of the one RNG behind init, data order and sampling. Default 1337.
    pub seed: u64,
    /// `"cpu"`, `"cuda"` (= `"cuda:0"`) or `"cuda:N"` (needs a binary built with
    /// `--features cuda`, see scripts/build-cuda.sh; never falls back to the CPU). Default `"cpu"`.
    pub device: String,
    /// CPU threads for candle/rayon; 0 = all cores. Bit-exact determinism holds per thread
    /// count. Default 0.
    pub threads: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            name: "run".into(),
            out_dir: None,
            seed: 1337,
            device: "cpu".into(),
            threads: 0,
        }
    }
}

impl RunConfig {
    pub fn run_dir(&self) -> PathBuf {
        self.out_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("runs").join(&self.name))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Directory of a prepared token store (`syllabus prepare --out`). Required.
    pub prepared_dir: PathBuf,
    /// Raw inputs: .txt, .jsonl (either optionally .gz or .zst) or .parquet (see
    /// `text_column`) files, directories or glob patterns. When `prepared_dir` holds no prepared
    /// data, `train` prepares it from these first. Default: none (then it must be prepared).
    #[serde(default)]
    pub inputs: Vec<PathBuf>,
    /// Separate validation inputs; when empty, `val_fraction` of documents is held out.
    #[serde(default)]
    pub val_inputs: Vec<PathBuf>,
    /// Fraction of documents (not blocks) held out for validation. Default 0.05.
    #[serde(default = "default_val_fraction")]
    pub val_fraction: f64,
    /// A Hugging Face `tokenizer.json` (e.g. from `syllabus tokenizer train`) to prepare the
    /// inputs with; the model's `vocab_size` defaults to its vocabulary. Default: none, GPT-2's
    /// BPE (50,257 tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<PathBuf>,
    /// Parquet inputs: the string column holding each row's document. Default `text` (the
    /// Hugging Face datasets convention, e.g. FineWeb-Edu).
    #[serde(
        default = "default_text_column",
        skip_serializing_if = "text_is_default"
    )]
    pub text_column: String,
    /// Parquet inputs: a string column naming each row's source (the per-source ledger
    /// statistics and sample shares). Default: none, every document is from source `default`.
    /// JSONL inputs always read their `source` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_column: Option<String>,
}

fn default_val_fraction() -> f64 {
    0.05
}

fn default_text_column() -> String {
    "text".to_string()
}

fn text_is_default(c: &str) -> bool {
    c == "text"
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Peak learning rate. Default 6e-4 (GPT-2 small, nanoGPT).
    pub lr: f64,
    /// Default 0.9.
    pub beta1: f64,
    /// Default 0.95.
    pub beta2: f64,
    /// Default 1e-8.
    pub eps: f64,
    /// Decoupled weight decay (AdamW) on 2-D matmul weights only. Default 0.1.
    pub weight_decay: f64,
    /// Global gradient-norm clip; 0 disables. Default 1.0.
    pub grad_clip: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            lr: 6e-4,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            grad_clip: 1.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// Linear warmup, then cosine decay to `min_lr_ratio * lr` at the last step.
    Cosine,
    /// Warmup-stable-decay: warmup, constant, then linear decay over the last `decay_fraction`.
    Wsd,
    /// Linear warmup, then constant.
    Constant,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// Default `cosine`.
    pub kind: ScheduleKind,
    /// Linear warmup length in optimizer steps. Default 100.
    pub warmup_steps: u64,
    /// Final LR as a fraction of peak (cosine and wsd). Default 0.1.
    pub min_lr_ratio: f64,
    /// WSD only: fraction of all steps spent in the final decay. Default 0.2.
    pub decay_fraction: f64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            kind: ScheduleKind::Cosine,
            warmup_steps: 100,
            min_lr_ratio: 0.1,
            decay_fraction: 0.2,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Sequences per micro-batch. Required.
    pub batch_size: usize,
    /// Micro-batches per optimizer step. Default 1.
    #[serde(default = "one")]
    pub grad_accum: usize,
    /// Stop with an error after this many consecutive non-finite steps. Default 10.
    #[serde(default = "default_max_skips")]
    pub max_consecutive_skips: u32,
    /// Matmul precision: `"f32"` or `"bf16"` (bf16 operands, f32 accumulation; weights, AdamW
    /// moments, LayerNorm, softmax and the loss stay f32). On CUDA, f32 matmuls use TF32 tensor
    /// cores. `bf16` is meant for GPUs: on the CPU it is correct but slower than f32.
    /// Default `"f32"`. Left out of the saved config when f32, so configs (and the run id the
    /// ledger derives from them) of runs made before this field existed stay the same.
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
}

fn one() -> usize {
    1
}
fn default_max_skips() -> u32 {
    10
}

impl TrainConfig {
    /// Sequences per optimizer step: `batch_size` x `grad_accum`.
    pub fn sequences_per_step(&self) -> usize {
        self.batch_size * self.grad_accum
    }

    /// Tokens consumed per optimizer step at context length `context`.
    pub fn tokens_per_step(&self, context: usize) -> u64 {
        (self.sequences_per_step() * context) as u64
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Evaluate every N optimizer steps (and always after the last). 0 = only at the end.
    /// Default 200.
    pub every: u64,
    /// If > 0, evaluate at this many evenly spaced steps of the budget's planned run instead
    /// of every `every` steps: the intermediate points scaling-law fits use (sweeps). Default 0.
    pub points: u64,
    /// Validation blocks per evaluation; 0 = all. The same leading blocks every time, so
    /// evaluations are comparable. Default 256.
    pub max_blocks: usize,
    /// Sequences per eval forward. Default 16.
    pub batch_size: usize,
    /// Tokens of text sample generated at each evaluation; 0 disables. Default 48.
    pub sample_tokens: usize,
    /// Prompt of that sample. Default "The".
    pub sample_prompt: String,
    /// Sampling temperature (> 0). Default 0.8.
    pub temperature: f64,
    /// Top-k filter for sampling; 0 = no filter. Default 40.
    pub top_k: usize,
    /// Eval suite (`syllabus eval`, end of training): any of `lambada`, `hellaswag`, `piqa`,
    /// `arc_easy`, `winogrande`, `wikitext2`, `val`; or `["auto"]`: every task whose file
    /// exists under `tasks_dir`, plus `val` (the prepared validation split), listing the skipped
    /// ones. A task named explicitly whose file is missing is an error. Default `["auto"]`.
    pub tasks: Vec<String>,
    /// Directory of the eval files (file names in `docs/eval.md`), relative to the working
    /// directory. Unset (the default): the user cache, `$XDG_CACHE_HOME/syllabus/eval` or
    /// `~/.cache/syllabus/eval`, where users put the files once for every run. A directory
    /// set here that does not exist falls back to the user cache when that exists (saved
    /// configs of runs from another machine). Only locates files: runs differing in it alone
    /// are the same run (resume, sweeps). Default unset.
    pub tasks_dir: Option<PathBuf>,
    /// Examples per zero-shot task (each file's first ones); 0 = all. Default 150: the
    /// default suite on the tiny preset takes about a minute on 2 CPU cores (docs/eval.md).
    pub task_limit: usize,
    /// Scored tokens per perplexity set (each stream's first ones); 0 = all. Default 8192.
    pub ppl_max_tokens: usize,
    /// Sliding-window stride of the perplexity sets, in tokens (1..=context length).
    /// Default: context length / 4 (Languini scores the last 128 of 512).
    pub stride: Option<usize>,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            every: 200,
            points: 0,
            max_blocks: 256,
            batch_size: 16,
            sample_tokens: 48,
            sample_prompt: "The".into(),
            temperature: 0.8,
            top_k: 40,
            tasks: vec!["auto".into()],
            tasks_dir: None,
            task_limit: 150,
            ppl_max_tokens: 8192,
            stride: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Checkpoint every N optimizer steps (and always after the last). 0 = only at the end.
    /// Default 500.
    pub every: u64,
    /// Complete checkpoints kept; older ones are deleted. Default 3.
    pub keep_last: usize,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            every: 500,
            keep_last: 3,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// Console line and train scalars every N optimizer steps. Default 10.
    pub log_every: u64,
    /// TensorBoard event files in the run directory. Default true.
    pub tensorboard: bool,
    /// `metrics.jsonl` in the run directory. Default true.
    pub jsonl: bool,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            log_every: 10,
            tensorboard: true,
            jsonl: true,
        }
    }
}
