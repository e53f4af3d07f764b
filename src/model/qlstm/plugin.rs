//! The quasi-LSTM as a registry architecture: [`QlstmConfig`] is its [`Architecture`],
//! [`Qlstm`] its [`LanguageModel`] (candle autograd for training, the default
//! `loss_and_grads`), [`QlstmDecoder`] its O(1)-per-token generation path.

use candle_core::Tensor;

use super::decoder::QlstmDecoder;
use super::model::{Mixer, Qlstm};
use super::specs::qlstm_specs;
use super::QlstmConfig;
use crate::model::arch::{
    step_bytes_f32, Architecture, BuildOptions, Decoder, LanguageModel, ParamSpec,
};
use crate::model::{ModelError, Params};

impl Architecture for QlstmConfig {
    fn name(&self) -> &str {
        "qlstm"
    }

    fn resolved(&self) -> toml::Table {
        // Invariant: six integers always serialise.
        toml::Table::try_from(self).expect("QlstmConfig serialises")
    }

    fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Recurrent: any length (training needs an explicit `context_length`).
    fn max_context(&self) -> Option<usize> {
        None
    }

    fn param_specs(&self) -> Vec<ParamSpec> {
        qlstm_specs(self)
    }

    fn num_params_non_embedding(&self) -> usize {
        QlstmConfig::num_params_non_embedding(self)
    }

    fn flops_per_token(&self, context: usize) -> f64 {
        QlstmConfig::flops_per_token(self, context)
    }

    /// A lower bound: f32 weights (with gradient and two AdamW moments when training), and
    /// per token what autograd keeps of each block, at least ~24 D of gate, norm and state
    /// activations, 3 L·D of the block-parallel forget-product matrices (L = block length;
    /// differences, exps, products) and 2 F of the MLP, plus one f32 logits row. Without
    /// training only one block's temporaries live at a time.
    fn step_bytes(&self, batch: usize, context: usize, training: bool) -> f64 {
        let (d, f) = (self.d_model as f64, self.ff_dim as f64);
        let l = self.block_length.min(context.max(1)) as f64;
        let per_token = match training {
            true => {
                self.n_layer as f64 * (24.0 * d + 3.0 * l * d + 2.0 * f) + self.vocab_size as f64
            }
            false => 8.0 * d + 2.0 * l * d + f,
        };
        step_bytes_f32(self.num_params(), batch * context, per_token, training)
    }

    fn build(
        &self,
        params: &Params,
        opts: BuildOptions,
    ) -> Result<Box<dyn LanguageModel>, ModelError> {
        Ok(Box::new(Qlstm::new(self, params, opts)?))
    }
}

impl LanguageModel for Qlstm {
    fn hidden_states(&self, idx: &Tensor) -> Result<Tensor, ModelError> {
        self.hidden_states_with(idx, Mixer::BlockParallel)
    }

    fn project(&self, h: &Tensor) -> Result<Tensor, ModelError> {
        Qlstm::project(self, h)
    }

    fn trainable(&self) -> Vec<(String, Tensor)> {
        self.named().to_vec()
    }

    fn max_context(&self) -> Option<usize> {
        None
    }

    fn per_sequence_loss(&self, inputs: &Tensor, targets: &Tensor) -> Result<Tensor, ModelError> {
        Qlstm::per_sequence_loss(self, inputs, targets)
    }

    fn decoder(&self) -> Option<Box<dyn Decoder + '_>> {
        Some(Box::new(QlstmDecoder::new(self)))
    }
}
