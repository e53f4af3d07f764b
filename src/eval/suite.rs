//! The evaluation suite: which tasks run ([`SuiteOptions`]) and [`run_suite`], called by
//! `syllabus eval`, at the end of training and by the sweep runner on intermediate checkpoints.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::choice::{evaluate_choices, ChoiceExample, Normalisation, TaskReport};
use super::gpt_scorer::GptScorer;
use super::lambada::evaluate_lambada;
use super::perplexity::{evaluate_stream, PerplexityReport};
use super::scorer::Scorer;
use super::{datasets, EvalError};
use crate::data::{TokenStore, Tokenizer};
use crate::model::LanguageModel;

/// The tasks of the suite, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Lambada,
    Hellaswag,
    Piqa,
    ArcEasy,
    Winogrande,
    Wikitext2,
    /// The run's prepared validation split (needs no file under `tasks_dir`).
    Val,
}

impl Task {
    pub const ALL: [Task; 7] = [
        Task::Lambada,
        Task::Hellaswag,
        Task::Piqa,
        Task::ArcEasy,
        Task::Winogrande,
        Task::Wikitext2,
        Task::Val,
    ];

    /// The name used in configs, on the command line, in `eval.json` and TensorBoard tags.
    pub fn name(self) -> &'static str {
        match self {
            Task::Lambada => "lambada",
            Task::Hellaswag => "hellaswag",
            Task::Piqa => "piqa",
            Task::ArcEasy => "arc_easy",
            Task::Winogrande => "winogrande",
            Task::Wikitext2 => "wikitext2",
            Task::Val => "val",
        }
    }

    pub fn parse(name: &str) -> Result<Task, EvalError> {
        Task::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| EvalError::UnknownTask {
                name: name.to_string(),
                known: Task::ALL.map(Task::name).join(", "),
            })
    }

    /// The file under `tasks_dir` the task reads (file names as in `docs/eval.md`).
    pub fn file(self) -> Option<&'static str> {
        match self {
            Task::Lambada => Some("lambada_openai_test.jsonl.gz"),
            Task::Hellaswag => Some("hellaswag_val.jsonl.gz"),
            Task::Piqa => Some("piqa_valid.jsonl.gz"),
            Task::ArcEasy => Some("arc_easy_test.jsonl.gz"),
            Task::Winogrande => Some("winogrande_dev.jsonl.gz"),
            Task::Wikitext2 => Some("wikitext2_test.raw.gz"),
            Task::Val => None,
        }
    }
}

/// `["auto"]`, or explicit task names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskSelection {
    /// Every task whose file exists under `tasks_dir`, plus `val` when the run has a prepared
    /// validation split; the others are skipped and listed in the report.
    Auto,
    /// These tasks; a missing file is an error.
    List(Vec<Task>),
}

impl TaskSelection {
    /// Parses config / CLI names: `["auto"]` (or no names) is [`TaskSelection::Auto`].
    pub fn parse(names: &[String]) -> Result<TaskSelection, EvalError> {
        if names.is_empty() || names == ["auto"] {
            return Ok(TaskSelection::Auto);
        }
        if names.iter().any(|n| n == "auto") {
            return Err(EvalError::Invalid(
                "eval.tasks: \"auto\" cannot be combined with task names".into(),
            ));
        }
        let mut tasks = names
            .iter()
            .map(|n| Task::parse(n))
            .collect::<Result<Vec<_>, _>>()?;
        tasks.sort();
        tasks.dedup();
        Ok(TaskSelection::List(tasks))
    }
}

/// A task that auto mode did not run, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SkippedTask {
    pub task: String,
    pub reason: String,
}

/// Everything [`run_suite`] needs besides the model.
#[derive(Clone, Debug)]
pub struct SuiteOptions {
    /// Tasks to run (their files exist), in [`Task::ALL`] order.
    pub tasks: Vec<Task>,
    /// Tasks auto mode skipped.
    pub skipped: Vec<SkippedTask>,
    pub tasks_dir: PathBuf,
    /// Examples per zero-shot task (the file's first ones); 0 = all.
    pub task_limit: usize,
    /// Targets scored per perplexity set (the stream's first ones); 0 = all.
    pub ppl_max_tokens: usize,
    /// Model context used for scoring, in tokens (the training context length).
    pub context: usize,
    /// Sliding-window stride of the perplexity sets, in tokens (1..=context).
    pub stride: usize,
    /// Requests per forward pass.
    pub batch_size: usize,
    /// The prepared validation split, for `val`.
    pub val: Option<Arc<TokenStore>>,
    /// No progress lines on stderr.
    pub quiet: bool,
}

