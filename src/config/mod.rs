//! The run configuration: one TOML file, one struct per concern.
//!
//! Every struct rejects unknown keys (`deny_unknown_fields`); defaults and units are documented
//! on each field. [`Config::load`] parses, applies `--set key=value` overrides, and validates once,
//! reporting every problem together with its field path.

mod budget;
mod model;
mod overrides;
mod resources;
mod sampling;
mod schema;
mod validate;

pub use budget::{class_hours, BudgetAmount, BudgetConfig, StepRounding, COMPUTE_CLASSES};
pub use model::ModelConfig;
pub use schema::*;

use std::path::Path;
use std::sync::Arc;

use crate::model::{Architecture, ModelRegistry};

/// Config errors. `Invalid` lists every problem found, one per line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Parse { path: String, message: String },
    #[error("--set {arg}: {message}")]
    Override { arg: String, message: String },
    #[error("invalid config {path}:\n  - {}", problems.join("\n  - "))]
    Invalid { path: String, problems: Vec<String> },
}

impl Config {
    /// Reads `path`, applies `overrides` (`key.path=value`), and validates, with the built-in
    /// architectures.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Config, ConfigError> {
        Self::load_with(path, overrides, &ModelRegistry::builtin())
    }

    /// [`Config::load`] with the architectures of `models` (plugins included).
    pub fn load_with(
        path: &Path,
        overrides: &[String],
        models: &ModelRegistry,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str_with(&text, &path.display().to_string(), overrides, models)
    }

    /// Parses TOML text (named `origin` in messages), applies overrides, validates, with the
    /// built-in architectures.
    pub fn from_toml_str(
        text: &str,
        origin: &str,
        overrides: &[String],
    ) -> Result<Config, ConfigError> {
        Self::from_toml_str_with(text, origin, overrides, &ModelRegistry::builtin())
    }

    /// [`Config::from_toml_str`] with the architectures of `models`.
    pub fn from_toml_str_with(
        text: &str,
        origin: &str,
        overrides: &[String],
        models: &ModelRegistry,
    ) -> Result<Config, ConfigError> {
        let parse_err = |message: String| ConfigError::Parse {
            path: origin.to_string(),
            message,
        };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| parse_err(e.to_string()))?;
        for arg in overrides {
            overrides::apply(&mut table, arg)?;
        }
        let old_steps = table
            .get("train")
            .and_then(|t| t.get("steps"))
            .map(|v| v.to_string());
        if let Some(v) = old_steps {
            return Err(parse_err(format!(
                "train.steps moved to the [budget] table: write `[budget]` `steps = {v}` \
                 (or a tokens, flops or accelerator-hours budget)"
            )));
        }
        let mut config = deserialize(text, &table, overrides).map_err(parse_err)?;
        let vocab = config.data.tokenizer_vocab();
        let default_vocab = vocab
            .as_ref()
            .ok()
            .filter(|_| config.data.tokenizer.is_some());
        let (arch, problems) = match config.model.resolve(models, default_vocab.copied()) {
            Ok(arch) => {
                let arch: Arc<dyn Architecture> = arch.into();
                let problems = config.problems(arch.as_ref(), &vocab);
                (Some(arch), problems)
            }
            Err(mut problems) => {
                problems.extend(vocab.err());
                problems.extend(config.problems_without_model());
                (None, problems)
            }
        };
        if let (Some(arch), true) = (arch, problems.is_empty()) {
            config.model.expand(arch.as_ref());
            config.resolved = model::ResolvedArch::new(arch);
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                path: origin.to_string(),
                problems,
            })
        }
    }

    /// The architecture. Invariant: a loaded config resolved it.
    pub fn arch(&self) -> &Arc<dyn Architecture> {
        self.resolved
            .get()
            .expect("a loaded config has resolved its architecture")
    }

    /// The same model with another vocabulary size (`syllabus bench --vocab-size`: timing a
    /// shape the tokenizer does not fix), rebuilt by `models`; the rest of the config is not
    /// validated again.
    pub fn set_vocab_size(&mut self, v: usize, models: &ModelRegistry) -> Result<(), Vec<String>> {
        let mut spec = self.model.spec()?;
        spec.fields
            .insert("vocab_size".into(), toml::Value::Integer(v as i64));
        let arch: Arc<dyn Architecture> = models.create(&self.model.arch, &spec)?.into();
        self.model.expand(arch.as_ref());
        self.resolved = model::ResolvedArch::new(arch);
        Ok(())
    }

    /// Training context length in tokens. Invariant: validated when the config loaded.
    pub fn context(&self) -> usize {
        self.model
            .context(self.arch().as_ref())
            .expect("validated context length")
    }

    /// The resolved config as TOML (model preset expanded): saved in the run directory.
    pub fn to_toml(&self) -> String {
        // Invariant: every field is a TOML-representable type.
        toml::to_string(self).expect("config serialises to TOML")
    }

    /// Flattened `(key, value)` rows for the start-of-run table.
    pub fn table_rows(&self) -> Vec<(String, String)> {
        let leaves = self.leaves().into_iter();
        leaves
            .map(|(key, value)| (key, value.to_string()))
            .collect()
    }

    /// Every leaf of the resolved config by its dotted key (`optim.lr`), in table order.
    pub fn leaves(&self) -> Vec<(String, toml::Value)> {
        let value = toml::Value::try_from(self).expect("config serialises to TOML");
        let mut leaves = Vec::new();
        flatten("", value, &mut leaves);
        leaves
    }
}

fn flatten(prefix: &str, value: toml::Value, leaves: &mut Vec<(String, toml::Value)>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, leaves);
            }
        }
        other => leaves.push((prefix.to_string(), other)),
    }
}

/// Deserialises the config: from the user's own `text` when there are no overrides, so error
/// lines point into their file; else from `table` (text with overrides applied). A failure
/// with overrides is blamed on the user's file (with its lines) when the file alone fails, and
/// otherwise on the first `--set` that introduces it.
fn deserialize(text: &str, table: &toml::Table, overrides: &[String]) -> Result<Config, String> {
    let from_text = |t: &str| toml::from_str::<Config>(t);
    if overrides.is_empty() {
        return from_text(text).map_err(|e| e.to_string().trim_end().to_string());
    }
    let merged = toml::to_string(table).map_err(|e| e.to_string())?;
    let err = match from_text(&merged) {
        Ok(config) => return Ok(config),
        Err(e) => e,
    };
    if let Err(own) = from_text(text) {
        // The file has an error of its own: report it where it is, whatever --set adds.
        return Err(own.to_string().trim_end().to_string());
    }
    Err(blame_override(text, overrides).unwrap_or_else(|| {
        format!(
            "{} (in the config merged with --set {})",
            err.message(),
            overrides.join(" ")
        )
    }))
}

/// `--set K=V: message` for the first override after which the config no longer deserialises.
fn blame_override(text: &str, overrides: &[String]) -> Option<String> {
    let mut table: toml::Table = toml::from_str(text).ok()?;
    for arg in overrides {
        overrides::apply(&mut table, arg).ok()?;
        let merged = toml::to_string(&table).ok()?;
        if let Err(e) = toml::from_str::<Config>(&merged) {
            return Some(format!("--set {arg}: {}", e.message()));
        }
    }
    None
}
