//! Data setup: the prepared token store (prepared on first use), checked against the
//! config's tokenizer and model.

use super::TrainError;
use crate::config::Config;
use crate::data::{self, tokenizer_file_hash, Columns, PrepareOptions, PreparedData};

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
            tokenizer: d.tokenizer.clone(),
            columns: Columns {
                text: d.text_column.clone(),
                source: d.source_column.clone(),
            },
            progress: true,
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
    check_tokenizer(config, &data.manifest)?;
    let vocab = config.arch().vocab_size() as u32;
    if data.train.vocab_size() > vocab {
        return Err(TrainError::DataSetup(format!(
            "token store vocabulary ({}) exceeds model.vocab_size ({vocab})",
            data.train.vocab_size()
        )));
    }
    Ok(data)
}

/// The prepared data must be tokenized with the tokenizer the config names (`data.tokenizer`,
/// or GPT-2's BPE when unset): the model's vocabulary was sized from it.
fn check_tokenizer(config: &Config, m: &data::Manifest) -> Result<(), TrainError> {
    let wanted = config
        .data
        .tokenizer
        .as_deref()
        .map(tokenizer_file_hash)
        .transpose()?;
    if wanted == m.tokenizer_hash {
        return Ok(());
    }
    let describe = |hash: &Option<String>| match hash {
        Some(h) => format!("a tokenizer.json ({h})"),
        None => "GPT-2's BPE".to_string(),
    };
    Err(TrainError::DataSetup(format!(
        "data.prepared_dir {} was prepared with {} but the config asks for {}{}: prepare it \
         again with `syllabus prepare --overwrite` or point data.prepared_dir elsewhere",
        config.data.prepared_dir.display(),
        describe(&m.tokenizer_hash),
        describe(&wanted),
        config
            .data
            .tokenizer
            .as_ref()
            .map_or(String::new(), |p| format!(
                " (data.tokenizer = {})",
                p.display()
            ))
    )))
}