/// The user's cache of task files: `$XDG_CACHE_HOME/syllabus/eval`, else
/// `$HOME/.cache/syllabus/eval` (`None` without either variable).
pub fn cached_tasks_dir() -> Option<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("syllabus").join("eval"))
}

/// The directory task files are read from, given `eval.tasks_dir` or `--tasks-dir`:
/// - unset: the user cache ([`cached_tasks_dir`]; without `$XDG_CACHE_HOME` and `$HOME`,
///   `.cache/syllabus/eval` under the working directory, which errors then name);
/// - set: that directory when it exists, else the user cache when that exists (a saved config
///   from another machine names a directory this one lacks), else the configured one (so
///   errors name it).
pub fn locate_tasks_dir(configured: Option<&Path>) -> PathBuf {
    let cache = cached_tasks_dir();
    match (configured, cache) {
        (Some(dir), Some(cache)) if !dir.is_dir() && cache.is_dir() => cache,
        (Some(dir), _) => dir.to_path_buf(),
        (None, cache) => cache.unwrap_or_else(|| Path::new(".cache/syllabus/eval").into()),
    }
}

/// The tasks to run and those auto mode skips. Explicitly named tasks must be runnable.
pub fn resolve(
    selection: &TaskSelection,
    tasks_dir: &Path,
    has_val: bool,
) -> Result<(Vec<Task>, Vec<SkippedTask>), EvalError> {
    let (mut run, mut skipped) = (Vec::new(), Vec::new());
    let wanted = match selection {
        TaskSelection::Auto => Task::ALL.to_vec(),
        TaskSelection::List(tasks) => tasks.clone(),
    };
    let auto = *selection == TaskSelection::Auto;
    for task in wanted {
        let missing = match task.file() {
            Some(f) if !tasks_dir.join(f).is_file() => Some(tasks_dir.join(f)),
            _ => None,
        };
        let reason =
            match (&missing, task) {
                (Some(path), _) if !auto => {
                    return Err(EvalError::MissingTaskFile {
                        task: task.name().into(),
                        path: path.clone(),
                    })
                }
                (Some(path), _) => Some(format!("{} not found", path.display())),
                (None, Task::Val) if !has_val && !auto => return Err(EvalError::Invalid(
                    "task `val` needs the run's prepared validation split (data.prepared_dir), \
                     which is not available"
                        .into(),
                )),
                (None, Task::Val) if !has_val => Some("no prepared validation split".into()),
                _ => None,
            };
        match reason {
            Some(reason) => skipped.push(SkippedTask {
                task: task.name().into(),
                reason,
            }),
            None => run.push(task),
        }
    }
    Ok((run, skipped))
}

/// Settings a report was produced with, so stored results say what they measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SuiteSettings {
    pub tasks_dir: PathBuf,
    pub task_limit: usize,
    pub ppl_max_tokens: usize,
    pub context: usize,
    pub stride: usize,
    pub batch_size: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SuiteReport {
    /// Zero-shot tasks, in run order.
    pub tasks: Vec<TaskReport>,
    pub perplexity: Vec<PerplexityReport>,
    /// Mean centered accuracy over `tasks` (a 5-task subset of DCLM's 22-task CORE); `None`
    /// when no zero-shot task ran.
    pub core_centered_mean: Option<f64>,
    pub skipped: Vec<SkippedTask>,
    pub settings: SuiteSettings,
    pub seconds: f64,
}

/// Runs the suite on `gpt` (built with `Gpt::new_inference`).
pub fn run_suite(
    gpt: &dyn LanguageModel,
    tok: &Tokenizer,
    opts: &SuiteOptions,
    device: &Device,
) -> Result<SuiteReport, EvalError> {
    let scorer = GptScorer::new(gpt, opts.context, device)?;
    run_suite_with(&scorer, tok, opts)
}

