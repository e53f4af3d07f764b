//! Architectures as plugins: what the rest of the framework knows about a network.
//!
//! The trainer, ledger, policies, budget, eval suite and sampler never name an architecture.
//! They see an [`Architecture`] (parameter table, FLOPs per token, context limit, how to build
//! the network) and a built [`LanguageModel`] (per-sequence losses [B], gradients by parameter
//! name, hidden states and logits for scoring, incremental decoding for generation). GPT-2,
//! LLaMA and the quasi-LSTM implement both; a user's architecture does the same and registers
//! its constructor in a [`ModelRegistry`](super::ModelRegistry).

use std::collections::BTreeMap;
use std::fmt::Debug;

use candle_core::Tensor;

pub use super::ids::{check_ids, check_targets};
use super::loss::token_nll;
use super::step::graph_loss_and_grads;
use super::{LossAndGrads, ModelError, Params, Precision, Timing};
use crate::kernels::Kernels;

/// How a parameter's initial values are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// N(0, std²).
    Normal(f64),
    /// Every element the constant.
    Const(f32),
}

/// One trainable tensor: its checkpoint name, shape, initialisation and weight-decay group.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
    /// Whether AdamW's decoupled weight decay applies (matmul weights, by convention; not
    /// norms, biases or embeddings).
    pub decay: bool,
}

impl ParamSpec {
    pub fn new(name: impl Into<String>, shape: Vec<usize>, init: Init, decay: bool) -> Self {
        Self {
            name: name.into(),
            shape,
            init,
            decay,
        }
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// How a network is built from its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildOptions {
    /// Record ops for backward (the training model); false builds an inference view of the
    /// same storage that builds no graph.
    pub training: bool,
    pub precision: Precision,
    pub kernels: Kernels,
}

impl BuildOptions {
    pub fn training() -> Self {
        Self {
            training: true,
            precision: Precision::F32,
            kernels: Kernels::Fused,
        }
    }

    pub fn inference() -> Self {
        Self {
            training: false,
            ..Self::training()
        }
    }

    pub fn with(self, precision: Precision, kernels: Kernels) -> Self {
        Self {
            precision,
            kernels,
            ..self
        }
    }
}

/// A resolved architecture: one shape of one family, every field known.
pub trait Architecture: Send + Sync + Debug {
    /// The registry name (`gpt2`, `llama`, `qlstm`, or a plugin's).
    fn name(&self) -> &str;

    /// Every field of the shape, explicit: saved with checkpoints, and given back to the
    /// registry's constructor (with no preset) it rebuilds this architecture.
    fn resolved(&self) -> toml::Table;

    fn vocab_size(&self) -> usize;

    /// The longest input the network accepts; `None` when any length works (recurrent).
    fn max_context(&self) -> Option<usize>;

    /// Every trainable tensor. Names are unique; order does not matter (the store sorts).
    fn param_specs(&self) -> Vec<ParamSpec>;

    /// Unique scalar parameters (a tied matrix counted once).
    fn num_params(&self) -> usize {
        self.param_specs().iter().map(ParamSpec::numel).sum()
    }

    /// Parameters excluding embedding tables (Kaplan et al. 2020's N), for scaling fits.
    fn num_params_non_embedding(&self) -> usize;

    /// Training FLOPs per token at sequence length `context` (forward + backward), the
    /// convention of the budget's `flops` amounts and of MFU: 6 per matmul weight plus the
    /// architecture's sequence-mixing term, documented by each implementation.
    fn flops_per_token(&self, context: usize) -> f64;

    /// A lower bound on the bytes one CPU step over `batch` sequences of `context` tokens
    /// holds, checked against RAM when a config loads. The default counts f32 weights (with
    /// gradients and two AdamW moments when `training`) and, when training, one row of f32
    /// logits per token; implementations add their activations.
    fn step_bytes(&self, batch: usize, context: usize, training: bool) -> f64 {
        let per_token = if training {
            self.vocab_size() as f64
        } else {
            0.0
        };
        step_bytes_f32(self.num_params(), batch * context, per_token, training)
    }

