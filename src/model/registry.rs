//! The model registry: architecture name -> constructor, beside the sampling-policy registry.
//! `[model] arch = "NAME"` picks the constructor, which reads the `[model.NAME]` table (and a
//! preset) and returns the resolved [`Architecture`].

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::llama::LlamaConfig;
use super::qlstm::QlstmConfig;
use super::{Architecture, GptConfig, ModelError};

/// What a constructor gets: the preset name (if any) and the architecture's own table, whose
/// fields override the preset's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArchSpec {
    pub preset: Option<String>,
    pub fields: toml::Table,
}

impl ArchSpec {
    /// The spec that rebuilds an architecture from its [`Architecture::resolved`] table.
    pub fn resolved(fields: toml::Table) -> Self {
        Self {
            preset: None,
            fields,
        }
    }
}

/// Builds an architecture from its spec; every problem found is returned, each naming its
/// field.
pub type ArchConstructor =
    Arc<dyn Fn(&ArchSpec) -> Result<Box<dyn Architecture>, Vec<String>> + Send + Sync>;

#[derive(Clone, Default)]
pub struct ModelRegistry {
    ctors: BTreeMap<String, ArchConstructor>,
}

impl std::fmt::Debug for ModelRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.ctors.keys()).finish()
    }
}

impl ModelRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// `gpt2` (GPT-2), `llama` (LLaMA) and `qlstm` (Languini's quasi-LSTM).
    pub fn builtin() -> Self {
        let mut r = Self::new();
        let builtins: [(&str, ArchConstructor); 3] = [
            ("gpt2", Arc::new(GptConfig::construct)),
            ("llama", Arc::new(LlamaConfig::construct)),
            ("qlstm", Arc::new(QlstmConfig::construct)),
        ];
        for (name, ctor) in builtins {
            r.ctors.insert(name.to_string(), ctor);
        }
        r
    }

    /// Adds an architecture; a name already taken is an error.
    pub fn register<F>(&mut self, name: &str, ctor: F) -> Result<(), ModelError>
    where
        F: Fn(&ArchSpec) -> Result<Box<dyn Architecture>, Vec<String>> + Send + Sync + 'static,
    {
        if self.ctors.contains_key(name) {
            return Err(ModelError::InvalidConfig(format!(
                "architecture `{name}` is already registered"
            )));
        }
        self.ctors.insert(name.to_string(), Arc::new(ctor));
        Ok(())
    }

    /// The architecture `name` built from `spec`, or every problem (an unknown name lists the
    /// known ones).
    pub fn create(
        &self,
        name: &str,
        spec: &ArchSpec,
    ) -> Result<Box<dyn Architecture>, Vec<String>> {
        match self.ctors.get(name) {
            Some(ctor) => ctor(spec),
            None => Err(vec![format!(
                "model.arch: unknown architecture `{name}` (known: {})",
                self.names().join(", ")
            )]),
        }
    }

    /// Rebuilds a saved architecture (a checkpoint's `arch` and resolved table).
    pub fn rebuild(
        &self,
        name: &str,
        resolved: &toml::Table,
    ) -> Result<Box<dyn Architecture>, ModelError> {
        self.create(name, &ArchSpec::resolved(resolved.clone()))
            .map_err(|problems| ModelError::InvalidConfig(problems.join("; ")))
    }

    pub fn names(&self) -> Vec<&str> {
        self.ctors.keys().map(String::as_str).collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.ctors.contains_key(name)
    }
}

/// The usual way an architecture reads its spec: its preset (by name, from `preset`) as a
/// table, the spec's fields laid over it, the result deserialised into the resolved struct
/// `T` (which should reject unknown fields). Messages are prefixed `model.<arch>`.
pub fn resolve_fields<T: Serialize + DeserializeOwned>(
    arch: &str,
    spec: &ArchSpec,
    presets: &[&str],
    preset: impl Fn(&str) -> Option<T>,
) -> Result<T, Vec<String>> {
    let mut table = match &spec.preset {
        None => toml::Table::new(),
        Some(name) => match preset(name) {
            Some(p) => toml::Table::try_from(&p).map_err(|e| vec![format!("model.{arch}: {e}")])?,
            None => {
                return Err(vec![format!(
                    "model.preset: unknown preset `{name}` for arch = {arch:?} (known: {})",
                    presets.join(", ")
                )])
            }
        },
    };
    for (k, v) in &spec.fields {
        table.insert(k.clone(), v.clone());
    }
    T::deserialize(toml::Value::Table(table)).map_err(|e| {
        let hint = match spec.preset {
            None => " (set model.preset or every field)",
            Some(_) => "",
        };
        vec![format!("model.{arch}: {}{hint}", e.to_string().trim_end())]
    })
}

/// The architecture when `problems` (its validation) is empty, else the problems.
pub fn accept<A: Architecture + 'static>(
    arch: A,
    problems: Vec<String>,
) -> Result<Box<dyn Architecture>, Vec<String>> {
    match problems.is_empty() {
        true => Ok(Box::new(arch)),
        false => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_and_unknown_arch_lists_them() {
        let r = ModelRegistry::builtin();
        assert_eq!(r.names(), vec!["gpt2", "llama", "qlstm"]);
        let err = r.create("mamba", &ArchSpec::default()).unwrap_err();
        assert!(
            err[0].contains("mamba") && err[0].contains("llama"),
            "{err:?}"
        );
    }

    #[test]
    fn duplicate_registration_is_refused() {
        let mut r = ModelRegistry::builtin();
        let err = r.register("gpt2", GptConfig::construct).unwrap_err();
        assert!(err.to_string().contains("already registered"), "{err}");
    }
}
