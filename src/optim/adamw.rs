//! AdamW (Loshchilov & Hutter 2019) with decoupled weight decay, a no-decay group, and moments
//! that can be exported to and restored from a checkpoint (candle-nn's AdamW keeps them
//! private and decays every tensor). The update runs as our fused
//! in-place kernels (`fused.rs`) or, with [`Kernels::Composed`], as candle ops (the reference).

use std::collections::BTreeMap;

use candle_core::{Shape, Tensor};

use super::fused::{adamw_update, MomentsUpdate, ParamUpdate};
use super::OptimError;
use crate::config::OptimConfig;
use crate::kernels::Kernels;
use crate::model::Params;

/// Hyper-parameters that stay fixed for a run (the LR comes from the schedule each step).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWParams {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamWParams {
    pub fn from_config(optim: &OptimConfig) -> Self {
        Self {
            beta1: optim.beta1,
            beta2: optim.beta2,
            eps: optim.eps,
            weight_decay: optim.weight_decay,
        }
    }
}

struct Moments {
    /// [2, n]: the first moment m, then the second moment v, of a parameter with n elements.
    mv: Tensor,
    /// The parameter's shape (the checkpoint stores m and v in it).
    shape: Shape,
}

pub struct AdamW {
    hp: AdamWParams,
    kernels: Kernels,
    /// Updates applied so far (bias-correction exponent).
    t: u64,
    /// Keyed by parameter name: iteration order is sorted, hence deterministic.
    state: BTreeMap<String, Moments>,
}

impl AdamW {
    /// Zero moments for every parameter; the update runs with `kernels`.
    pub fn new(params: &Params, hp: AdamWParams, kernels: Kernels) -> Result<Self, OptimError> {
        let mut state = BTreeMap::new();
        for (name, var) in params.iter() {
            let p = var.as_tensor();
            let moments = Moments {
                mv: Tensor::zeros((2, p.elem_count()), p.dtype(), p.device())?,
                shape: p.shape().clone(),
            };
            state.insert(name.clone(), moments);
        }
        Ok(Self {
            hp,
            kernels,
            t: 0,
            state,
        })
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
        // The fused kernels' f32 coefficients; `decay` is set per tensor.
        let moments = MomentsUpdate {
            beta1: beta1 as f32,
            beta2: beta2 as f32,
            grad_scale: grad_scale as f32,
        };
        let update = ParamUpdate {
            lr: lr as f32,
            decay: 1.0,
            inv_bc1: (1.0 / bc1) as f32,
            inv_bc2: (1.0 / bc2) as f32,
            eps: eps as f32,
        };
        for (name, var) in params.iter() {
            let g = grads
                .get(name)
                .ok_or_else(|| OptimError::State(format!("no gradient for parameter {name}")))?;
            let st = self
                .state
                .get_mut(name)
                .ok_or_else(|| OptimError::State(format!("no moments for parameter {name}")))?;
            let decay = if params.decays(name) {
                1.0 - lr * weight_decay
            } else {
                1.0
            };
            match self.kernels {
                Kernels::Fused => {
                    let apply = ParamUpdate {
                        decay: decay as f32,
                        ..update
                    };
                    adamw_update(var.as_tensor(), &st.mv, g, moments, apply)?;
                }
                Kernels::Composed => {
                    let g = g.affine(grad_scale, 0.0)?;
                    let m = st.mv.get(0)?.reshape(&st.shape)?;
                    let v = st.mv.get(1)?.reshape(&st.shape)?;
                    let m = (m.affine(beta1, 0.0)? + g.affine(1.0 - beta1, 0.0)?)?;
                    let v = (v.affine(beta2, 0.0)? + g.sqr()?.affine(1.0 - beta2, 0.0)?)?;
                    let m_hat = m.affine(1.0 / bc1, 0.0)?;
                    let denom = v.affine(1.0 / bc2, 0.0)?.sqrt()?.affine(1.0, eps)?;
                    let p = var.as_tensor().affine(decay, 0.0)?;
                    var.set(&(p - (m_hat / denom)?.affine(lr, 0.0)?)?)?;
                    st.mv = Tensor::stack(&[m.flatten_all()?, v.flatten_all()?], 0)?;
                }
            }
        }
        Ok(())
    }

