//! `[model]`: which architecture, its shape (a preset and/or explicit fields), the training
//! context, and an optional Hugging Face starting point.
//!
//! GPT-2's shape keys sit in `[model]` itself (as before architectures were plugins, so every
//! existing config keeps its meaning and its run id); every other architecture reads its own
//! `[model.<arch>]` table, parsed by its registry constructor with unknown keys rejected.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{ArchSpec, Architecture, ModelRegistry};

/// GPT-2's shape keys, accepted directly in `[model]`.
const GPT2_KEYS: [&str; 5] = ["vocab_size", "n_positions", "n_layer", "n_head", "d_model"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Architecture, by registry name: `gpt2`, `llama`, `qlstm`, or one a plugin registers.
    /// Default `"gpt2"`.
    #[serde(default = "default_arch", skip_serializing_if = "is_gpt2")]
    pub arch: String,
    /// A preset of the architecture (gpt2: `tiny`, `gpt2-124m`, `gpt2-350m`, `gpt2-774m`,
    /// `gpt2-1.5b`; llama: `llama-tiny`, `llama-70m`, `llama-160m`, `llama-410m`, `llama-1b`;
    /// qlstm: `qlstm-tiny`, `qlstm-mini`, `qlstm-small`, `qlstm-medium`, `qlstm-large`,
    /// `qlstm-xl`). Without a preset, every shape field is required.
    pub preset: Option<String>,
    /// gpt2: vocabulary size (at least the tokenizer's: 50257 for the GPT-2 BPE). Default:
    /// the preset's, or `data.tokenizer`'s vocabulary when that is set.
    pub vocab_size: Option<usize>,
    /// gpt2: maximum context (learned position table rows).
    pub n_positions: Option<usize>,
    /// gpt2: transformer blocks.
    pub n_layer: Option<usize>,
    /// gpt2: attention heads per block (must divide `d_model`).
    pub n_head: Option<usize>,
    /// gpt2: residual stream width.
    pub d_model: Option<usize>,
    /// Training context length in tokens (<= the architecture's maximum). Default: the
    /// architecture's maximum context; required for recurrent architectures (qlstm).
    pub context_length: Option<usize>,
    /// A Hugging Face GPT-2 directory (`config.json`, `model.safetensors`; a `transformers`
    /// `save_pretrained` output or a published GPT-2) to start from instead of the seeded
    /// init: continued pretraining. Its shape must be the one set above (e.g. `preset =
    /// "gpt2-124m"` for `gpt2`). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
    /// `[model.<arch>]`: the selected architecture's own fields (see each architecture's
    /// documentation), laid over its preset.
    #[serde(flatten)]
    pub tables: BTreeMap<String, toml::Value>,
}

fn default_arch() -> String {
    "gpt2".to_string()
}

fn is_gpt2(arch: &str) -> bool {
    arch == "gpt2"
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            arch: default_arch(),
            preset: None,
            vocab_size: None,
            n_positions: None,
            n_layer: None,
            n_head: None,
            d_model: None,
            context_length: None,
            init_from: None,
            tables: BTreeMap::new(),
        }
    }
}

impl ModelConfig {
    /// The constructor's input: the preset and the architecture's fields; or every problem
    /// with the keys themselves (a stray key, a table for another architecture, GPT-2 keys
    /// given to another architecture).
    pub fn spec(&self) -> Result<ArchSpec, Vec<String>> {
        let mut problems = Vec::new();
        let mut fields = toml::Table::new();
        for (key, value) in &self.tables {
            match value {
                toml::Value::Table(t) if *key == self.arch => fields.extend(t.clone()),
                toml::Value::Table(_) => problems.push(format!(
                    "[model.{key}] is given but model.arch = {:?}: the table would be ignored; \
                     remove it or select arch = {key:?}",
                    self.arch
                )),
                _ => problems.push(format!("model: unknown field `{key}`")),
            }
        }
        for (key, value) in GPT2_KEYS.iter().zip(self.gpt2_fields()) {
            match (value, is_gpt2(&self.arch)) {
                (Some(v), true) => {
                    fields.insert(key.to_string(), toml::Value::Integer(v as i64));
                }
                (Some(_), false) => problems.push(format!(
                    "model.{key} is a gpt2 key; for arch = {:?} set it in [model.{}]",
                    self.arch, self.arch
                )),
                (None, _) => {}
            }
        }
        match problems.is_empty() {
            true => Ok(ArchSpec {
                preset: self.preset.clone(),
                fields,
            }),
            false => Err(problems),
        }
    }

    fn gpt2_fields(&self) -> [Option<usize>; 5] {
        [
            self.vocab_size,
            self.n_positions,
            self.n_layer,
            self.n_head,
            self.d_model,
        ]
    }

    /// The architecture from `models`, or every problem found. `vocab_size`, when given, is
    /// the default vocabulary (a tokenizer's) where the config sets none.
    pub fn resolve(
        &self,
        models: &ModelRegistry,
        vocab_size: Option<usize>,
    ) -> Result<Box<dyn Architecture>, Vec<String>> {
        let mut spec = self.spec()?;
        if let Some(v) = vocab_size {
            let v = toml::Value::Integer(v as i64);
            spec.fields.entry("vocab_size").or_insert(v);
        }
        models.create(&self.arch, &spec)
    }

    /// Training context length: `context_length`, else the architecture's maximum.
    pub fn context(&self, arch: &dyn Architecture) -> Option<usize> {
        self.context_length.or(arch.max_context())
    }

    /// Writes the resolved shape into the explicit fields (GPT-2's into `[model]`, others' into
    /// `[model.<arch>]`) and the context length, so the saved config is complete and a later
    /// change of a preset's definition cannot change a resumed run.
    pub(super) fn expand(&mut self, arch: &dyn Architecture) {
        self.context_length = self.context(arch);
        let resolved = arch.resolved();
        if is_gpt2(&self.arch) {
            let get = |k: &str| {
                resolved
                    .get(k)
                    .and_then(|v| v.as_integer())
                    .map(|v| v as usize)
            };
            self.vocab_size = get("vocab_size");
            self.n_positions = get("n_positions");
            self.n_layer = get("n_layer");
            self.n_head = get("n_head");
            self.d_model = get("d_model");
        } else {
            let table = toml::Value::Table(resolved);
            self.tables.insert(self.arch.clone(), table);
        }
    }
}

/// The architecture a loaded config resolved to (not serialised: the config's own fields are
/// the record).
#[derive(Clone, Default)]
pub struct ResolvedArch(Option<Arc<dyn Architecture>>);

impl ResolvedArch {
    pub(super) fn new(arch: Arc<dyn Architecture>) -> Self {
        Self(Some(arch))
    }

    pub(super) fn get(&self) -> Option<&Arc<dyn Architecture>> {
        self.0.as_ref()
    }
}

impl std::fmt::Debug for ResolvedArch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(a) => write!(f, "{}", a.name()),
            None => write!(f, "unresolved"),
        }
    }
}

/// Two configs are equal by their fields; the resolved architecture follows from them.
impl PartialEq for ResolvedArch {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
