//! AdamW (Loshchilov & Hutter 2019) with decoupled weight decay, a no-decay group, and moments
//! that can be exported to and restored from a checkpoint (candle-nn's AdamW keeps them
//! private and decays every tensor, see candle-notes.md).

use std::collections::BTreeMap;

use candle_core::Tensor;

use super::OptimError;
use crate::model::Params;

/// Hyper-parameters that stay fixed for a run (the LR comes from the schedule each step).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWParams {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

struct Moments {
    m: Tensor,
    v: Tensor,
}

pub struct AdamW {
    hp: AdamWParams,
    /// Updates applied so far (bias-correction exponent).
    t: u64,
    /// Keyed by parameter name: iteration order is sorted, hence deterministic.
    state: BTreeMap<String, Moments>,
}

impl AdamW {
    /// Zero moments for every parameter.
    pub fn new(params: &Params, hp: AdamWParams) -> Result<Self, OptimError> {
        let mut state = BTreeMap::new();
        for (name, var) in params.iter() {
            let zeros = var.as_tensor().zeros_like()?;
            state.insert(
                name.clone(),
                Moments {
                    m: zeros.clone(),
                    v: zeros,
                },
            );
        }
        Ok(Self { hp, t: 0, state })
    }

    pub fn steps_taken(&self) -> u64 {
        self.t
    }

    /// One update with learning rate `lr`; every gradient is multiplied by `grad_scale` first
    /// (global-norm clipping). Parameters without a gradient are an error: a silent skip is how
    /// candle's gradient-dropping ops go unnoticed.
    pub fn step(
        &mut self,
        params: &Params,
        grads: &BTreeMap<String, Tensor>,
        lr: f64,
        grad_scale: f64,
    ) -> Result<(), OptimError> {
        self.t += 1;
        let AdamWParams {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.hp;
        let bc1 = 1.0 - beta1.powi(self.t as i32);
        let bc2 = 1.0 - beta2.powi(self.t as i32);
        for (name, var) in params.iter() {
            let g = grads
                .get(name)
                .ok_or_else(|| OptimError::State(format!("no gradient for parameter {name}")))?
                .affine(grad_scale, 0.0)?;
            let st = self
                .state
                .get_mut(name)
                .ok_or_else(|| OptimError::State(format!("no moments for parameter {name}")))?;
            st.m = (st.m.affine(beta1, 0.0)? + g.affine(1.0 - beta1, 0.0)?)?;
            st.v = (st.v.affine(beta2, 0.0)? + g.sqr()?.affine(1.0 - beta2, 0.0)?)?;
            let m_hat = st.m.affine(1.0 / bc1, 0.0)?;
            let denom = st.v.affine(1.0 / bc2, 0.0)?.sqrt()?.affine(1.0, eps)?;
            let update = (m_hat / denom)?;
            let decay = if Params::decays(name) {
                1.0 - lr * weight_decay
            } else {
                1.0
            };
            let p = var.as_tensor().affine(decay, 0.0)?;
            var.set(&(p - update.affine(lr, 0.0)?)?)?;
        }
        Ok(())
    }

    /// Moments as named tensors (`m.<param>`, `v.<param>`) for a safetensors checkpoint.
    pub fn state_tensors(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for (name, st) in &self.state {
            out.insert(format!("m.{name}"), st.m.clone());
            out.insert(format!("v.{name}"), st.v.clone());
        }
        out
    }

    /// Restores moments saved by [`AdamW::state_tensors`] after `t` updates. Every parameter's
    /// moments must be present with the parameter's shape.
    pub fn load_state(
        &mut self,
        mut tensors: BTreeMap<String, Tensor>,
        t: u64,
    ) -> Result<(), OptimError> {
        let mut problems = Vec::new();
        for (name, st) in self.state.iter_mut() {
            for (key, slot) in [
                (format!("m.{name}"), &mut st.m),
                (format!("v.{name}"), &mut st.v),
            ] {
                match tensors.remove(&key) {
                    Some(t) if t.shape() == slot.shape() => {
                        *slot = t.to_device(slot.device())?.to_dtype(slot.dtype())?
                    }
                    Some(t) => problems.push(format!(
                        "{key}: shape {:?}, expected {:?}",
                        t.dims(),
                        slot.dims()
                    )),
                    None => problems.push(format!("{key}: missing")),
                }
            }
        }
        problems.extend(tensors.keys().map(|k| format!("{k}: unexpected")));
        if !problems.is_empty() {
            return Err(OptimError::State(problems.join("; ")));
        }
        self.t = t;
        Ok(())
    }
}
