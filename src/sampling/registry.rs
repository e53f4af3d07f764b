//! Policy registry: name -> constructor. The config names a policy (`[sampling] policy = ...`)
//! and the constructor parses that policy's own table (`[sampling.<name>]`), so a policy written
//! in another crate plugs in with one `register` call.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{curriculum, lfr, loss_priority, online_batch, spaced, uniform};
use super::{PolicyEnv, SamplingError, SamplingPolicy};

/// Builds a policy from its params table (unknown keys must be rejected) and the run's env. A
/// plain `fn` or a closure that captures configuration of its own.
pub type PolicyConstructor = Arc<
    dyn Fn(&toml::Table, &PolicyEnv) -> Result<Box<dyn SamplingPolicy>, SamplingError>
        + Send
        + Sync,
>;

/// Name -> constructor, iterated in name order.
#[derive(Clone, Default)]
pub struct Registry {
    constructors: BTreeMap<String, PolicyConstructor>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
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
            (uniform::NAME, Arc::new(uniform::construct)),
            (lfr::NAME, Arc::new(lfr::construct)),
            (loss_priority::NAME, Arc::new(loss_priority::construct)),
            (spaced::NAME, Arc::new(spaced::construct)),
            (curriculum::NAME, Arc::new(curriculum::construct)),
            (online_batch::NAME, Arc::new(online_batch::construct)),
        ];
        let constructors = builtins
            .into_iter()
            .map(|(name, ctor)| (name.to_string(), ctor))
            .collect();
        Self { constructors }
    }

    /// Adds a policy; a name already taken is an error (a plugin silently replacing a built-in
    /// would change what a config means).
    pub fn register<F>(&mut self, name: &str, ctor: F) -> Result<(), SamplingError>
    where
        F: Fn(&toml::Table, &PolicyEnv) -> Result<Box<dyn SamplingPolicy>, SamplingError>
            + Send
            + Sync
            + 'static,
    {
        if self.constructors.contains_key(name) {
            return Err(SamplingError::DuplicatePolicy(name.into()));
        }
        self.constructors.insert(name.into(), Arc::new(ctor));
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
