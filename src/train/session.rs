//! Everything a training run holds, built once: data, model, optimizer, sampling policy,
//! ledger, state. A fresh run initialises from the seed; `resume` restores all of it from the
//! newest checkpoint (the ledger from the checkpoint's snapshot), so N steps + resume + K steps
//! equals N + K steps bit for bit on CPU, ledger bytes included.

use std::path::{Path, PathBuf};

use candle_core::Device;

use super::checkpoint::{self, LogWindow, TrainState};
use super::data_setup::load_data;
use super::resume::{load_for_resume, run_id};
use super::{load_batch, run_dir, TrainError, TrainOptions};
use crate::budget::{
    self, Activity, BudgetMeter, BudgetPlan, BudgetUsage, ReferenceSource, ThroughputReference,
};
use crate::config::Config;
use crate::data::{Blocks, PreparedData};
use crate::device::{select_device, use_tf32_matmuls};
use crate::eval::SuiteOptions;
use crate::fsutil::{from_checksummed_json, to_checksummed_json, DirLock};
use crate::ledger::{Ledger, LedgerRead, LEDGER_FILE};
use crate::model::{Gpt, GptConfig, Params};
use crate::optim::{AdamW, AdamWParams};
use crate::rng::Rng;
use crate::sampling::{PolicyEnv, Registry, SamplingPolicy, Selection, StateUpdate};

pub struct Session {
    pub config: Config,
    pub config_toml: String,
    pub gpt_config: GptConfig,
    pub device: Device,
    pub data: PreparedData,
    pub train_blocks: Blocks,
    pub val_blocks: Blocks,
    pub params: Params,
    pub optimizer: AdamW,
    pub policy: Box<dyn SamplingPolicy>,
    pub ledger: Ledger,
    pub state: TrainState,
    /// The compute budget: plan (steps) and what has been spent.
    pub budget: BudgetMeter,
    /// The end-of-run eval suite, resolved here so a missing task file fails before the run
    /// directory is touched.
    pub suite: SuiteOptions,
    /// Set when the run continued from a checkpoint.
    pub resumed_from: Option<PathBuf>,
    /// This process's exclusive hold on the run directory, for the life of the session.
    _lock: DirLock,
}

