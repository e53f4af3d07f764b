//! The quasi-LSTM network (Languini's `projects/lstm` model, arXiv 2309.11197), the forward in
//! order: token embedding scaled by sqrt(D) (no position embedding: the recurrence knows the
//! order), n_layer pre-norm blocks (LayerNorm → qLSTM → residual, LayerNorm → MLP(GELU) →
//! residual), final LayerNorm, untied output head.
//!
//! One block body serves every path; only the cell-state recurrence is swapped in
//! ([`Mixer`]): block-parallel for training and scoring (`scan.rs`), step by step for the
//! reference and for generation (`cell.rs`). Every op is a candle_core op with a backward, so
//! candle's autograd trains it. Matmuls go through [`Precision::matmul`]; the recurrence, the
//! norms and the loss stay f32.
//!
//! Every sequence starts from a zero state (Languini carries the state across batches of a
//! stream; here sequences are independent samples).

use candle_core::{Device, Tensor};

use super::cell::{recurrent, Gates};
use super::scan::block_parallel;
use super::specs::qlstm_specs;
use super::QlstmConfig;
use crate::kernels::Kernels;
use crate::model::arch::{check_ids, check_targets, BuildOptions};
use crate::model::layer_norm::LayerNorm;
use crate::model::linear::{Activation, Linear};
use crate::model::lm_head::lm_head_nll;
use crate::model::{ModelError, Params, Precision};

/// One block's tensors.
#[derive(Clone, Debug)]
pub(crate) struct LayerTensors {
    ln_1: LayerNorm,
    gates: Linear,  // D → 4D, columns [f | i | z | o]
    c_proj: Linear, // D → D: the heads back into the residual stream
    ln_2: LayerNorm,
    c_fc: Linear,     // D → F
    mlp_proj: Linear, // F → D
}

impl LayerTensors {
    /// Block `i`'s tensors (`transformer.h.{i}.*`, see `specs.rs`).
    fn load(i: usize, by_name: &ByName<'_>) -> Result<LayerTensors, ModelError> {
        let p = format!("transformer.h.{i}");
        Ok(LayerTensors {
            ln_1: by_name.norm(&format!("{p}.ln_1"))?,
            gates: by_name.linear(&format!("{p}.lstm.w_gates"))?,
            c_proj: by_name.linear(&format!("{p}.lstm.c_proj"))?,
            ln_2: by_name.norm(&format!("{p}.ln_2"))?,
            c_fc: by_name.linear(&format!("{p}.mlp.c_fc"))?,
            mlp_proj: by_name.linear(&format!("{p}.mlp.c_proj"))?,
        })
    }
}

/// The parameters by name, for assembling the network.
struct ByName<'a>(&'a [(String, Tensor)]);

impl ByName<'_> {
    fn get(&self, name: &str) -> Result<Tensor, ModelError> {
        let found = self.0.iter().find(|(n, _)| n == name);
        let (_, t) = found.ok_or_else(|| ModelError::MissingParam(name.into()))?;
        Ok(t.clone())
    }

    /// The LayerNorm `{prefix}.weight`, `{prefix}.bias`.
    fn norm(&self, prefix: &str) -> Result<LayerNorm, ModelError> {
        let (w, b) = (format!("{prefix}.weight"), format!("{prefix}.bias"));
        Ok(LayerNorm::new(self.get(&w)?, self.get(&b)?))
    }

    /// The linear layer `{prefix}.weight` [in, out], `{prefix}.bias`.
    fn linear(&self, prefix: &str) -> Result<Linear, ModelError> {
        let (w, b) = (format!("{prefix}.weight"), format!("{prefix}.bias"));
        Ok(Linear::new(self.get(&w)?, self.get(&b)?))
    }
}

/// How the cell states of a block are computed from its gates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mixer {
    /// In blocks of `block_length` steps (`scan.rs`): the training form.
    BlockParallel,
    /// One step after the other (`cell.rs`): the reference.
    Recurrent,
}

/// The built network. Tensors share storage with the parameter Vars, so an optimizer step is
/// seen by the next forward without rebuilding.
#[derive(Clone, Debug)]
pub struct Qlstm {
    cfg: QlstmConfig,
    wte: Tensor, // [V, D]
    layers: Vec<LayerTensors>,
    ln_f: LayerNorm,
    lm_head: Tensor, // [V, D]
    /// Every parameter by name, as the forward uses it (for gradients by name).
    named: Vec<(String, Tensor)>,
    precision: Precision,
    kernels: Kernels,
}

