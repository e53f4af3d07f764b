//! The CPU model's buffers: activations the backward needs, its gradient scratch, and the
//! lm_head's logits. Allocated once for a (B, T) shape and reused by every later call with that
//! shape, so a training step allocates nothing of activation size (llm.c's scheme).

use crate::model::GptConfig;

use super::lm_head::SoftmaxStats;

/// One block's saved activations, each [B*T, width].
#[derive(Debug, Default)]
pub struct LayerActs {
    pub ln_1: Vec<f32>,       // D
    pub ln_1_stats: Vec<f32>, // 2: mean, 1/std
    pub qkv: Vec<f32>,        // 3D
    pub att: Vec<f32>,        // D: attention output, before the projection
    pub att_lse: Vec<f32>,    // [B*H*T]: each attention row's log-sum-exp
    pub res_mid: Vec<f32>,    // D: residual stream after attention
    pub ln_2: Vec<f32>,       // D
    pub ln_2_stats: Vec<f32>, // 2
    pub fc: Vec<f32>,         // 4D: before GELU
    pub fc_gelu: Vec<f32>,    // 4D
    pub out: Vec<f32>,        // D: residual stream after the MLP (the next block's input)
}

impl LayerActs {
    fn new(n: usize, d: usize, heads: usize) -> Self {
        Self {
            ln_1: vec![0.0; n * d],
            ln_1_stats: vec![0.0; 2 * n],
            qkv: vec![0.0; 3 * n * d],
            att: vec![0.0; n * d],
            att_lse: vec![0.0; n * heads],
            res_mid: vec![0.0; n * d],
            ln_2: vec![0.0; n * d],
            ln_2_stats: vec![0.0; 2 * n],
            fc: vec![0.0; 4 * n * d],
            fc_gelu: vec![0.0; 4 * n * d],
            out: vec![0.0; n * d],
        }
    }
}

/// Everything one forward (and backward) of B sequences of T tokens works in.
#[derive(Debug, Default)]
pub struct Workspace {
    pub b: usize,
    pub t: usize,
    /// Token and position embeddings summed, [N, D].
    pub x0: Vec<f32>,
    /// One per block when training; two, used alternately, for a forward without backward.
    pub layers: Vec<LayerActs>,
    pub ln_f: Vec<f32>,       // [N, D]
    pub ln_f_stats: Vec<f32>, // [N, 2]
    /// Per-token NLL, [N], and the softmax statistics the lm_head's backward needs.
    pub nll: Vec<f32>,
    pub softmax: SoftmaxStats,
    /// The softmax's [N, V] exponentials, kept for the backward (training only).
    pub logits: Vec<f32>,
    /// Attention's per-head scratch.
    pub heads: Vec<f32>,
    /// Backward scratch: the residual stream's gradient, and [N, D], [N, 3D], [N, 4D].
    pub d_resid: Vec<f32>,
    pub d_small: Vec<f32>,
    pub d_qkv: Vec<f32>,
    pub d_wide: Vec<f32>,
}

impl Workspace {
    /// Sizes the buffers for `b` x `t` tokens, with activations for the backward when
    /// `training`; a no-op when they already fit.
    pub fn ensure(&mut self, cfg: &GptConfig, b: usize, t: usize, training: bool) {
        let slots = if training {
            cfg.n_layer
        } else {
            2.min(cfg.n_layer)
        };
        if self.b == b && self.t == t && self.layers.len() == slots {
            return;
        }
        let (n, d) = (b * t, cfg.d_model);
        *self = Workspace {
            b,
            t,
            x0: vec![0.0; n * d],
            layers: (0..slots)
                .map(|_| LayerActs::new(n, d, cfg.n_head))
                .collect(),
            ln_f: vec![0.0; n * d],
            ln_f_stats: vec![0.0; 2 * n],
            nll: vec![0.0; n],
            softmax: SoftmaxStats::default(),
            logits: if training {
                vec![0.0; cfg.vocab_size * n]
            } else {
                Vec::new()
            },
            heads: Vec::new(),
            d_resid: if training {
                vec![0.0; n * d]
            } else {
                Vec::new()
            },
            d_small: if training {
                vec![0.0; n * d]
            } else {
                Vec::new()
            },
            d_qkv: if training {
                vec![0.0; 3 * n * d]
            } else {
                Vec::new()
            },
            d_wide: if training {
                vec![0.0; 4 * n * d]
            } else {
                Vec::new()
            },
        };
    }

    /// Slot of block `l`'s activations.
    pub fn slot(&self, l: usize) -> usize {
        l % self.layers.len()
    }

    /// Block `l`'s input (the embeddings or the previous block's output) and its own
    /// activations, borrowed together.
    pub fn block_io(&mut self, l: usize) -> (&[f32], &mut LayerActs) {
        let s = self.slot(l);
        if l == 0 {
            return (&self.x0, &mut self.layers[s]);
        }
        let prev = self.slot(l - 1);
        if prev < s {
            let (lo, hi) = self.layers.split_at_mut(s);
            (&lo[prev].out, &mut hi[0])
        } else {
            let (lo, hi) = self.layers.split_at_mut(prev);
            (&hi[0].out, &mut lo[s])
        }
    }

    /// Slot of the last of `n_layer` blocks (whose output is the input of `ln_f`).
    pub fn last_slot(&self, n_layer: usize) -> usize {
        self.slot(n_layer - 1)
    }
}
