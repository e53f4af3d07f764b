//! The run's tokenizer. A run prepared with a `tokenizer.json` keeps a copy in its directory,
//! so `sample` and `eval` decode with the run's own vocabulary even after the prepared data
//! moves; a run without one uses GPT-2's BPE.

use std::path::Path;

use super::TrainError;
use crate::data::{self, tokenizer_file_hash, Tokenizer, TOKENIZER_FILE};

/// Copies the prepared directory's tokenizer file into `run_dir` (when it has one). A copy
/// already there (a resumed run) must be the same file: another one means the data changed.
pub fn save_run_tokenizer(
    run_dir: &Path,
    prepared_dir: &Path,
    manifest: &data::Manifest,
) -> Result<(), TrainError> {
    let Some(hash) = &manifest.tokenizer_hash else {
        return Ok(());
    };
    let dest = run_dir.join(TOKENIZER_FILE);
    if dest.is_file() {
        let found = tokenizer_file_hash(&dest)?;
        if &found != hash {
            return Err(TrainError::DataSetup(format!(
                "{} is {found} but the prepared data's tokenizer is {hash}: the run was \
                 trained with another tokenizer",
                dest.display()
            )));
        }
        return Ok(());
    }
    let tmp = crate::fsutil::tmp_path(&dest);
    let src = prepared_dir.join(TOKENIZER_FILE);
    std::fs::copy(&src, &tmp).map_err(|e| data::DataError::io(&tmp, e))?;
    data::commit_rename(&tmp, &dest)?;
    Ok(())
}

/// The tokenizer of the run in `run_dir`: its copied `tokenizer.json`, else GPT-2's.
pub fn load_run_tokenizer(run_dir: &Path) -> Result<Tokenizer, TrainError> {
    let path = run_dir.join(TOKENIZER_FILE);
    Ok(Tokenizer::load(
        Some(path.as_path()).filter(|p| p.is_file()),
    )?)
}