impl Qlstm {
    /// The network over `params` (made from [`qlstm_specs`]): the Vars themselves when
    /// `opts.training` (ops recorded for backward), else detached views (no graph).
    pub fn new(
        cfg: &QlstmConfig,
        params: &Params,
        opts: BuildOptions,
    ) -> Result<Qlstm, ModelError> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            return Err(ModelError::InvalidConfig(problems.join("; ")));
        }
        let named = take_params(cfg, params, opts.training)?;
        let by_name = ByName(&named);
        let layers = (0..cfg.n_layer)
            .map(|i| LayerTensors::load(i, &by_name))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Qlstm {
            cfg: cfg.clone(),
            wte: by_name.get("transformer.wte.weight")?,
            layers,
            ln_f: by_name.norm("transformer.ln_f")?,
            lm_head: by_name.get("lm_head.weight")?,
            named,
            precision: opts.precision,
            kernels: opts.kernels,
        })
    }

    pub fn config(&self) -> &QlstmConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        self.wte.device()
    }

    pub(crate) fn named(&self) -> &[(String, Tensor)] {
        &self.named
    }

    pub(crate) fn layers(&self) -> &[LayerTensors] {
        &self.layers
    }

    /// Final hidden states [B*T, D] (after ln_f) of token ids `idx` [B, T], any T ≥ 1, the
    /// recurrence computed by `mixer`.
    pub fn hidden_states_with(&self, idx: &Tensor, mixer: Mixer) -> Result<Tensor, ModelError> {
        let (b, t) = check_ids(idx, None, "idx")?;
        let d = self.cfg.d_model;
        let mut x = self.embed(&idx.flatten_all()?)?; // [B*T, D]
        for layer in &self.layers {
            let mut mix = |log_f: &Tensor, u: &Tensor| -> Result<Tensor, ModelError> {
                let (log_f, u) = (log_f.reshape((b, t, d))?, u.reshape((b, t, d))?);
                let c = match mixer {
                    Mixer::BlockParallel => block_parallel(&log_f, &u, self.cfg.block_length)?,
                    Mixer::Recurrent => recurrent(&log_f, &u)?,
                }; // [B, T, D]
                Ok(c.reshape((b * t, d))?)
            };
            x = self.layer(layer, &x, &mut mix)?; // [B*T, D]
        }
        self.ln_f.forward(&x)
    }

    /// Embedding rows of token ids `ids` [N], times sqrt(D) (Languini's input scaling) →
    /// [N, D].
    pub(crate) fn embed(&self, ids: &Tensor) -> Result<Tensor, ModelError> {
        let scale = (self.cfg.d_model as f64).sqrt();
        Ok((self.wte.index_select(ids, 0)? * scale)?)
    }

    /// One block on rows `x` [N, D]; `mix` turns the rows' (log f, u) [N, D] into cell
    /// states [N, D] (the rows' order and any state are the caller's).
    pub(crate) fn layer(
        &self,
        w: &LayerTensors,
        x: &Tensor,
        mix: &mut dyn FnMut(&Tensor, &Tensor) -> Result<Tensor, ModelError>,
    ) -> Result<Tensor, ModelError> {
        let p = self.precision;
        let h = w.ln_1.forward(x)?; // [N, D]
        let gates = Gates::new(&w.gates.forward(&h, Activation::Identity, p)?)?; // 3 x [N, D]
        let c = mix(&gates.log_f, &gates.u)?; // [N, D]
        let y = w
            .c_proj
            .forward(&gates.output(&c)?, Activation::Identity, p)?; // [N, D]
        let x = (x + y)?;
        let h = w.ln_2.forward(&x)?; // [N, D]
        let h = w.c_fc.forward(&h, Activation::Gelu, p)?; // [N, F]
        Ok((x + w.mlp_proj.forward(&h, Activation::Identity, p)?)?) // [N, D]
    }

    /// The last LayerNorm, for the decoder.
    pub(crate) fn final_norm(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        self.ln_f.forward(x)
    }

    /// Logits [N, V] (f32) of hidden rows `h` [N, D].
    pub fn project(&self, h: &Tensor) -> Result<Tensor, ModelError> {
        Ok(self.precision.matmul(h, &self.lm_head.t()?)?)
    }

    /// Mean next-token NLL of each sequence [B], the output head fused with the
    /// cross-entropy (`lm_head_nll`: the [B*T, V] logits stay out of the autograd graph).
    pub fn per_sequence_loss(
        &self,
        inputs: &Tensor,
        targets: &Tensor,
    ) -> Result<Tensor, ModelError> {
        let (b, t) = check_targets(inputs, targets)?;
        let h = self.hidden_states_with(inputs, Mixer::BlockParallel)?; // [B*T, D]
        let nll = lm_head_nll(
            &h,
            &self.lm_head,
            &targets.flatten_all()?,
            self.precision,
            self.kernels,
        )?; // [B*T]
        Ok(nll.reshape((b, t))?.mean(1)?) // [B]
    }
}

/// The parameters of `cfg` from the store, shapes checked up front (a store made for another
/// shape would otherwise fail deep in the forward), in spec order.
fn take_params(
    cfg: &QlstmConfig,
    params: &Params,
    training: bool,
) -> Result<Vec<(String, Tensor)>, ModelError> {
    let mut out = Vec::new();
    let mut misshaped = Vec::new();
    for spec in qlstm_specs(cfg) {
        let var = params.get(&spec.name)?;
        if var.dims() != spec.shape.as_slice() {
            misshaped.push((spec.name.clone(), spec.shape.clone(), var.dims().to_vec()));
        }
        let t = match training {
            true => var.as_tensor().clone(),
            false => var.as_detached_tensor(),
        };
        out.push((spec.name, t));
    }
    match misshaped.is_empty() {
        true => Ok(out),
        false => Err(ModelError::ParamMismatch {
            missing: vec![],
            unexpected: vec![],
            misshaped,
        }),
    }
}
