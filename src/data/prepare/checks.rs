//! Refusing bad options and input lists before anything is written.

use std::collections::HashSet;

use super::PrepareOptions;
use crate::data::inputs::InputFile;
use crate::data::manifest::missing_files;
use crate::data::{DataError, MANIFEST_FILE, SUPPORTED_INPUTS};

pub(super) fn check_options(opts: &PrepareOptions) -> Result<(), DataError> {
    if opts.inputs.is_empty() {
        return Err(DataError::NoInputs);
    }
    let f = opts.val_fraction;
    if opts.val_inputs.is_empty() && !(f > 0.0 && f < 1.0) {
        return Err(DataError::InvalidArgument(format!(
            "val_fraction must be in (0, 1) when no validation inputs are given, got {f}"
        )));
    }
    if opts.out_dir.join(MANIFEST_FILE).exists() && !opts.overwrite {
        let missing = missing_files(&opts.out_dir);
        let what = if missing.is_empty() {
            "prepared data".to_string()
        } else {
            format!("incomplete prepared data (missing {})", missing.join(", "))
        };
        return Err(DataError::RefuseOverwrite {
            dir: opts.out_dir.clone(),
            what,
        });
    }
    if opts.out_dir.exists() && !opts.out_dir.is_dir() {
        return Err(DataError::invalid(
            &opts.out_dir,
            "output path exists and is not a directory",
        ));
    }
    Ok(())
}

pub(super) fn check_files(
    train: &[InputFile],
    val: &[InputFile],
    opts: &PrepareOptions,
) -> Result<(), DataError> {
    if train.is_empty() {
        return Err(DataError::NoInputs);
    }
    if !opts.val_inputs.is_empty() && val.is_empty() {
        return Err(DataError::InvalidArgument(format!(
            "validation inputs contain no {} files",
            SUPPORTED_INPUTS
        )));
    }
    // A file listed twice would duplicate its documents (in both splits, if train and val).
    let mut seen = HashSet::new();
    for f in train.iter().chain(val) {
        let key = std::fs::canonicalize(&f.path).map_err(|e| DataError::io(&f.path, e))?;
        if !seen.insert(key) {
            return Err(DataError::InvalidArgument(format!(
                "{} is listed more than once among the inputs (train and validation inputs included)",
                f.path.display()
            )));
        }
    }
    Ok(())
}
