//! GPT-2's tensors by role, in forward order, under the Hugging Face names of [`Params`]
//! (`super::Params`). One generic shape serves the candle tensors of the graph path, the
//! borrowed weight slices of the CPU path and its gradient buffers.

/// One transformer block.
#[derive(Clone, Debug)]
pub struct BlockTensors<T> {
    pub ln_1_w: T,
    pub ln_1_b: T,
    pub c_attn_w: T, // [D, 3D]
    pub c_attn_b: T,
    pub attn_proj_w: T, // [D, D]
    pub attn_proj_b: T,
    pub ln_2_w: T,
    pub ln_2_b: T,
    pub c_fc_w: T, // [D, 4D]
    pub c_fc_b: T,
    pub mlp_proj_w: T, // [4D, D]
    pub mlp_proj_b: T,
}

/// The whole model; the lm_head is tied to `wte`.
#[derive(Clone, Debug)]
pub struct GptTensors<T> {
    pub wte: T, // [V, D]
    pub wpe: T, // [n_positions, D]
    pub blocks: Vec<BlockTensors<T>>,
    pub ln_f_w: T,
    pub ln_f_b: T,
}

/// Name suffixes of a block's tensors under `transformer.h.{i}.`, in field order.
const BLOCK_NAMES: [&str; 12] = [
    "ln_1.weight",
    "ln_1.bias",
    "attn.c_attn.weight",
    "attn.c_attn.bias",
    "attn.c_proj.weight",
    "attn.c_proj.bias",
    "ln_2.weight",
    "ln_2.bias",
    "mlp.c_fc.weight",
    "mlp.c_fc.bias",
    "mlp.c_proj.weight",
    "mlp.c_proj.bias",
];

impl<T> BlockTensors<T> {
    fn try_from_names<E>(i: usize, f: &mut impl FnMut(String) -> Result<T, E>) -> Result<Self, E> {
        let mut get = |k: usize| f(format!("transformer.h.{i}.{}", BLOCK_NAMES[k]));
        Ok(Self {
            ln_1_w: get(0)?,
            ln_1_b: get(1)?,
            c_attn_w: get(2)?,
            c_attn_b: get(3)?,
            attn_proj_w: get(4)?,
            attn_proj_b: get(5)?,
            ln_2_w: get(6)?,
            ln_2_b: get(7)?,
            c_fc_w: get(8)?,
            c_fc_b: get(9)?,
            mlp_proj_w: get(10)?,
            mlp_proj_b: get(11)?,
        })
    }

    fn into_array(self) -> [T; 12] {
        [
            self.ln_1_w,
            self.ln_1_b,
            self.c_attn_w,
            self.c_attn_b,
            self.attn_proj_w,
            self.attn_proj_b,
            self.ln_2_w,
            self.ln_2_b,
            self.c_fc_w,
            self.c_fc_b,
            self.mlp_proj_w,
            self.mlp_proj_b,
        ]
    }

    fn as_ref(&self) -> BlockTensors<&T> {
        BlockTensors {
            ln_1_w: &self.ln_1_w,
            ln_1_b: &self.ln_1_b,
            c_attn_w: &self.c_attn_w,
            c_attn_b: &self.c_attn_b,
            attn_proj_w: &self.attn_proj_w,
            attn_proj_b: &self.attn_proj_b,
            ln_2_w: &self.ln_2_w,
            ln_2_b: &self.ln_2_b,
            c_fc_w: &self.c_fc_w,
            c_fc_b: &self.c_fc_b,
            mlp_proj_w: &self.mlp_proj_w,
            mlp_proj_b: &self.mlp_proj_b,
        }
    }
}

impl<T> GptTensors<T> {
    /// Every tensor built from its name by `f`, in forward order.
    pub fn try_from_names<E>(
        n_layer: usize,
        mut f: impl FnMut(String) -> Result<T, E>,
    ) -> Result<Self, E> {
        Ok(Self {
            wte: f("transformer.wte.weight".into())?,
            wpe: f("transformer.wpe.weight".into())?,
            blocks: (0..n_layer)
                .map(|i| BlockTensors::try_from_names(i, &mut f))
                .collect::<Result<_, _>>()?,
            ln_f_w: f("transformer.ln_f.weight".into())?,
            ln_f_b: f("transformer.ln_f.bias".into())?,
        })
    }

    /// (name, tensor) pairs in forward order.
    pub fn into_named(self) -> Vec<(String, T)> {
        let mut out = vec![
            ("transformer.wte.weight".to_string(), self.wte),
            ("transformer.wpe.weight".to_string(), self.wpe),
        ];
        for (i, block) in self.blocks.into_iter().enumerate() {
            for (suffix, t) in BLOCK_NAMES.iter().zip(block.into_array()) {
                out.push((format!("transformer.h.{i}.{suffix}"), t));
            }
        }
        out.push(("transformer.ln_f.weight".to_string(), self.ln_f_w));
        out.push(("transformer.ln_f.bias".to_string(), self.ln_f_b));
        out
    }

    pub fn as_ref(&self) -> GptTensors<&T> {
        GptTensors {
            wte: &self.wte,
            wpe: &self.wpe,
            blocks: self.blocks.iter().map(BlockTensors::as_ref).collect(),
            ln_f_w: &self.ln_f_w,
            ln_f_b: &self.ln_f_b,
        }
    }

    /// `f` applied to every tensor, keeping the structure.
    pub fn try_map<U, E>(self, mut f: impl FnMut(T) -> Result<U, E>) -> Result<GptTensors<U>, E> {
        let n_layer = self.blocks.len();
        let mut items = self.into_named().into_iter();
        GptTensors::try_from_names(n_layer, |name| match items.next() {
            Some((n, t)) if n == name => f(t),
            // `into_named` and `try_from_names` walk the same order by construction.
            _ => unreachable!("tensor order mismatch at {name}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GptConfig, Params};

    #[test]
    fn names_cover_params_exactly_once() {
        let cfg = GptConfig::preset("tiny").expect("preset");
        let t = GptTensors::try_from_names(cfg.n_layer, Ok::<_, ()>).expect("infallible");
        let mut names: Vec<String> = t.into_named().into_iter().map(|(n, _)| n).collect();
        names.sort();
        let want: Vec<String> = Params::expected_shapes(&cfg).into_keys().collect();
        assert_eq!(names, want);
        let t = GptTensors::try_from_names(2, |n| Ok::<_, ()>(n.len()))
            .and_then(|t| t.try_map(|len| Ok(len * 2)))
            .expect("infallible");
        assert_eq!(t.wte, 2 * "transformer.wte.weight".len());
    }
}
