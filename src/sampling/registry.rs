//! Policy registry: name -> constructor. The config names a policy (`[sampling] policy = ...`)
//! and the constructor parses that policy's own table (`[sampling.<name>]`), so a policy written
//! in another crate plugs in with one `register` call.

use std::collections::BTreeMap;

use super::{curriculum, lfr, loss_priority, online_batch, spaced, uniform};
use super::{PolicyEnv, SamplingError, SamplingPolicy};

/// Builds a policy from its params table (unknown keys must be rejected) and the run's env.
pub type PolicyConstructor =
    fn(params: &toml::Table, env: &PolicyEnv) -> Result<Box<dyn SamplingPolicy>, SamplingError>;

/// Name -> constructor, iterated in name order.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    constructors: BTreeMap<String, PolicyConstructor>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in policies: `curriculum`, `lfr`, `loss-priority`, `online-batch`, `spaced`,
    /// `uniform`.
    pub fn builtin() -> Self {
        let builtins: [(&str, PolicyConstructor); 6] = [
            (uniform::NAME, uniform::construct),
            (lfr::NAME, lfr::construct),
            (loss_priority::NAME, loss_priority::construct),
            (spaced::NAME, spaced::construct),
            (curriculum::NAME, curriculum::construct),
            (online_batch::NAME, online_batch::construct),
        ];
        let constructors = builtins
            .into_iter()
            .map(|(name, ctor)| (name.to_string(), ctor))
            .collect();
        Self { constructors }
    }

    /// Adds a policy; a name already taken is an error (a plugin silently replacing a built-in
    /// would change what a config means).
    pub fn register(&mut self, name: &str, ctor: PolicyConstructor) -> Result<(), SamplingError> {
        if self.constructors.contains_key(name) {
            return Err(SamplingError::DuplicatePolicy(name.into()));
        }
        self.constructors.insert(name.into(), ctor);
        Ok(())
    }

    /// Builds policy `name` from its params table; an unknown name lists the known ones.
    pub fn create(
        &self,
        name: &str,
        params: &toml::Table,
        env: &PolicyEnv,
    ) -> Result<Box<dyn SamplingPolicy>, SamplingError> {
        let ctor = self
            .constructors
            .get(name)
            .ok_or_else(|| SamplingError::UnknownPolicy {
                name: name.into(),
                known: self.names().into_iter().map(String::from).collect(),
            })?;
        ctor(params, env)
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.constructors.keys().map(String::as_str).collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.constructors.contains_key(name)
    }
}
