//! The models, in candle, written for training: the architecture plugin interface, GPT-2
//! (Radford et al. 2019) with its CPU passes and fused ops, and LLaMA.
//!
//! - [`arch`]: the [`Architecture`] and [`LanguageModel`] traits every architecture implements
//!   (the rest of the framework sees only these), and [`registry`]: name -> constructor.
//! - [`config`]: shapes, presets, parameter and FLOP counts.
//! - [`params`]: the parameter store (Hugging Face `GPT2LMHeadModel` names, sorted, seeded init,
//!   safetensors I/O).
//! - [`tensors`]: the parameters by role, in forward order.
//! - [`gpt`]: the forward pass, in order, in one file (the graph path, candle autograd).
//! - [`cpu`]: the same network's forward and backward written out for the CPU (the path
//!   training takes there in f32).
//! - [`step`]: one optimizer step's losses and gradients, on either path.
//! - [`attention`]: causal self-attention, fused ([`attention_packed`], CUDA kernels with a CPU
//!   twin) or composed, forward and backward.
//! - [`linear`]: the linear layers (Conv1D convention), optionally with GELU.
//! - [`layer_norm`]: LayerNorm from differentiable ops (candle-nn's fused one drops gradients
//!   silently).
//! - [`loss`]: per-token cross-entropy, a fused op (CPU and CUDA) with a real backward.
//! - [`lm_head`]: the tied output projection fused with that cross-entropy.
//! - [`precision`]: f32 or bf16 matmuls (mixed precision with f32 master weights).
//! - [`hf`]: Hugging Face directories, written (any architecture with an HF counterpart) and
//!   read (GPT-2).
//! - [`llama`]: LLaMA (RMSNorm [`rms_norm`], RoPE [`rope`], SwiGLU), Hugging Face names.

pub mod arch;
pub mod attention;
pub mod attention_packed;
pub mod config;
pub mod cpu;
pub mod gpt;
mod gpt_plugin;
pub mod hf;
pub mod ids;
pub mod layer_norm;
pub mod linear;
pub mod llama;
pub mod lm_head;
pub mod loss;
pub mod params;
pub mod precision;
pub mod qlstm;
pub mod registry;
pub mod rms_norm;
pub mod rope;
pub mod step;
pub mod tensors;

pub use arch::{Architecture, BuildOptions, Decoder, Init, LanguageModel, ParamSpec};
pub use config::GptConfig;
pub use gpt::Gpt;
pub use layer_norm::LN_EPS;
pub use params::Params;
pub use precision::Precision;
pub use registry::{ArchSpec, ModelRegistry};
pub use step::{LossAndGrads, Timing};

/// Everything that can go wrong in the model layer.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    #[error("invalid model config: {0}")]
    InvalidConfig(String),

    #[error("unknown parameter `{0}`")]
    MissingParam(String),

    #[error("sequence length {t} exceeds the model context n_positions = {n_positions}")]
    ContextTooLong { t: usize, n_positions: usize },

    #[error("bad input: {0}")]
    BadInput(String),

    /// A file could not be read or written (the message names it).
    #[error("{0}")]
    Io(String),

    /// Some op in the graph does not backpropagate to this parameter (candle ops that drop
    /// gradients silently exist).
    #[error("parameter `{0}` received no gradient")]
    NoGradient(String),

    /// A parameter set that does not match the config; every offending key is listed.
    #[error("parameter set does not match the config: {}", describe_mismatch(.missing, .unexpected, .misshaped))]
    ParamMismatch {
        missing: Vec<String>,
        unexpected: Vec<String>,
        /// (name, expected shape, found shape)
        misshaped: Vec<(String, Vec<usize>, Vec<usize>)>,
    },
}

fn describe_mismatch(
    missing: &[String],
    unexpected: &[String],
    misshaped: &[(String, Vec<usize>, Vec<usize>)],
) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing [{}]", missing.join(", ")));
    }
    if !unexpected.is_empty() {
        parts.push(format!("unexpected [{}]", unexpected.join(", ")));
    }
    if !misshaped.is_empty() {
        let shapes: Vec<String> = misshaped
            .iter()
            .map(|(name, want, got)| format!("{name}: expected {want:?}, found {got:?}"))
            .collect();
        parts.push(format!("mis-shaped [{}]", shapes.join("; ")));
    }
    parts.join("; ")
}
