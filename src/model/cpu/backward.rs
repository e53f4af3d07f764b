//! The backward pass, in reverse order of `forward.rs`. Parameter gradients accumulate (+=)
//! into [`Grads`], so micro-batches of one optimizer step add up; the residual stream's
//! gradient is one buffer updated in place from the top block down (llm.c's scheme).

use rayon::prelude::*;

use super::attention::{backward_rows, RowsDims};
use super::linear::{self, LinearDims};
use super::lm_head::{self, HeadDims};
use super::workspace::Workspace;
use super::{layer_norm, Grads, Weights};
use crate::kernels::simd::{add_assign, gelu_backward};
use crate::model::GptConfig;

/// Rows per rayon task of the GELU pass.
const ROWS_PER_TASK: usize = 32;

/// Gradients of `Σ_tokens token_weight · nll` after a training forward on `idx`, `targets`.
pub fn backward(
    ws: &mut Workspace,
    w: &Weights<'_>,
    g: &mut Grads,
    cfg: &GptConfig,
    (idx, targets): (&[u32], &[u32]),
    token_weight: f32,
) {
    let (n, d, v) = (ws.b * ws.t, cfg.d_model, cfg.vocab_size);
    let grad_nll = vec![token_weight; n];
    let lm = (&ws.ln_f[..], w.wte, targets);
    let dims = HeadDims { n, d, v };
    let (exps, stats) = (&ws.logits, &ws.softmax);
    lm_head::backward(
        lm,
        dims,
        exps,
        stats,
        &grad_nll,
        &mut ws.d_small,
        &mut g.wte,
    );
    ws.d_resid.fill(0.0);
    let x = &ws.layers[ws.last_slot(cfg.n_layer)].out;
    let dln = (&mut g.ln_f_w[..], &mut g.ln_f_b[..]);
    layer_norm::backward(
        x,
        w.ln_f_w,
        &ws.ln_f_stats,
        &ws.d_small,
        &mut ws.d_resid,
        dln,
    );
    for l in (0..cfg.n_layer).rev() {
        block_backward(ws, w, g, cfg, l);
    }
    embed_backward(&ws.d_resid, idx, g, ws.t, d);
}

/// One block, given d(out) in `ws.d_resid`; leaves d(input) there.
fn block_backward(ws: &mut Workspace, w: &Weights<'_>, g: &mut Grads, cfg: &GptConfig, l: usize) {
    let dims = RowsDims {
        b: ws.b,
        t: ws.t,
        heads: cfg.n_head,
        hd: cfg.head_dim(),
    };
    let (n, d) = (ws.b * ws.t, cfg.d_model);
    let lin = |d_in, d_out| LinearDims { n, d_in, d_out };
    let (ww, gw) = (&w.blocks[l], &mut g.blocks[l]);
    let mut heads = std::mem::take(&mut ws.heads);
    let (mut d_resid, mut d_small, mut d_qkv, mut d_wide) = (
        std::mem::take(&mut ws.d_resid),
        std::mem::take(&mut ws.d_small),
        std::mem::take(&mut ws.d_qkv),
        std::mem::take(&mut ws.d_wide),
    );
    let (x, a) = ws.block_io(l);
    // out = res_mid + fc_gelu · W + b, fc_gelu = gelu(fc)
    let gp = (&mut gw.mlp_proj_w[..], &mut gw.mlp_proj_b[..]);
    linear::backward(
        &a.fc_gelu,
        ww.mlp_proj_w,
        &d_resid,
        &mut d_wide,
        gp,
        lin(4 * d, d),
    );
    let chunk = ROWS_PER_TASK * 4 * d;
    d_wide
        .par_chunks_mut(chunk)
        .zip(a.fc.par_chunks(chunk))
        .for_each(|(g, u)| gelu_backward(u, g));
    let gp = (&mut gw.c_fc_w[..], &mut gw.c_fc_b[..]);
    linear::backward(&a.ln_2, ww.c_fc_w, &d_wide, &mut d_small, gp, lin(d, 4 * d));
    let gp = (&mut gw.ln_2_w[..], &mut gw.ln_2_b[..]);
    layer_norm::backward(
        &a.res_mid,
        ww.ln_2_w,
        &a.ln_2_stats,
        &d_small,
        &mut d_resid,
        gp,
    );
    // res_mid = x + att · W + b, att = attention(qkv), qkv = ln_1(x) · W + b
    let gp = (&mut gw.attn_proj_w[..], &mut gw.attn_proj_b[..]);
    linear::backward(
        &a.att,
        ww.attn_proj_w,
        &d_resid,
        &mut d_small,
        gp,
        lin(d, d),
    );
    let saved = (&a.qkv[..], &a.att[..], &d_small[..], &a.att_lse[..]);
    backward_rows(saved, dims, &mut d_qkv, &mut heads);
    let gp = (&mut gw.c_attn_w[..], &mut gw.c_attn_b[..]);
    linear::backward(
        &a.ln_1,
        ww.c_attn_w,
        &d_qkv,
        &mut d_small,
        gp,
        lin(d, 3 * d),
    );
    let gp = (&mut gw.ln_1_w[..], &mut gw.ln_1_b[..]);
    layer_norm::backward(x, ww.ln_1_w, &a.ln_1_stats, &d_small, &mut d_resid, gp);
    (ws.heads, ws.d_resid, ws.d_small) = (heads, d_resid, d_small);
    (ws.d_qkv, ws.d_wide) = (d_qkv, d_wide);
}

/// wte[idx[n]] += dx0[n] (sequentially: ids repeat, and the order is fixed), and
/// wpe[t] += Σ_b dx0[b, t] (parallel over positions, batch order inside).
fn embed_backward(dx0: &[f32], idx: &[u32], g: &mut Grads, t: usize, d: usize) {
    for (row, &tok) in dx0.chunks_exact(d).zip(idx) {
        let tok = tok as usize;
        add_assign(&mut g.wte[tok * d..(tok + 1) * d], row);
    }
    let b = idx.len() / t;
    g.wpe[..t * d]
        .par_chunks_mut(d)
        .enumerate()
        .for_each(|(pos, acc)| {
            for bi in 0..b {
                let r = (bi * t + pos) * d;
                add_assign(acc, &dx0[r..r + d]);
            }
        });
}