/// Runs the suite with any [`Scorer`].
pub fn run_suite_with(
    scorer: &dyn Scorer,
    tok: &Tokenizer,
    opts: &SuiteOptions,
) -> Result<SuiteReport, EvalError> {
    let t0 = Instant::now();
    let (mut tasks, mut perplexity) = (Vec::new(), Vec::new());
    for &task in &opts.tasks {
        let t = Instant::now();
        let line = match run_task(task, scorer, tok, opts)? {
            Outcome::Task(r) => {
                let line = format!("acc {:.4} (random {:.4})", r.acc, r.random_baseline);
                tasks.push(r);
                line
            }
            Outcome::Perplexity(r) => {
                let line = format!("normalised ppl {:.4} per byte", r.norm_ppl);
                perplexity.push(r);
                line
            }
        };
        if !opts.quiet {
            let secs = t.elapsed().as_secs_f64();
            eprintln!("eval {}: {line} ({secs:.1} s)", task.name());
        }
    }
    let core_centered_mean = (!tasks.is_empty())
        .then(|| tasks.iter().map(|t| t.acc_centered).sum::<f64>() / tasks.len() as f64);
    Ok(SuiteReport {
        tasks,
        perplexity,
        core_centered_mean,
        skipped: opts.skipped.clone(),
        settings: SuiteSettings {
            tasks_dir: opts.tasks_dir.clone(),
            task_limit: opts.task_limit,
            ppl_max_tokens: opts.ppl_max_tokens,
            context: opts.context,
            stride: opts.stride,
            batch_size: opts.batch_size,
        },
        seconds: t0.elapsed().as_secs_f64(),
    })
}

enum Outcome {
    Task(TaskReport),
    Perplexity(PerplexityReport),
}

fn run_task(
    task: Task,
    scorer: &dyn Scorer,
    tok: &Tokenizer,
    opts: &SuiteOptions,
) -> Result<Outcome, EvalError> {
    let path = task.file().map(|f| opts.tasks_dir.join(f));
    let path = path.as_deref().unwrap_or(Path::new(""));
    let (limit, batch) = (opts.task_limit, opts.batch_size);
    let choices = |examples: Vec<ChoiceExample>, norm| {
        evaluate_choices(task.name(), &examples, norm, scorer, tok, batch).map(Outcome::Task)
    };
    match task {
        Task::Lambada => {
            let examples = datasets::lambada(path, limit)?;
            evaluate_lambada(&examples, scorer, tok, batch).map(Outcome::Task)
        }
        Task::Hellaswag => choices(datasets::hellaswag(path, limit)?, Normalisation::Bytes),
        Task::Piqa => choices(datasets::piqa(path, limit)?, Normalisation::Bytes),
        Task::ArcEasy => choices(datasets::arc(path, limit)?, Normalisation::Bytes),
        // Every option scores the same continuation: normalising would change nothing.
        Task::Winogrande => choices(datasets::winogrande(path, limit)?, Normalisation::None),
        Task::Wikitext2 => {
            let tokens = tok.encode(&datasets::raw_text(path)?)?;
            stream(task, &tokens, scorer, tok, opts)
        }
        Task::Val => {
            let store = opts.val.as_ref().ok_or_else(|| {
                EvalError::Invalid("task `val` needs the prepared validation split".into())
            })?;
            let n = prefix_len(store.len(), opts.ppl_max_tokens);
            let mut tokens = vec![0u32; n];
            store.read(0, &mut tokens);
            stream(task, &tokens, scorer, tok, opts)
        }
    }
}

/// Tokens to keep so that at most `max_targets` targets are scored (0 = all).
fn prefix_len(len: usize, max_targets: usize) -> usize {
    if max_targets == 0 {
        len
    } else {
        len.min(max_targets + 1)
    }
}

fn stream(
    task: Task,
    tokens: &[u32],
    scorer: &dyn Scorer,
    tok: &Tokenizer,
    opts: &SuiteOptions,
) -> Result<Outcome, EvalError> {
    let tokens = &tokens[..prefix_len(tokens.len(), opts.ppl_max_tokens)];
    let r = evaluate_stream(
        task.name(),
        tokens,
        scorer,
        tok,
        opts.stride,
        opts.batch_size,
    )?;
    Ok(Outcome::Perplexity(r))
}