impl Session {
    pub fn open(
        config: &Config,
        registry: &Registry,
        opts: &TrainOptions,
    ) -> Result<Self, TrainError> {
        let (resume, overwrite) = (opts.resume, opts.overwrite);
        let config_toml = config.to_toml();
        // Everything that can fail on bad input is checked before the run directory is
        // touched, so a failed start leaves no half-made run behind.
        let device = select_device(&config.run.device)?;
        use_tf32_matmuls(&device); // as `train.precision` documents
        let gpt_config = config.gpt();
        let data = load_data(config)?;
        let block_len = config.context() + 1;
        let train_blocks = Blocks::new(data.train.clone(), block_len)?;
        let val_blocks = Blocks::new(data.val.clone(), block_len)?;
        // The run's one RNG: initial weights first, then the policy's seed.
        let mut rng = Rng::new(config.run.seed);
        let params = Params::init_gpt2(&gpt_config, &mut rng, &device)?;
        let env = PolicyEnv {
            n_blocks: train_blocks.len(),
            seed: rng.next_u64(),
            tokens_per_block: block_len,
        };
        let s = &config.sampling;
        let policy = registry.create(&s.policy, &s.selected_params(), &env)?;
        let run_dir = config.run.run_dir();
        let source = budget::reference_source(config, &run_dir, resume)?;
        let calibration = std::time::Instant::now();
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
                &gpt_config,
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
            gpt_config,
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
    pub fn models(&self) -> Result<(Gpt, Gpt), TrainError> {
        let (p, k) = (self.config.train.precision, self.config.perf.kernels);
        Ok((
            Gpt::new(&self.gpt_config, &self.params)?
                .with_precision(p)
                .with_kernels(k),
            Gpt::new_inference(&self.gpt_config, &self.params)?
                .with_precision(p)
                .with_kernels(k),
        ))
    }

    /// The policy's choice for this step; its state changes are written to the ledger.
    pub fn select_batch(&mut self) -> Result<Selection, TrainError> {
        let n = self.config.train.batch_size * self.config.train.grad_accum;
        let sel = self.policy.next_batch(n, &self.ledger, self.state.step);
        self.apply(&sel.state_updates)?;
        Ok(sel)
    }

    /// Scores `ids` with a forward-only pass of `gpt` (the inference view of the current
    /// weights) for the policy's `observe_scored`. Returns the tokens scored, to be charged.
    pub fn score_blocks(&mut self, gpt: &Gpt, ids: &[usize]) -> Result<u64, TrainError> {
        let mut losses = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(self.config.train.batch_size) {
            let (x, y) = load_batch(&self.train_blocks, chunk, &self.device)?;
            losses.extend(gpt.per_sequence_loss(&x, &y)?.to_vec1::<f32>()?); // [B]
        }
        let updates = self.policy.observe_scored(ids, &losses, self.state.step);
        self.apply(&updates)?;
        Ok((ids.len() * self.config.context()) as u64)
    }

    /// Records the training forward pass's per-sequence losses (finite ones only) in the
    /// ledger, then lets the policy observe them.
    pub fn record_losses(&mut self, ids: &[usize], losses: &[f32]) -> Result<(), TrainError> {
        let step = self.state.step;
        let rule = self.config.ledger;
        self.ledger.record_losses(ids, losses, step, &rule)?;
        let (ids, losses): (Vec<usize>, Vec<f32>) = ids
            .iter()
            .zip(losses)
            .filter(|(_, l)| l.is_finite())
            .map(|(&i, &l)| (i, l))
            .unzip();
        let updates = self.policy.observe(&ids, &losses, &self.ledger, step);
        self.apply(&updates)
    }

    fn apply(&mut self, updates: &[StateUpdate]) -> Result<(), TrainError> {
        for u in updates {
            self.ledger
                .set_policy_state(u.id, u.policy_state, u.leitner_box)?;
        }
        Ok(())
    }

    /// Source id of a training block (from the ledger row).
    pub fn source_of(&self, id: usize) -> u16 {
        self.ledger.record(id).source
    }

    /// Saves a checkpoint of the current state, with a snapshot of the ledger.
    pub fn save_checkpoint(&mut self) -> Result<PathBuf, TrainError> {
        self.state.data_cursor = self.policy.save_state();
        self.state.budget = self.budget.usage();
        self.state.optimizer_updates = self.optimizer.steps_taken();
        let ledger = &mut self.ledger;
        let step = self.state.step;
        checkpoint::save(
            &self.config.run.run_dir(),
            &checkpoint::Contents {
                state: &self.state,
                model: &self.gpt_config,
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

/// Measures the reference throughput before step 0 (`measure_throughput = true`), with
/// Languini's warm-up and timed rounds.
fn measure_reference(config: &Config) -> Result<ThroughputReference, TrainError> {
    eprintln!("budget: measuring the reference throughput (random tokens, fwd+bwd+optimizer)...");
    let r = budget::measure(config, budget::LANGUINI_WARMUP, budget::LANGUINI_TIMED)?;
    Ok(r)
}

/// The budget as steps for this config and policy.
fn budget_plan(
    config: &Config,
    policy: &dyn SamplingPolicy,
    reference: Option<ThroughputReference>,
) -> Result<BudgetPlan, TrainError> {
    let ctx = config.context();
    let n = config.train.batch_size * config.train.grad_accum;
    let plan = BudgetPlan::new(
        config.budget.amount(),
        config.train.tokens_per_step(ctx),
        (policy.scored_per_step(n) * ctx) as u64,
        config.gpt().flops_per_token(ctx),
        reference,
        config.budget.wall_clock_hours,
        config.budget.rounding,
    )?;
    if config.schedule.warmup_steps > plan.planned_steps {
        return Err(TrainError::Budget(budget::BudgetError::WarmupTooLong {
            warmup: config.schedule.warmup_steps,
            planned: plan.planned_steps,
        }));
    }
    Ok(plan)
}

/// `budget.json` (the plan) and `reference_throughput.json` in a fresh run directory.
fn write_budget_files(run_dir: &Path, plan: &BudgetPlan) -> Result<(), TrainError> {
    if let Some(r) = &plan.reference {
        r.write(&run_dir.join(budget::REFERENCE_FILE))?;
    }
    write_plan(&run_dir.join(budget::PLAN_FILE), &plan_bytes(plan)?)
}

/// On resume, `budget.json` must be the plan the run computes again from its config and saved
/// reference (it is derived state, read by `sweep`): a missing, corrupt or stale file is
/// rewritten, and the rewrite is reported.
fn refresh_budget_file(run_dir: &Path, plan: &BudgetPlan) -> Result<(), TrainError> {
    let path = run_dir.join(budget::PLAN_FILE);
    let current = plan_bytes(plan)?;
    let why = match std::fs::read(&path) {
        Ok(bytes) if bytes == current => return Ok(()),
        Ok(bytes) => match from_checksummed_json::<serde_json::Value>(&bytes, true) {
            Err(e) => e.to_string(),
            Ok(_) => "differs from the plan the config gives".to_string(),
        },
        Err(e) => e.to_string(),
    };
    eprintln!("{}: {why}; rewritten from the config", path.display());
    write_plan(&path, &current)
}

fn plan_bytes(plan: &BudgetPlan) -> Result<Vec<u8>, TrainError> {
    to_checksummed_json(plan).map_err(|e| TrainError::RunDir(format!("budget plan: {e}")))
}

fn write_plan(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    crate::fsutil::write_atomic(path, bytes).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })
}