    /// Moments as named tensors (`m.<param>`, `v.<param>`) for a safetensors checkpoint.
    pub fn state_tensors(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for (name, st) in &self.state {
            for (i, key) in ["m", "v"].iter().enumerate() {
                // A contiguous view of mv's row in the parameter's shape: no copy.
                let moment = st.mv.get(i).and_then(|t| t.reshape(&st.shape));
                out.insert(
                    format!("{key}.{name}"),
                    moment.expect("mv is [2, n], n = shape"),
                );
            }
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
            let mut moments = Vec::new();
            for key in [format!("m.{name}"), format!("v.{name}")] {
                match tensors.remove(&key) {
                    Some(t) if t.shape() == &st.shape => moments.push(t.flatten_all()?),
                    Some(t) => problems.push(format!(
                        "{key}: shape {:?}, expected {:?}",
                        t.dims(),
                        st.shape.dims()
                    )),
                    None => problems.push(format!("{key}: missing")),
                }
            }
            if let [m, v] = moments.as_slice() {
                let mv = Tensor::stack(&[m, v], 0)?; // [2, n]
                st.mv = mv.to_device(st.mv.device())?.to_dtype(st.mv.dtype())?;
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use candle_core::{Device, Tensor};

    use super::*;
    use crate::model::GptConfig;
    use crate::rng::Rng;

    fn tiny() -> GptConfig {
        GptConfig {
            vocab_size: 11,
            n_positions: 8,
            n_layer: 1,
            n_head: 2,
            d_model: 8,
        }
    }

    fn random_grads(params: &Params, rng: &mut Rng) -> BTreeMap<String, Tensor> {
        params
            .iter()
            .map(|(name, var)| {
                let n = var.as_tensor().elem_count();
                let g: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
                let g = Tensor::from_vec(g, var.as_tensor().shape(), &Device::Cpu);
                (name.clone(), g.expect("shape matches"))
            })
            .collect()
    }

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .expect("f32 tensor")
    }

    /// Three updates (decayed and no-decay tensors, a clipping factor, a changing LR) through
    /// the fused kernels and through the composed reference, from the same start.
    #[test]
    fn fused_update_matches_the_composed_reference() -> Result<(), OptimError> {
        let hp = AdamWParams {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
        };
        let mut results = Vec::new();
        for kernels in [Kernels::Fused, Kernels::Composed] {
            let mut rng = Rng::new(5);
            let params = Params::init_gpt2(&tiny(), &mut rng, &Device::Cpu)
                .map_err(|e| OptimError::State(e.to_string()))?;
            let mut opt = AdamW::new(&params, hp, kernels)?;
            for (step, lr) in [3e-3, 2e-3, 1e-3].into_iter().enumerate() {
                let grads = random_grads(&params, &mut rng);
                opt.step(&params, &grads, lr, if step == 1 { 0.5 } else { 1.0 })?;
            }
            let values: Vec<(String, Vec<f32>)> = params
                .iter()
                .map(|(n, v)| (n.clone(), flat(v.as_tensor())))
                .chain(
                    opt.state_tensors()
                        .iter()
                        .map(|(n, t)| (n.clone(), flat(t))),
                )
                .collect();
            results.push(values);
        }
        let mut moved = 0;
        for ((name, fused), (_, composed)) in results[0].iter().zip(&results[1]) {
            for (a, b) in fused.iter().zip(composed) {
                assert!(
                    (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
                    "{name}: {a} vs {b}"
                );
                moved += (a != &0.0) as usize;
            }
        }
        assert!(moved > 0);
        Ok(())
    }

    #[test]
    fn moments_round_trip_through_the_checkpoint_tensors() -> Result<(), OptimError> {
        let hp = AdamWParams {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.0,
        };
        let mut rng = Rng::new(9);
        let params = Params::init_gpt2(&tiny(), &mut rng, &Device::Cpu)
            .map_err(|e| OptimError::State(e.to_string()))?;
        let mut opt = AdamW::new(&params, hp, Kernels::Fused)?;
        opt.step(&params, &random_grads(&params, &mut rng), 1e-3, 1.0)?;
        let saved = opt.state_tensors();
        for (name, var) in params.iter() {
            assert_eq!(saved[&format!("m.{name}")].shape(), var.as_tensor().shape());
        }
        let mut restored = AdamW::new(&params, hp, Kernels::Fused)?;
        restored.load_state(saved.clone(), opt.steps_taken())?;
        for (key, t) in restored.state_tensors() {
            assert_eq!(flat(&t), flat(&saved[&key]), "{key}");
        }
        let mut wrong = saved;
        wrong.remove("v.transformer.wte.weight");
        let err = restored.load_state(wrong, 1).unwrap_err().to_string();
        assert!(err.contains("v.transformer.wte.weight: missing"), "{err}");
        Ok(())
    }
}
