//! The registries a `syllabus` binary runs with: sampling policies and model architectures.
//! A user's own binary registers its plugins here and hands the set to
//! [`cli::main`](crate::cli::main), so every command sees them.

use crate::model::ModelRegistry;
use crate::sampling::Registry;

#[derive(Clone)]
pub struct Plugins {
    pub policies: Registry,
    pub models: ModelRegistry,
}

impl Plugins {
    /// The built-in policies and architectures.
    pub fn builtin() -> Self {
        Self {
            policies: Registry::builtin(),
            models: ModelRegistry::builtin(),
        }
    }
}

impl Default for Plugins {
    fn default() -> Self {
        Self::builtin()
    }
}
