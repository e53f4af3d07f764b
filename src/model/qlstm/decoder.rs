//! Generation from the recurrent form: each layer keeps its cell state c [1, D], and a token
//! costs one step of every layer, O(1) in the length of the text so far (a transformer
//! re-reads its whole window instead).

use candle_core::Tensor;

use super::cell::step;
use super::model::Qlstm;
use crate::model::arch::Decoder;
use crate::model::ModelError;

/// One stream's decoding state over a built [`Qlstm`].
pub struct QlstmDecoder<'a> {
    model: &'a Qlstm,
    /// Each layer's cell state [1, D]; None before the first token (the zero state).
    cells: Vec<Option<Tensor>>,
    /// Final hidden state [1, D] after the last token fed.
    last: Option<Tensor>,
}

impl<'a> QlstmDecoder<'a> {
    pub fn new(model: &'a Qlstm) -> Self {
        Self {
            model,
            cells: vec![None; model.layers().len()],
            last: None,
        }
    }

    /// Advances every layer by token `token`; returns the final hidden state [1, D].
    fn step_token(&mut self, token: u32) -> Result<Tensor, ModelError> {
        let vocab = self.model.config().vocab_size;
        if token as usize >= vocab {
            return Err(ModelError::BadInput(format!(
                "token {token} out of range for vocab {vocab}"
            )));
        }
        let ids = Tensor::new(&[token], self.model.device())?; // [1]
        let mut x = self.model.embed(&ids)?; // [1, D]
        for (layer, cell) in self.model.layers().iter().zip(self.cells.iter_mut()) {
            let mut mix = |log_f: &Tensor, u: &Tensor| -> Result<Tensor, ModelError> {
                // Detached: a training model's graph would otherwise chain every step.
                let c = step(cell.as_ref(), log_f, u)?.detach();
                *cell = Some(c.clone());
                Ok(c)
            };
            x = self.model.layer(layer, &x, &mut mix)?.detach(); // [1, D]
        }
        self.model.final_norm(&x)
    }
}

impl Decoder for QlstmDecoder<'_> {
    fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>, ModelError> {
        for &token in tokens {
            self.last = Some(self.step_token(token)?);
        }
        let h = self.last.as_ref().ok_or_else(|| {
            ModelError::BadInput("the decoder needs at least one token before logits".into())
        })?;
        Ok(self.model.project(h)?.flatten_all()?.to_vec1::<f32>()?) // [V]
    }
}
