//! GPT-2 as a registry architecture: [`GptConfig`] is its [`Architecture`], [`Gpt`] its
//! [`LanguageModel`].

use candle_core::Tensor;

use super::arch::{step_bytes_f32, Architecture, BuildOptions, LanguageModel, ParamSpec};
use super::params::gpt2_specs;
use super::registry::{accept, resolve_fields, ArchSpec};
use super::{hf, Gpt, GptConfig, LossAndGrads, ModelError, Params, Timing};

impl GptConfig {
    /// The registry constructor: a preset and/or explicit fields (`[model]`'s GPT-2 keys).
    pub fn construct(spec: &ArchSpec) -> Result<Box<dyn Architecture>, Vec<String>> {
        let cfg: GptConfig = resolve_fields("gpt2", spec, GptConfig::PRESETS, GptConfig::preset)?;
        let problems = cfg.problems();
        accept(cfg, problems)
    }

    /// Every problem of the shape, each naming its `model` field.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("n_positions", self.n_positions),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("d_model", self.d_model),
        ];
        for (field, _) in sizes.iter().filter(|(_, v)| *v == 0) {
            p.push(format!("model.{field} must be > 0"));
        }
        if self.n_head > 0 && self.d_model % self.n_head != 0 {
            p.push(format!(
                "model.n_head must divide model.d_model ({} % {} != 0)",
                self.d_model, self.n_head
            ));
        }
        p
    }
}

impl Architecture for GptConfig {
    fn name(&self) -> &str {
        "gpt2"
    }

    fn resolved(&self) -> toml::Table {
        // Invariant: five integers always serialise.
        toml::Table::try_from(self).expect("GptConfig serialises")
    }

    fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    fn max_context(&self) -> Option<usize> {
        Some(self.n_positions)
    }

    fn param_specs(&self) -> Vec<ParamSpec> {
        gpt2_specs(self)
    }

    fn num_params_non_embedding(&self) -> usize {
        GptConfig::num_params_non_embedding(self)
    }

    fn flops_per_token(&self, context: usize) -> f64 {
        GptConfig::flops_per_token(self, context)
    }

    /// The CPU passes' buffers (`model/cpu/workspace.rs`): 16 D per layer kept for the
    /// backward, ~9 D of backward scratch and the vocabulary's logits per token when training.
    fn step_bytes(&self, batch: usize, context: usize, training: bool) -> f64 {
        let (d, layers) = (self.d_model as f64, self.n_layer as f64);
        let per_token = match training {
            true => layers * 16.0 * d + 9.0 * d + self.vocab_size as f64,
            false => 2.0 * 16.0 * d,
        };
        step_bytes_f32(self.num_params(), batch * context, per_token, training)
    }

    fn build(
        &self,
        params: &Params,
        opts: BuildOptions,
    ) -> Result<Box<dyn LanguageModel>, ModelError> {
        let gpt = match opts.training {
            true => Gpt::new(self, params)?,
            false => Gpt::new_inference(self, params)?,
        };
        Ok(Box::new(
            gpt.with_precision(opts.precision)
                .with_kernels(opts.kernels),
        ))
    }

    fn hf_config(&self) -> Option<serde_json::Value> {
        Some(hf::hf_config(self))
    }
}

impl LanguageModel for Gpt {
    fn hidden_states(&self, idx: &Tensor) -> Result<Tensor, ModelError> {
        Gpt::hidden_states(self, idx)
    }

    fn project(&self, h: &Tensor) -> Result<Tensor, ModelError> {
        Gpt::project(self, h)
    }

    fn trainable(&self) -> Vec<(String, Tensor)> {
        self.named_tensors()
            .into_iter()
            .map(|(name, t)| (name, t.clone()))
            .collect()
    }

    fn max_context(&self) -> Option<usize> {
        Some(self.config().n_positions)
    }

    fn forward(&self, idx: &Tensor) -> Result<Tensor, ModelError> {
        Gpt::forward(self, idx)
    }

    fn per_sequence_loss(&self, inputs: &Tensor, targets: &Tensor) -> Result<Tensor, ModelError> {
        Gpt::per_sequence_loss(self, inputs, targets)
    }

    fn loss_and_grads(
        &self,
        micro_batches: &[(Tensor, Tensor)],
        timing: Timing,
    ) -> Result<LossAndGrads, ModelError> {
        Gpt::loss_and_grads(self, micro_batches, timing)
    }
}
