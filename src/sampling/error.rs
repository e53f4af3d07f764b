//! Errors of policy construction, parameters and checkpoint restore.

/// Every error names the policy (`sampling.<name>`) so a config mistake points at its table.
#[derive(Debug, thiserror::Error)]
pub enum SamplingError {
    #[error("unknown sampling policy `{name}`; known policies: {}", .known.join(", "))]
    UnknownPolicy { name: String, known: Vec<String> },

    #[error("sampling policy `{0}` is already registered")]
    DuplicatePolicy(String),

    /// The params table does not parse (unknown key, wrong type).
    #[error("sampling.{policy}: {message}")]
    Params { policy: String, message: String },

    /// The params parse but some values are out of range; all problems are listed together.
    #[error("sampling.{policy}: invalid parameters:\n  - {}", .problems.join("\n  - "))]
    Invalid {
        policy: String,
        problems: Vec<String>,
    },

    /// The policy cannot be built for this env or ledger (e.g. too many blocks, unreadable
    /// score ledger).
    #[error("sampling.{policy}: {message}")]
    Setup { policy: String, message: String },

    /// The policy returned a selection the trainer cannot use (a wrong batch size, a block id
    /// out of range); the run stops instead of indexing out of bounds.
    #[error("sampling policy `{policy}` at step {step}: {message}")]
    InvalidSelection {
        policy: String,
        step: u64,
        message: String,
    },

    /// A checkpoint's sampler state does not fit this policy or ledger.
    #[error("sampling.{policy}: cannot restore sampler state: {message}")]
    State { policy: String, message: String },
}

impl SamplingError {
    pub fn setup(policy: &str, message: impl Into<String>) -> Self {
        Self::Setup {
            policy: policy.into(),
            message: message.into(),
        }
    }

    pub fn state(policy: &str, message: impl Into<String>) -> Self {
        Self::State {
            policy: policy.into(),
            message: message.into(),
        }
    }
}
