//! Everything a training run holds, built once: data, model, optimizer, sampling policy,
//! ledger, state. A fresh run initialises from the seed; `resume` restores all of it from the
//! newest checkpoint (the ledger from the checkpoint's snapshot), so N steps + resume + K steps
//! equals N + K steps bit for bit on CPU, ledger bytes included.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::Device;

use super::budget_files::{
    budget_plan, measure_reference, refresh_budget_file, write_budget_files,
};
use super::checkpoint::{self, LogWindow, TrainState};
use super::data_setup::load_data;
use super::resume::{load_for_resume, run_id};
use super::{run_dir, save_run_tokenizer, TrainError, TrainOptions, SUMMARY_FILE};
use crate::budget::{self, Activity, BudgetMeter, BudgetUsage, ReferenceSource, StopReason};
use crate::config::Config;
use crate::data::{self, Blocks, PreparedData, Tokenizer};
use crate::device::{select_device, use_tf32_matmuls};
use crate::eval::SuiteOptions;
use crate::fsutil::DirLock;
use crate::ledger::{self, Ledger, LedgerRead, LossMetric, LEDGER_FILE};
use crate::logging::Histogram;
use crate::model::{hf, BuildOptions, GptConfig, LanguageModel, Params};
use crate::optim::{AdamW, AdamWParams, StepOutput};
use crate::plugins::Plugins;
use crate::rng::Rng;
use crate::sampling::{PolicyEnv, PolicyReport, SamplingPolicy};

/// One optimizer step as the loop sees it.
pub struct TrainedStep {
    pub out: StepOutput,
    pub lr: f64,
    /// The blocks the step trained, in batch order.
    pub ids: Vec<usize>,
}

/// The ledger's state at an evaluation.
pub struct LedgerStats {
    pub loss_histogram: Option<Histogram>,
    pub forgotten_fraction: f64,
}

mod step;

pub struct Session {
    config: Config,
    config_toml: String,
    device: Device,
    data: PreparedData,
    train_blocks: Blocks,
    val_blocks: Blocks,
    params: Params,
    optimizer: AdamW,
    policy: Box<dyn SamplingPolicy>,
    ledger: Ledger,
    state: TrainState,
    /// The compute budget: plan (steps) and what has been spent.
    budget: BudgetMeter,
    /// The end-of-run eval suite, resolved here so a missing task file fails before the run
    /// directory is touched.
    suite: SuiteOptions,
    /// Set when the run continued from a checkpoint.
    resumed_from: Option<PathBuf>,
    /// The prepared data's tokenizer (samples are decoded with it).
    tokenizer: Tokenizer,
    /// This process's exclusive hold on the run directory, for the life of the session.
    _lock: DirLock,
}

