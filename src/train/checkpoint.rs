//! Checkpoints: `RUN/checkpoints/step_00000100/{model.safetensors, optimizer.safetensors,
//! manifest.json}`.
//!
//! A checkpoint is written into a hidden temp directory and renamed into place only when every
//! file is on disk, so a directory named `step_*` with a manifest is always complete. The
//! manifest records each file's length and CRC32, so truncation or corruption is detected at
//! load time instead of surfacing as garbage weights.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::TrainError;
use crate::fsutil::{fault, from_checksummed_json, to_checksummed_json, unix_now};
use crate::model::{Architecture, ModelRegistry, Params};
use crate::rng::Rng;

pub const CHECKPOINT_FORMAT: &str = "syllabus-checkpoint";
/// 2: the manifest carries a checksum of its own content. Version 1 manifests (no checksum)
/// still load.
pub const CHECKPOINT_VERSION: u32 = 2;
const MODEL_FILE: &str = "model.safetensors";
const OPTIM_FILE: &str = "optimizer.safetensors";
const MANIFEST_FILE: &str = "manifest.json";
/// The ledger as it was at the checkpoint's step (see `ledger::Ledger::snapshot_to`).
pub const LEDGER_SNAPSHOT: &str = "ledger.bin";

/// Everything besides tensors that a resumed run needs to continue bit for bit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps completed (applied or skipped).
    pub step: u64,
    pub tokens_seen: u64,
    /// AdamW updates applied (skipped steps do not count): the bias-correction exponent.
    pub optimizer_updates: u64,
    pub consecutive_skips: u32,
    pub rng: Rng,
    /// The data sampler's cursor, as the sampler serialises it.
    pub data_cursor: serde_json::Value,
    /// Compute spent so far (tokens charged, wall time by activity), so a resumed run
    /// continues the same budget.
    #[serde(default)]
    pub budget: crate::budget::BudgetUsage,
    /// The training-metric window still open at this step, so a run resumed between two log
    /// lines logs the same interval means as one never interrupted.
    #[serde(default)]
    pub log_window: LogWindow,
}

