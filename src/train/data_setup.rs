//! Data setup: the prepared token store (prepared on first use) and each block's source.

use super::TrainError;
use crate::config::Config;
use crate::data::{self, PrepareOptions, PreparedData};

/// Loads the prepared token store, preparing it from `data.inputs` first when it is missing.
pub fn load_data(config: &Config) -> Result<PreparedData, TrainError> {
    let d = &config.data;
    let missing = data::missing_files(&d.prepared_dir);
    if !missing.is_empty() && d.prepared_dir.join(data::MANIFEST_FILE).is_file() {
        // Someone removed files after a complete prepare (or copied part of a directory):
        // re-preparing silently could produce different data under the same manifest name.
        return Err(TrainError::DataSetup(format!(
            "data.prepared_dir {} holds incomplete prepared data (missing {}): prepare it \
             again with `syllabus prepare --overwrite --out {}` and the same inputs, or \
             remove the directory",
            d.prepared_dir.display(),
            missing.join(", "),
            d.prepared_dir.display()
        )));
    }
    if !missing.is_empty() {
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
            progress: true,
            ..PrepareOptions::default()
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
    let vocab = config.arch().vocab_size() as u32;
    if data.train.vocab_size() > vocab {
        return Err(TrainError::DataSetup(format!(
            "token store vocabulary ({}) exceeds model.vocab_size ({vocab})",
            data.train.vocab_size()
        )));
    }
    Ok(data)
}