impl Session {
    pub fn open(
        config: &Config,
        plugins: &Plugins,
        opts: &TrainOptions,
    ) -> Result<Self, TrainError> {
        let (resume, overwrite) = (opts.resume, opts.overwrite);
        let config_toml = config.to_toml();
        // Everything that can fail on bad input is checked before the run directory is
        // touched, so a failed start leaves no half-made run behind.
        let device = select_device(&config.run.device)?;
        use_tf32_matmuls(&device); // as `train.precision` documents
        let data = load_data(config)?;
        let tokenizer = data::prepared_tokenizer(&config.data.prepared_dir, &data.manifest)?;
        let block_len = config.context() + 1;
        let train_blocks = Blocks::new(data.train.clone(), block_len)?;
        let val_blocks = Blocks::new(data.val.clone(), block_len)?;
        // The run's one RNG: initial weights first, then the policy's seed.
        let mut rng = Rng::new(config.run.seed);
        let params = match &config.model.init_from {
            Some(dir) => hf::load_gpt2(&gpt2_shape(config)?, dir, &device)?,
            None => Params::init(&config.arch().param_specs(), &mut rng, &device)?,
        };
        let env = PolicyEnv {
            n_blocks: train_blocks.len(),
            seed: rng.next_u64(),
            tokens_per_block: block_len,
        };
        let s = &config.sampling;
        let policy = plugins
            .policies
            .create(&s.policy, &s.selected_params(), &env)?;
        let run_dir = config.run.run_dir();
        let source = budget::reference_source(config, &run_dir, resume)?;
        let calibration = Instant::now();
        let reference = match source {
            ReferenceSource::None => None,
            ReferenceSource::Ready(r) => Some(*r),
            ReferenceSource::Measure => Some(measure_reference(config)?),
        };
        let plan = budget_plan(config, policy.as_ref(), reference)?;
        let suite = super::suite_options(config, Some(data.val.clone()))?;
        // One writer per run directory: a second `train` on a live run (even with --resume or
        // --overwrite) stops here, before it reads or replaces anything.
        let lock = DirLock::acquire(&run_dir, "train")?;
        run_dir::prepare(&run_dir, &config_toml, resume, overwrite)?;
        save_run_tokenizer(&run_dir, &config.data.prepared_dir, &data.manifest)?;
        match resume {
            false => write_budget_files(&run_dir, &plan)?,
            true => refresh_budget_file(&run_dir, &plan)?,
        }

        let optimizer = AdamW::new(
            &params,
            AdamWParams::from_config(&config.optim),
            config.perf.kernels,
        )?;
        // A resume verifies the whole checkpoint (manifest, every file's checksum, tensors,
        // config, ledger snapshot) before anything in the run directory is replaced.
        let loaded = match resume {
            true => Some(load_for_resume(
                &run_dir,
                opts,
                &device,
                config.arch(),
                &config_toml,
            )?),
            false => None,
        };
        let live = run_dir.join(LEDGER_FILE);
        let ledger = match &loaded {
            // The live ledger may hold steps after the checkpoint (a crash): replace it with the
            // checkpoint's snapshot so ledger and weights describe the same step.
            Some(c) => Ledger::restore_from(&c.path.join(checkpoint::LEDGER_SNAPSHOT), &live)?,
            None => Ledger::create_for_blocks(
                &live,
                &train_blocks,
                &data.train_docs,
                run_id(&config_toml),
            )?,
        };
        let state = TrainState {
            step: 0,
            tokens_seen: 0,
            optimizer_updates: 0,
            consecutive_skips: 0,
            rng,
            data_cursor: policy.save_state(),
            budget: BudgetUsage::default(),
            log_window: LogWindow::default(),
        };
        let mut meter = BudgetMeter::new(plan.clone(), BudgetUsage::default());
        meter.add_wall(Activity::Calibration, calibration.elapsed());
        let mut session = Session {
            config: config.clone(),
            config_toml,
            device,
            data,
            train_blocks,
            val_blocks,
            params,
            optimizer,
            policy,
            ledger,
            state,
            budget: meter,
            suite,
            resumed_from: None,
            tokenizer,
            _lock: lock,
        };
        if let Some(loaded) = loaded {
            session.restore(loaded)?;
            session.budget = BudgetMeter::new(plan, session.state.budget.clone());
        }
        Ok(session)
    }

    /// Takes over the weights, optimizer and state of a checkpoint already verified by
    /// [`load_for_resume`].
    fn restore(&mut self, loaded: checkpoint::LoadedCheckpoint) -> Result<(), TrainError> {
        let path = loaded.path;
        let state = loaded.manifest.state;
        self.policy
            .restore_state(&state.data_cursor, &self.ledger)?;
        self.optimizer = AdamW::new(
            &loaded.params,
            AdamWParams::from_config(&self.config.optim),
            self.config.perf.kernels,
        )?;
        self.optimizer
            .load_state(loaded.optimizer, state.optimizer_updates)?;
        self.params = loaded.params;
        self.state = state;
        self.resumed_from = Some(path);
        Ok(())
    }

    /// The training model (tracked ops) and an inference view sharing the same storage, both
    /// with the configured matmul precision and kernels.
    pub fn models(&self) -> Result<[Box<dyn LanguageModel>; 2], TrainError> {
        let (p, k) = (self.config.train.precision, self.config.perf.kernels);
        let arch = self.config.arch();
        Ok([
            arch.build(&self.params, BuildOptions::training().with(p, k))?,
            arch.build(&self.params, BuildOptions::inference().with(p, k))?,
        ])
    }

