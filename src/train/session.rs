//! Everything a training run holds, built once: data, model, optimizer, data order, state.
//! A fresh run initialises from the seed; `resume` restores all of it from the newest
//! checkpoint, so N steps + resume + K steps equals N + K steps bit for bit on CPU.

use std::path::Path;

use candle_core::Device;

use super::checkpoint::{self, TrainState};
use super::data_order::{EpochCursor, ShuffledEpochs};
use super::{run_dir, select_device, TrainError};
use crate::config::Config;
use crate::data::{self, Blocks, PrepareOptions, PreparedData};
use crate::model::{Gpt, GptConfig, Params};
use crate::optim::{AdamW, AdamWParams};
use crate::rng::Rng;

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
    pub order: ShuffledEpochs,
    pub state: TrainState,
    /// Set when the run continued from a checkpoint.
    pub resumed_from: Option<std::path::PathBuf>,
}

impl Session {
    pub fn open(config: &Config, resume: bool, overwrite: bool) -> Result<Self, TrainError> {
        let config_toml = config.to_toml();
        // Everything that can fail on bad input is checked before the run directory is
        // touched, so a failed start leaves no half-made run behind.
        let device = select_device(&config.run.device)?;
        let gpt_config = config.gpt();
        let data = load_data(config)?;
        let block_len = config.context() + 1;
        let train_blocks = Blocks::new(data.train.clone(), block_len)?;
        let val_blocks = Blocks::new(data.val.clone(), block_len)?;
        let run_dir = config.run.run_dir();
        run_dir::prepare(&run_dir, &config_toml, resume, overwrite)?;

        let mut rng = Rng::new(config.run.seed);
        let params = Params::init_gpt2(&gpt_config, &mut rng, &device)?;
        let order = ShuffledEpochs::new(train_blocks.len(), &mut rng);
        let optimizer = AdamW::new(&params, adamw_params(config))?;
        let state = TrainState {
            step: 0,
            tokens_seen: 0,
            optimizer_updates: 0,
            consecutive_skips: 0,
            rng,
            data_cursor: serde_json::to_value(order.cursor())?,
        };
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
            order,
            state,
            resumed_from: None,
        };
        if resume {
            session.restore(&run_dir)?;
        }
        Ok(session)
    }

    fn restore(&mut self, run_dir: &Path) -> Result<(), TrainError> {
        let path = checkpoint::latest(run_dir)?.ok_or_else(|| {
            TrainError::RunDir(format!("{}: no complete checkpoint", run_dir.display()))
        })?;
        let loaded = checkpoint::load(&path, &self.device)?;
        if loaded.manifest.model != self.gpt_config {
            return Err(TrainError::Checkpoint(format!(
                "{}: model shape {:?} differs from the config's {:?}",
                path.display(),
                loaded.manifest.model,
                self.gpt_config
            )));
        }
        let state = loaded.manifest.state;
        let cursor: EpochCursor = serde_json::from_value(state.data_cursor.clone())?;
        self.optimizer = AdamW::new(&loaded.params, adamw_params(&self.config))?;
        self.optimizer
            .load_state(loaded.optimizer, state.optimizer_updates)?;
        self.params = loaded.params;
        self.order = ShuffledEpochs::from_cursor(self.train_blocks.len(), cursor);
        self.state = state;
        self.resumed_from = Some(path);
        Ok(())
    }

    /// The training model (tracked ops) and an inference view sharing the same storage.
    pub fn models(&self) -> Result<(Gpt, Gpt), TrainError> {
        Ok((
            Gpt::new(&self.gpt_config, &self.params)?,
            Gpt::new_inference(&self.gpt_config, &self.params)?,
        ))
    }

    /// Saves a checkpoint of the current state.
    pub fn save_checkpoint(&mut self) -> Result<std::path::PathBuf, TrainError> {
        self.state.data_cursor = serde_json::to_value(self.order.cursor())?;
        self.state.optimizer_updates = self.optimizer.steps_taken();
        checkpoint::save(
            &self.config.run.run_dir(),
            &self.state,
            &self.gpt_config,
            &self.config_toml,
            &self.params,
            &self.optimizer.state_tensors(),
            self.config.checkpoint.keep_last,
        )
    }
}

fn adamw_params(config: &Config) -> AdamWParams {
    AdamWParams {
        beta1: config.optim.beta1,
        beta2: config.optim.beta2,
        eps: config.optim.eps,
        weight_decay: config.optim.weight_decay,
    }
}

/// Loads the prepared token store, preparing it from `data.inputs` first when it is missing.
pub fn load_data(config: &Config) -> Result<PreparedData, TrainError> {
    let d = &config.data;
    if !data::is_prepared(&d.prepared_dir) {
        if d.inputs.is_empty() {
            return Err(TrainError::DataSetup(format!(
                "data.prepared_dir {} holds no prepared data and data.inputs is empty: run \
                 `syllabus prepare --input ... --out {}` or set data.inputs",
                d.prepared_dir.display(),
                d.prepared_dir.display()
            )));
        }
        eprintln!(
            "preparing {} from {} input path(s) ...",
            d.prepared_dir.display(),
            d.inputs.len()
        );
        let manifest = data::prepare(&PrepareOptions {
            inputs: d.inputs.clone(),
            val_inputs: d.val_inputs.clone(),
            val_fraction: d.val_fraction,
            seed: config.run.seed,
            out_dir: d.prepared_dir.clone(),
            overwrite: false,
        })?;
        eprintln!(
            "prepared: train {} tokens ({} docs), val {} tokens ({} docs)",
            manifest.train.tokens,
            manifest.train.documents,
            manifest.val.tokens,
            manifest.val.documents
        );
    }
    let data = data::load_prepared(&d.prepared_dir)?;
    let vocab = config.gpt().vocab_size as u32;
    if data.train.vocab_size() > vocab {
        return Err(TrainError::DataSetup(format!(
            "token store vocabulary ({}) exceeds model.vocab_size ({vocab})",
            data.train.vocab_size()
        )));
    }
    Ok(data)
}
