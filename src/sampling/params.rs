//! Parsing a policy's own `[sampling.<name>]` table, shared by built-in and user policies.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{PolicyEnv, SamplingError};
use crate::ledger::LedgerRead;

/// Parses `params` into `P` (derive `Deserialize` with `#[serde(deny_unknown_fields)]` so a
/// misspelt key is an error naming it). Errors are prefixed with `sampling.<policy>:`.
pub fn parse_params<P: DeserializeOwned>(
    policy: &str,
    params: &toml::Table,
) -> Result<P, SamplingError> {
    toml::Value::Table(params.clone())
        .try_into()
        .map_err(|e: toml::de::Error| SamplingError::Params {
            policy: policy.into(),
            message: e.message().trim().to_string(),
        })
}

/// For a policy without parameters: `Ok` when its table is empty, else an error naming the
/// keys it does not take.
pub fn no_params(policy: &str, params: &toml::Table) -> Result<(), SamplingError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoParams {}
    parse_params::<NoParams>(policy, params).map(|NoParams {}| ())
}

/// `Ok` when `problems` is empty, else one error listing every problem (the config rule:
/// report all mistakes at once rather than one per run).
pub fn check_problems(policy: &str, problems: Vec<String>) -> Result<(), SamplingError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SamplingError::Invalid {
            policy: policy.into(),
            problems,
        })
    }
}

/// Pushes a problem unless `value` is a fraction in [0, 1).
pub(crate) fn check_fraction(problems: &mut Vec<String>, key: &str, value: f64) {
    if !(0.0..1.0).contains(&value) {
        problems.push(format!("{key} must be in [0, 1), got {value}"));
    }
}

/// Block count as `u32`: policies store ids in 4 bytes (10^8 blocks = 400 MB per id list).
pub fn block_count(policy: &str, env: &PolicyEnv) -> Result<u32, SamplingError> {
    match u32::try_from(env.n_blocks) {
        Ok(0) => Err(SamplingError::setup(policy, "no training blocks")),
        Ok(n) if n < u32::MAX => Ok(n),
        _ => Err(SamplingError::setup(
            policy,
            format!("{} blocks; at most 2^32 - 2 are supported", env.n_blocks),
        )),
    }
}

/// Errors unless the ledger has exactly `n` records.
pub fn check_ledger(policy: &str, n: u32, ledger: &dyn LedgerRead) -> Result<(), SamplingError> {
    if ledger.len() == n as usize {
        Ok(())
    } else {
        Err(SamplingError::state(
            policy,
            format!("ledger has {} blocks, the policy {n}", ledger.len()),
        ))
    }
}

/// Which ledger loss ranks blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Score {
    /// The loss the last time the block was trained (default for `lfr`).
    #[default]
    LastLoss,
    /// The ledger's exponential moving average of the block's losses.
    EmaLoss,
}

impl Score {
    pub(crate) fn of(self, r: &crate::ledger::BlockRecord) -> f32 {
        match self {
            Score::LastLoss => r.last_loss,
            Score::EmaLoss => r.ema_loss,
        }
    }
}

/// Deserializes a state written by [`save_state`], checking it belongs to `policy`; a failure
/// names the policy.
pub fn load_state<S: DeserializeOwned>(
    policy: &str,
    state: &serde_json::Value,
) -> Result<S, SamplingError> {
    let found = state.get("policy").and_then(|p| p.as_str());
    if found != Some(policy) {
        return Err(SamplingError::state(
            policy,
            format!("the checkpoint's state is for policy {found:?}"),
        ));
    }
    S::deserialize(state).map_err(|e| SamplingError::state(policy, e.to_string()))
}

/// Serializes a policy's checkpoint state, tagged with the policy name (checked by
/// [`load_state`], so a checkpoint cannot be resumed with another policy).
pub fn save_state<S: Serialize>(policy: &str, state: &S) -> serde_json::Value {
    let mut value = match serde_json::to_value(state) {
        Ok(v) => v,
        // Invariant: states are plain structs of numbers, strings and Vecs, which always
        // serialize; a null state fails loudly at restore instead of panicking here.
        Err(_) => serde_json::Value::Null,
    };
    if let Some(obj) = value.as_object_mut() {
        obj.insert("policy".into(), serde_json::Value::String(policy.into()));
    }
    value
}

/// Record `id`, or an unseen record when the ledger is shorter than the policy's block count
/// (a caller bug that `restore_state` reports; at run time the policy degrades instead of
/// indexing out of bounds).
pub(crate) fn read(ledger: &dyn LedgerRead, id: u32) -> crate::ledger::BlockRecord {
    let id = id as usize;
    debug_assert!(id < ledger.len(), "ledger shorter than the policy's blocks");
    if id < ledger.len() {
        ledger.record(id)
    } else {
        crate::ledger::BlockRecord::unseen(0)
    }
}