    /// The network over `params` (a store made from [`Architecture::param_specs`]).
    fn build(
        &self,
        params: &Params,
        opts: BuildOptions,
    ) -> Result<Box<dyn LanguageModel>, ModelError>;

    /// Hugging Face `config.json` for this shape, when the parameter names are a
    /// `transformers` model's (then `syllabus export` writes a directory it loads).
    fn hf_config(&self) -> Option<serde_json::Value> {
        None
    }
}

/// A built network. Inputs are token ids [B, T] u32 with T at most the architecture's
/// `max_context`.
pub trait LanguageModel: Send + Sync {
    /// Final hidden states [B*T, D] (after the last norm), so scorers project only the rows
    /// they need.
    fn hidden_states(&self, idx: &Tensor) -> Result<Tensor, ModelError>;

    /// Logits [N, V] (f32) of hidden rows `h` [N, D].
    fn project(&self, h: &Tensor) -> Result<Tensor, ModelError>;

    /// The trainable tensors by name as the forward uses them (the parameter Vars on a
    /// training model), for gradients by name.
    fn trainable(&self) -> Vec<(String, Tensor)>;

    /// The longest input accepted; `None` when any length works.
    fn max_context(&self) -> Option<usize>;

    /// Logits [B, T, V] (f32).
    fn forward(&self, idx: &Tensor) -> Result<Tensor, ModelError> {
        let (b, t) = idx.dims2()?;
        let logits = self.project(&self.hidden_states(idx)?)?; // [B*T, V]
        let v = logits.dim(1)?;
        Ok(logits.reshape((b, t, v))?)
    }

    /// Mean next-token NLL of each sequence, [B] f32, differentiable on a training model.
    fn per_sequence_loss(&self, inputs: &Tensor, targets: &Tensor) -> Result<Tensor, ModelError> {
        let (b, t) = check_targets(inputs, targets)?;
        let logits = self.project(&self.hidden_states(inputs)?)?; // [B*T, V]
        let nll = token_nll(&logits, &targets.flatten_all()?)?; // [B*T]
        Ok(nll.reshape((b, t))?.mean(1)?) // [B]
    }

    /// One optimizer step's forward and backward over `micro_batches` (inputs, targets): each
    /// sequence's loss and the gradient of the step's mean token loss for every trainable
    /// tensor. The default runs candle's autograd over [`LanguageModel::per_sequence_loss`].
    fn loss_and_grads(
        &self,
        micro_batches: &[(Tensor, Tensor)],
        timing: Timing,
    ) -> Result<LossAndGrads, ModelError> {
        let named = self.trainable();
        let per_seq = |x: &Tensor, y: &Tensor| self.per_sequence_loss(x, y);
        graph_loss_and_grads(&per_seq, &named, micro_batches, timing)
    }

    /// An incremental decoder for generation, when the network has a cheaper path than
    /// re-running the window for every token (a recurrent state). `None`: the sampler
    /// recomputes the cropped window with [`LanguageModel::forward`].
    fn decoder(&self) -> Option<Box<dyn Decoder + '_>> {
        None
    }
}

/// Autoregressive decoding state.
pub trait Decoder {
    /// Consumes `tokens` (the prompt, then each sampled token) and returns the next-token
    /// logits [V] after the last one.
    fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>, ModelError>;
}

/// Bytes of one f32 step: the weights (with gradients and two AdamW moments when `training`)
/// and `per_token` floats of activations for each of `tokens` tokens.
pub fn step_bytes_f32(params: usize, tokens: usize, per_token: f64, training: bool) -> f64 {
    let state = params as f64 * if training { 4.0 } else { 1.0 };
    4.0 * (state + tokens as f64 * per_token)
}

/// Parameter names to shapes, from specs.
pub fn shapes_of(specs: &[ParamSpec]) -> BTreeMap<String, Vec<usize>> {
    specs
        .iter()
        .map(|s| (s.name.clone(), s.shape.clone()))
        .collect()
}
