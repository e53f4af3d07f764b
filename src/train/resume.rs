//! Choosing and verifying the checkpoint a resumed run continues from. Everything is checked
//! before anything in the run directory is replaced: the manifest's own checksum, every file's
//! length and CRC32, the tensors, that the checkpoint belongs to this config, and that its
//! ledger snapshot belongs to this run. A bad checkpoint leaves the directory untouched and the
//! error lists the other checkpoints to resume from instead (`--resume-from`); there is no
//! silent fall-back to an older one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::Device;

use super::checkpoint::{self, LoadedCheckpoint, LEDGER_SNAPSHOT};
use super::run_dir::same_config;
use super::{TrainError, TrainOptions};
use crate::ledger::LedgerReader;
use crate::model::Architecture;

/// The verified checkpoint to resume from: `opts.resume_from`, or the run's newest. With an
/// explicit older checkpoint, the newer ones are set aside as `.superseded_step_*`.
pub fn load_for_resume(
    run_dir: &Path,
    opts: &TrainOptions,
    device: &Device,
    arch: &Arc<dyn Architecture>,
    config_toml: &str,
) -> Result<LoadedCheckpoint, TrainError> {
    let all = checkpoint::list(run_dir)?;
    let path = match &opts.resume_from {
        Some(p) => p.clone(),
        None => all.last().map(|(_, p)| p.clone()).ok_or_else(|| {
            TrainError::RunDir(format!(
                "{}: --resume given but the run has no checkpoint (it stopped before its first); \
                 start it again with --overwrite",
                run_dir.display()
            ))
        })?,
    };
    let check = Expected {
        arch,
        config_toml,
        run_id: started_run_id(run_dir)?,
    };
    let loaded = verify(&path, device, &check).map_err(|e| explain(e, &path, &all))?;
    if opts.resume_from.is_some() {
        set_aside_newer(run_dir, loaded.manifest.state.step, &all)?;
    }
    Ok(loaded)
}

/// The run's id: that of the config it started with (its `config.toml`, which a resume
/// keeps), not of the current text, which may differ in keys that only locate eval files.
fn started_run_id(run_dir: &Path) -> Result<u64, TrainError> {
    let path = run_dir.join(super::CONFIG_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(run_id(&text)),
        Err(source) => Err(TrainError::Io { path, source }),
    }
}

/// What a checkpoint must match to be resumed.
struct Expected<'a> {
    arch: &'a Arc<dyn Architecture>,
    /// The current config (compared with [`same_config`]).
    config_toml: &'a str,
    /// The run's id, which its ledger snapshot carries.
    run_id: u64,
}

fn verify(path: &Path, device: &Device, e: &Expected) -> Result<LoadedCheckpoint, TrainError> {
    let loaded = checkpoint::load_for(path, e.arch, device)?;
    if !same_config(&loaded.manifest.config, e.config_toml) {
        return Err(TrainError::Checkpoint(
            "it was written by a run with another config".into(),
        ));
    }
    let snapshot = path.join(LEDGER_SNAPSHOT);
    let ledger_run = LedgerReader::open(&snapshot)?.header().run_id;
    let expected = e.run_id;
    if ledger_run != expected {
        return Err(TrainError::Checkpoint(format!(
            "its ledger snapshot belongs to another run (run id {ledger_run:#x}, expected \
             {expected:#x})"
        )));
    }
    Ok(loaded)
}

/// The verification error, with what the user can do about it.
fn explain(err: TrainError, path: &Path, all: &[(u64, PathBuf)]) -> TrainError {
    let others: Vec<String> = all
        .iter()
        .filter(|(_, p)| p != path)
        .map(|(step, p)| format!("step {step} ({})", p.display()))
        .collect();
    let what_now = match others.is_empty() {
        true => "The run has no other checkpoint.".to_string(),
        false => format!(
            "Other checkpoints of the run (not checked): {}; continue from one with \
             --resume-from DIR.",
            others.join(", ")
        ),
    };
    TrainError::Checkpoint(format!(
        "{}: cannot resume from it: {err}. Nothing in the run directory was changed. {what_now}",
        path.display()
    ))
}

/// Renames checkpoints newer than `step` to `.superseded_step_*` (ignored by `list`): the run
/// now continues from an older step, and those describe a future it no longer has.
fn set_aside_newer(run_dir: &Path, step: u64, all: &[(u64, PathBuf)]) -> Result<(), TrainError> {
    for (s, p) in all.iter().filter(|(s, _)| *s > step) {
        let mut to = p.with_file_name(format!(".superseded_step_{s:08}"));
        let mut n = 1;
        while to.exists() {
            to = p.with_file_name(format!(".superseded_step_{s:08}.{n}"));
            n += 1;
        }
        std::fs::rename(p, &to).map_err(|source| TrainError::Io {
            path: p.clone(),
            source,
        })?;
        eprintln!(
            "{}: resuming from step {step}; set the newer checkpoint of step {s} aside as {}",
            run_dir.display(),
            to.display()
        );
    }
    Ok(())
}

/// FNV-1a of the resolved config a run started with: identifies which run a ledger belongs
/// to, and is the same for two runs of the same config text (so their ledgers can be compared
/// byte for byte). A resumed run keeps its id: it is checked against the run directory's
/// `config.toml`, never rewritten by a resume.
pub fn run_id(config_toml: &str) -> u64 {
    config_toml.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
