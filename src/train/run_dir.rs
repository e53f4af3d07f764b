//! The run directory: refuses to mix two runs, and checks that a resume uses the same config.

use std::fs;
use std::path::Path;

use super::{checkpoint, TrainError};

/// The resolved config a run was started with, in its run directory.
pub const CONFIG_FILE: &str = "config.toml";

/// Readies `dir` for a run of `config_toml` (the resolved config).
///
/// - fresh directory: created, config saved;
/// - directory holding a run, no `resume`: refused unless `overwrite` (then its checkpoints,
///   event files, metrics and config are removed first);
/// - `resume`: the directory must hold a complete checkpoint and the same config.
pub fn prepare(
    dir: &Path,
    config_toml: &str,
    resume: bool,
    overwrite: bool,
) -> Result<(), TrainError> {
    let io = |source| TrainError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let saved_path = dir.join(CONFIG_FILE);
    let holds_run = saved_path.exists() || dir.join("checkpoints").exists();
    if resume {
        if checkpoint::latest(dir)?.is_none() {
            return Err(TrainError::RunDir(format!(
                "{}: --resume given but it holds no complete checkpoint (the run stopped \
                 before its first one); start it again with --overwrite",
                dir.display()
            )));
        }
        let saved = fs::read_to_string(&saved_path).map_err(io)?;
        return check_same_config(dir, &saved, config_toml);
    }
    if holds_run {
        if !overwrite {
            return Err(TrainError::RunDir(format!(
                "{} already holds a run; pass --resume to continue it or --overwrite to replace it",
                dir.display()
            )));
        }
        clear(dir)?;
    }
    fs::create_dir_all(dir).map_err(io)?;
    crate::fsutil::write_atomic(&saved_path, config_toml.as_bytes()).map_err(io)
}

/// Keys (section, key) that only locate input files which cannot change what is trained:
/// configs differing in them alone are the same run. Kept to the eval task directory (its
/// default, the user cache, differs from the directory older runs saved, and those still
/// resume); data, initial weights and throughput files define the run and are compared.
const LOCATION_KEYS: [(&str, &str); 1] = [("eval", "tasks_dir")];

/// A config text as the table runs are compared by: [`LOCATION_KEYS`] removed. `None` when
/// the text does not parse.
fn comparable(text: &str) -> Option<toml::Table> {
    let mut table = text.parse::<toml::Table>().ok()?;
    for (section, key) in LOCATION_KEYS {
        if let Some(toml::Value::Table(t)) = table.get_mut(section) {
            t.remove(key);
        }
    }
    Some(table)
}

/// Whether two config texts are the same config: equal as TOML tables (formatting and key
/// order aside), apart from keys that only locate eval files (`eval.tasks_dir`); text that
/// does not parse is never the same.
pub fn same_config(a: &str, b: &str) -> bool {
    matches!((comparable(a), comparable(b)), (Some(a), Some(b)) if a == b)
}

fn check_same_config(dir: &Path, saved: &str, current: &str) -> Result<(), TrainError> {
    let (Some(a), Some(b)) = (comparable(saved), comparable(current)) else {
        return Err(TrainError::RunDir(format!(
            "{}: {CONFIG_FILE} is unreadable",
            dir.display()
        )));
    };
    if a == b {
        return Ok(());
    }
    let mut diffs = Vec::new();
    diff(
        "",
        &toml::Value::Table(a),
        &toml::Value::Table(b),
        &mut diffs,
    );
    Err(TrainError::RunDir(format!(
        "{}: --resume with a different config than the run's {CONFIG_FILE}: {}",
        dir.display(),
        diffs.join(", ")
    )))
}

fn diff(prefix: &str, a: &toml::Value, b: &toml::Value, out: &mut Vec<String>) {
    match (a, b) {
        (toml::Value::Table(ta), toml::Value::Table(tb)) => {
            let keys: std::collections::BTreeSet<_> = ta.keys().chain(tb.keys()).collect();
            for k in keys {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match (ta.get(k), tb.get(k)) {
                    (Some(x), Some(y)) => diff(&key, x, y, out),
                    (x, y) => out.push(format!("{key}: {} -> {}", show(x), show(y))),
                }
            }
        }
        _ if a != b => out.push(format!("{prefix}: {a} -> {b}")),
        _ => {}
    }
}

fn show(v: Option<&toml::Value>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "(unset)".into())
}

/// Removes what a previous run wrote, and nothing else the user may keep there.
fn clear(dir: &Path) -> Result<(), TrainError> {
    let rm_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TrainError::Io { path, source }
    };
    let ckpt = dir.join("checkpoints");
    if ckpt.exists() {
        fs::remove_dir_all(&ckpt).map_err(rm_err(&ckpt))?;
    }
    for entry in fs::read_dir(dir).map_err(rm_err(dir))? {
        let path = entry.map_err(rm_err(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let ours = name.starts_with("events.out.tfevents.")
            || matches!(
                name,
                "metrics.jsonl" | CONFIG_FILE | super::SUMMARY_FILE | crate::eval::EVAL_FILE
            );
        if ours {
            fs::remove_file(&path).map_err(rm_err(&path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::same_config;

    #[test]
    fn configs_differing_only_in_eval_file_locations_are_the_same() {
        let base = "[eval]\ntasks = [\"val\"]\n[optim]\nlr = 0.1\n";
        let located = base.replace("[optim]", "tasks_dir = \"elsewhere/eval\"\n[optim]");
        assert!(same_config(base, &located), "{located}");
        assert!(!same_config(base, &base.replace("\"val\"", "\"piqa\"")));
        assert!(!same_config(base, &base.replace("0.1", "0.2")));
        assert!(!same_config(base, "not = toml = text"));
    }
}
