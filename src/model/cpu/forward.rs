//! The forward pass, in order: embeddings, n_layer pre-norm blocks, the final LayerNorm, the
//! tied lm_head with the per-token cross-entropy.

use rayon::prelude::*;

use super::attention::{forward_rows, RowsDims};
use super::linear::{self, LinearDims};
use super::lm_head::{self, HeadDims, LogitsStore};
use super::workspace::{LayerActs, Workspace};
use super::{layer_norm, Weights};
use crate::kernels::simd::{add_assign, gelu_forward};
use crate::model::layer_norm::LN_EPS;
use crate::model::tensors::BlockTensors;
use crate::model::GptConfig;

/// Rows per rayon task of the embedding and GELU passes.
const ROWS_PER_TASK: usize = 32;

/// Runs the network up to `ln_f` on `idx` [B*T] (ids already checked against V); the final
/// hidden states are left in `ws.ln_f`.
pub fn hidden(ws: &mut Workspace, w: &Weights<'_>, cfg: &GptConfig, idx: &[u32]) {
    embed(ws, w, cfg.d_model, idx);
    for (l, block) in w.blocks.iter().enumerate() {
        let dims = RowsDims {
            b: ws.b,
            t: ws.t,
            heads: cfg.n_head,
            hd: cfg.head_dim(),
        };
        let mut heads = std::mem::take(&mut ws.heads);
        let (x, acts) = ws.block_io(l);
        block_forward(x, acts, block, dims, &mut heads);
        ws.heads = heads;
    }
    let x = &ws.layers[ws.last_slot(cfg.n_layer)].out;
    let (y, stats) = (&mut ws.ln_f, &mut ws.ln_f_stats);
    layer_norm::forward(x, w.ln_f_w, w.ln_f_b, y, stats, LN_EPS as f32);
}

/// Per-token NLL of `targets` [B*T] after [`hidden`], into `ws.nll` (and `ws.softmax`). When
/// `keep_logits`, the softmax's exponentials, [N, V], stay in `ws.logits` for the backward.
pub fn loss(
    ws: &mut Workspace,
    w: &Weights<'_>,
    cfg: &GptConfig,
    targets: &[u32],
    keep_logits: bool,
) {
    let dims = HeadDims {
        n: ws.b * ws.t,
        d: cfg.d_model,
        v: cfg.vocab_size,
    };
    let store = match keep_logits {
        true => LogitsStore::Keep(&mut ws.logits),
        false => LogitsStore::Discard,
    };
    (ws.nll, ws.softmax) = lm_head::forward(&ws.ln_f, w.wte, targets, dims, store);
}

/// Mean of each sequence's per-token NLL, [B].
pub fn per_sequence(nll: &[f32], t: usize) -> Vec<f32> {
    nll.chunks_exact(t)
        .map(|row| (row.iter().map(|&x| x as f64).sum::<f64>() / t as f64) as f32)
        .collect()
}

/// x0[b, t] = wte[idx[b, t]] + wpe[t].
fn embed(ws: &mut Workspace, w: &Weights<'_>, d: usize, idx: &[u32]) {
    let t = ws.t;
    ws.x0
        .par_chunks_mut(ROWS_PER_TASK * d)
        .enumerate()
        .for_each(|(task, rows)| {
            for (r, x) in rows.chunks_exact_mut(d).enumerate() {
                let row = task * ROWS_PER_TASK + r;
                let tok = idx[row] as usize;
                x.copy_from_slice(&w.wte[tok * d..(tok + 1) * d]);
                add_assign(x, &w.wpe[(row % t) * d..(row % t + 1) * d]);
            }
        });
}

/// One pre-norm block: x → res_mid = x + attn(ln_1(x)) → out = res_mid + mlp(ln_2(res_mid)).
fn block_forward(
    x: &[f32],
    a: &mut LayerActs,
    w: &BlockTensors<&[f32]>,
    dims: RowsDims,
    heads: &mut Vec<f32>,
) {
    let (n, d) = (dims.b * dims.t, dims.heads * dims.hd);
    let lin = |d_in, d_out| LinearDims { n, d_in, d_out };
    let eps = LN_EPS as f32;
    layer_norm::forward(x, w.ln_1_w, w.ln_1_b, &mut a.ln_1, &mut a.ln_1_stats, eps);
    linear::forward(
        &a.ln_1,
        (w.c_attn_w, w.c_attn_b),
        None,
        &mut a.qkv,
        lin(d, 3 * d),
    );
    forward_rows(&a.qkv, dims, &mut a.att, &mut a.att_lse, heads);
    let proj = (w.attn_proj_w, w.attn_proj_b);
    linear::forward(&a.att, proj, Some(x), &mut a.res_mid, lin(d, d));
    layer_norm::forward(
        &a.res_mid,
        w.ln_2_w,
        w.ln_2_b,
        &mut a.ln_2,
        &mut a.ln_2_stats,
        eps,
    );
    linear::forward(
        &a.ln_2,
        (w.c_fc_w, w.c_fc_b),
        None,
        &mut a.fc,
        lin(d, 4 * d),
    );
    let chunk = ROWS_PER_TASK * 4 * d;
    a.fc_gelu
        .par_chunks_mut(chunk)
        .zip(a.fc.par_chunks(chunk))
        .for_each(|(y, u)| gelu_forward(u, y));
    let proj = (w.mlp_proj_w, w.mlp_proj_b);
    linear::forward(
        &a.fc_gelu,
        proj,
        Some(&a.res_mid),
        &mut a.out,
        lin(4 * d, d),
    );
}