/// An f64 that may be non-finite (a diverging run's gradient norm) in JSON, which has no
/// infinities: finite values as numbers, others as the strings "inf", "-inf" and "NaN".
mod any_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_str(&v.to_string())
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(f64),
            Text(String),
        }
        match Repr::deserialize(d)? {
            Repr::Number(v) => Ok(v),
            Repr::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Sums over the steps since the last logged training line (see `train::report`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogWindow {
    pub steps: u64,
    #[serde(with = "any_f64")]
    pub loss_sum: f64,
    #[serde(with = "any_f64")]
    pub grad_norm_sum: f64,
    /// Training samples per corpus source id.
    pub per_source: Vec<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub crc32: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointManifest {
    pub format: String,
    pub format_version: u32,
    pub state: TrainState,
    /// The architecture's registry name; checkpoints written before architectures were
    /// plugins are GPT-2.
    #[serde(default = "gpt2_name")]
    pub arch: String,
    /// The architecture's resolved shape ([`Architecture::resolved`]).
    pub model: toml::Table,
    /// The resolved run config (TOML text).
    pub config: String,
    pub files: Vec<FileEntry>,
    pub created_unix: u64,
}

fn gpt2_name() -> String {
    "gpt2".to_string()
}

pub struct LoadedCheckpoint {
    pub manifest: CheckpointManifest,
    /// The architecture rebuilt from the manifest.
    pub arch: Arc<dyn Architecture>,
    pub params: Params,
    pub optimizer: BTreeMap<String, Tensor>,
    pub path: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn checkpoints_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

/// The tensors and state a checkpoint holds.
pub struct Contents<'a> {
    pub state: &'a TrainState,
    pub arch: &'a dyn Architecture,
    /// The resolved run config (TOML text).
    pub config_toml: &'a str,
    pub params: &'a Params,
    pub optimizer: &'a BTreeMap<String, Tensor>,
}

/// Writes a complete checkpoint for `contents.state.step` and prunes all but the newest
/// `keep_last`. `extra` writes further files into the (temporary) checkpoint directory and
/// returns their names; they are checksummed in the manifest like the tensors.
pub fn save(
    run_dir: &Path,
    contents: &Contents,
    extra: &mut dyn FnMut(&Path) -> Result<Vec<&'static str>, TrainError>,
    keep_last: usize,
) -> Result<PathBuf, TrainError> {
    let dir = checkpoints_dir(run_dir);
    let name = format!("step_{:08}", contents.state.step);
    let tmp = dir.join(format!(".{name}.tmp"));
    let final_path = dir.join(&name);
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;

    contents.params.save_safetensors(&tmp.join(MODEL_FILE))?;
    fault::point("checkpoint-model");
    let optim: HashMap<&str, Tensor> = contents
        .optimizer
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    candle_core::safetensors::save(&optim, tmp.join(OPTIM_FILE))?;
    fault::point("checkpoint-optimizer");
    let mut names = vec![MODEL_FILE, OPTIM_FILE];
    names.extend(extra(&tmp)?);
    fault::point("checkpoint-extra");

    let files = names
        .iter()
        .map(|f| file_entry(&tmp, f))
        .collect::<Result<Vec<_>, _>>()?;
    let manifest = CheckpointManifest {
        format: CHECKPOINT_FORMAT.into(),
        format_version: CHECKPOINT_VERSION,
        state: contents.state.clone(),
        arch: contents.arch.name().to_string(),
        model: contents.arch.resolved(),
        config: contents.config_toml.into(),
        files,
        created_unix: unix_now(),
    };
    let manifest_bytes = to_checksummed_json(&manifest)
        .map_err(|e| TrainError::Checkpoint(format!("{MANIFEST_FILE}: {e}")))?;
    write_synced(&tmp.join(MANIFEST_FILE), &manifest_bytes)?;
    fault::point("checkpoint-manifest");
    replace_dir(&tmp, &final_path)?;
    fault::point("checkpoint-renamed");
    prune(&dir, keep_last)?;
    Ok(final_path)
}

/// Renames `tmp` to `final_path`, moving an existing checkpoint of the same step aside first
/// (a resumed run re-saving a step) so there is never a moment without a complete copy.
fn replace_dir(tmp: &Path, final_path: &Path) -> Result<(), TrainError> {
    let old = final_path.with_extension("old");
    if final_path.exists() {
        fs::rename(final_path, &old).map_err(io_err(final_path))?;
    }
    fs::rename(tmp, final_path).map_err(io_err(final_path))?;
    if old.exists() {
        fs::remove_dir_all(&old).map_err(io_err(&old))?;
    }
    if let Some(parent) = final_path.parent() {
        // Persist the rename itself; ignore platforms where directories cannot be opened.
        if let Ok(d) = fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let mut f = fs::File::create(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

fn file_entry(dir: &Path, name: &str) -> Result<FileEntry, TrainError> {
    let path = dir.join(name);
    let (bytes, crc32) = length_and_crc(&path)?;
    // Sync what safetensors wrote before the directory is renamed into place.
    fs::File::open(&path)
        .and_then(|f| f.sync_all())
        .map_err(io_err(&path))?;
    Ok(FileEntry {
        name: name.into(),
        bytes,
        crc32,
    })
}

/// Length and CRC32 of a file, streamed: a 10^8-block ledger snapshot is 3.6 GB.
fn length_and_crc(path: &Path) -> Result<(u64, u32), TrainError> {
    let mut file = fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            return Ok((len, hasher.finalize()));
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
}

/// Complete checkpoints (`step_N` directories with a manifest), oldest first.
pub fn list(run_dir: &Path) -> Result<Vec<(u64, PathBuf)>, TrainError> {
    let dir = checkpoints_dir(run_dir);
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
        let path = entry.map_err(io_err(&dir))?.path();
        let step = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("step_"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(step) = step {
            if path.join(MANIFEST_FILE).is_file() {
                out.push((step, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The newest complete checkpoint, if any.
pub fn latest(run_dir: &Path) -> Result<Option<PathBuf>, TrainError> {
    Ok(list(run_dir)?.pop().map(|(_, p)| p))
}

fn prune(dir: &Path, keep_last: usize) -> Result<(), TrainError> {
    let run_dir = dir.parent().unwrap_or(dir);
    let all = list(run_dir)?;
    let excess = all.len().saturating_sub(keep_last.max(1));
    for (_, path) in all.into_iter().take(excess) {
        fs::remove_dir_all(&path).map_err(io_err(&path))?;
    }
    Ok(())
}

/// Reads and verifies a checkpoint directory: format, version, file lengths and checksums,
/// then the tensors (names and shapes checked against the architecture the manifest names,
/// rebuilt from `models`).
pub fn load(
    path: &Path,
    models: &ModelRegistry,
    device: &Device,
) -> Result<LoadedCheckpoint, TrainError> {
    load_checked(path, Known::Registry(models), device)
}

/// [`load`] for a checkpoint that must hold `arch` (a config's): another architecture or
/// shape is an error naming both.
pub fn load_for(
    path: &Path,
    arch: &Arc<dyn Architecture>,
    device: &Device,
) -> Result<LoadedCheckpoint, TrainError> {
    load_checked(path, Known::Arch(arch), device)
}

/// Where the architecture of a checkpoint comes from.
enum Known<'a> {
    Registry(&'a ModelRegistry),
    Arch(&'a Arc<dyn Architecture>),
}

fn load_checked(
    path: &Path,
    known: Known<'_>,
    device: &Device,
) -> Result<LoadedCheckpoint, TrainError> {
    let bad = |msg: String| TrainError::Checkpoint(format!("{}: {msg}", path.display()));
    let manifest_path = path.join(MANIFEST_FILE);
    let text = fs::read(&manifest_path).map_err(io_err(&manifest_path))?;
    // The version decides whether the manifest must carry its checksum (from version 2).
    let version = serde_json::from_slice::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("format_version").and_then(|v| v.as_u64()))
        .unwrap_or(0);
    let manifest: CheckpointManifest = from_checksummed_json(&text, version >= 2)
        .map_err(|e| bad(format!("{MANIFEST_FILE} {e}")))?;
    if manifest.format != CHECKPOINT_FORMAT {
        return Err(bad(format!(
            "not a syllabus checkpoint (format {:?})",
            manifest.format
        )));
    }
    if !(1..=CHECKPOINT_VERSION).contains(&manifest.format_version) {
        return Err(bad(format!(
            "format version {} is not supported (this build reads {CHECKPOINT_VERSION})",
            manifest.format_version
        )));
    }
    for f in &manifest.files {
        let (len, crc) = length_and_crc(&path.join(&f.name))?;
        if len != f.bytes {
            return Err(bad(format!(
                "{} is truncated or altered: {len} bytes, manifest says {}",
                f.name, f.bytes
            )));
        }
        if crc != f.crc32 {
            return Err(bad(format!("{} checksum mismatch: file corrupted", f.name)));
        }
    }
    let arch: Arc<dyn Architecture> = match known {
        Known::Registry(models) => models.rebuild(&manifest.arch, &manifest.model)?.into(),
        Known::Arch(arch) => {
            let ours = arch.resolved();
            if manifest.arch != arch.name() || manifest.model != ours {
                return Err(bad(format!(
                    "holds model {} {}, not the config's {} {ours}",
                    manifest.arch,
                    manifest.model,
                    arch.name()
                )));
            }
            arch.clone()
        }
    };
    let specs = arch.param_specs();
    let params = Params::load_safetensors(&specs, &path.join(MODEL_FILE), device)?;
    let optimizer = candle_core::safetensors::load(path.join(OPTIM_FILE), device)?
        .into_iter()
        .collect();
    Ok(LoadedCheckpoint {
        manifest,
        arch,
        params,
        optimizer,
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::LogWindow;

    #[test]
    fn log_windows_with_non_finite_sums_round_trip_exactly() {
        for (loss, norm) in [(0.1 + 0.2, 1e300), (f64::INFINITY, f64::NEG_INFINITY)] {
            let w = LogWindow {
                steps: 3,
                loss_sum: loss,
                grad_norm_sum: norm,
                per_source: vec![1, 2],
            };
            let back: LogWindow =
                serde_json::from_str(&serde_json::to_string(&w).unwrap()).unwrap();
            assert_eq!(back, w);
        }
        let nan = LogWindow {
            grad_norm_sum: f64::NAN,
            ..Default::default()
        };
        let back: LogWindow = serde_json::from_str(&serde_json::to_string(&nan).unwrap()).unwrap();
        assert!(back.grad_norm_sum.is_nan());
    }
}