    /// Refuses to continue a run that has nothing left to do: a finished run on `--resume`
    /// (budget spent, end-of-run work done: `summary.json` written), or a `--stop-after` that
    /// is not ahead of the current step.
    pub fn check_work_left(&self, opts: &TrainOptions) -> Result<(), TrainError> {
        let run_dir = self.config.run.run_dir();
        let finished = opts.resume && run_dir.join(SUMMARY_FILE).exists();
        if let (Some(reason), true) = (self.stop_reason(), finished) {
            return Err(TrainError::AlreadyFinished {
                run_dir,
                step: self.state.step,
                reason: format!("{reason:?}"),
            });
        }
        match opts.stop_after.filter(|&n| n <= self.state.step) {
            Some(n) => Err(TrainError::RunDir(format!(
                "--stop-after {n} is not after the run's current step {}",
                self.state.step
            ))),
            None => Ok(()),
        }
    }

    /// Why the budget says training is over, if it is.
    pub fn stop_reason(&self) -> Option<StopReason> {
        self.budget.stop_reason(self.state.step)
    }

    /// Books `took` of wall time to `activity` in the budget.
    pub fn add_wall(&mut self, activity: Activity, took: Duration) {
        self.budget.add_wall(activity, took);
    }

    /// Publishes the ledger's generation (the current step), so readers know how current it is.
    pub fn flush_ledger(&mut self) -> Result<(), TrainError> {
        Ok(self.ledger.flush(self.state.step)?)
    }

    /// The ledger's loss histogram and forgotten share, for the logs.
    pub fn ledger_stats(&self) -> Result<LedgerStats, TrainError> {
        Ok(LedgerStats {
            loss_histogram: ledger::loss_histogram(&self.ledger, LossMetric::LastLoss, 30)?,
            forgotten_fraction: ledger::forgotten_fraction(&self.ledger)?,
        })
    }

    /// Source id of a training block (from the ledger row).
    pub fn source_of(&self, id: usize) -> u16 {
        self.ledger.record(id).source
    }

    /// Saves a checkpoint of the current state, with a snapshot of the ledger and the logging
    /// window still open (see `run_log`).
    pub fn save_checkpoint(&mut self, log_window: LogWindow) -> Result<PathBuf, TrainError> {
        self.state.log_window = log_window;
        self.state.data_cursor = self.policy.save_state();
        self.state.budget = self.budget.usage();
        self.state.optimizer_updates = self.optimizer.steps_taken();
        let ledger = &mut self.ledger;
        let step = self.state.step;
        checkpoint::save(
            &self.config.run.run_dir(),
            &checkpoint::Contents {
                state: &self.state,
                arch: self.config.arch().as_ref(),
                config_toml: &self.config_toml,
                params: &self.params,
                optimizer: &self.optimizer.state_tensors(),
            },
            &mut |dir: &Path| {
                ledger.snapshot_to(&dir.join(checkpoint::LEDGER_SNAPSHOT), step)?;
                Ok(vec![checkpoint::LEDGER_SNAPSHOT])
            },
            self.config.checkpoint.keep_last,
        )
    }
}

/// The GPT-2 shape of a gpt2 config (for `model.init_from`, which validation allows only
/// there).
fn gpt2_shape(config: &Config) -> Result<GptConfig, TrainError> {
    toml::Value::Table(config.arch().resolved())
        .try_into::<GptConfig>()
        .map_err(|e| TrainError::DataSetup(format!("model.init_from needs a gpt2 model: {e}")))
}

/// Read access for reporting.
impl Session {
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn data(&self) -> &PreparedData {
        &self.data
    }

    pub fn train_blocks(&self) -> &Blocks {
        &self.train_blocks
    }

    pub fn val_blocks(&self) -> &Blocks {
        &self.val_blocks
    }

    pub fn state(&self) -> &TrainState {
        &self.state
    }

    pub fn step(&self) -> u64 {
        self.state.step
    }

    pub fn budget(&self) -> &BudgetMeter {
        &self.budget
    }

    pub fn suite(&self) -> &SuiteOptions {
        &self.suite
    }

    pub fn policy_report(&self) -> PolicyReport {
        self.policy.report()
    }

    /// The policy's note on how its own plan fits this run's planned steps, if any.
    pub fn policy_plan_note(&self) -> Option<String> {
        let n = self.config.train.sequences_per_step();
        self.policy.plan_note(self.budget.plan().planned_steps, n)
    }

    /// The checkpoint the run continued from, if it was resumed.
    pub fn resumed_from(&self) -> Option<&Path> {
        self.resumed_from.as_deref()
    }
}
