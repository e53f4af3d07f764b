//! An architecture of your own, with every `syllabus` command: a low-rank bigram model (each
//! token's logits depend only on the token before it, through a `width`-dimensional
//! embedding), the baseline any context-using model must beat.
//!
//! `cargo run --release --example custom_model -- train --config configs/tiny.toml
//! --set model.arch=bigram --set model.preset=bigram-64 --set model.context_length=128`

use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use syllabus::model::registry::resolve_fields;
use syllabus::model::{ArchSpec, Architecture, BuildOptions, Init, LanguageModel, ModelError};
use syllabus::model::{ParamSpec, Params};

pub const NAME: &str = "bigram";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bigram {
    vocab_size: usize,
    width: usize,
}

pub fn construct(spec: &ArchSpec) -> Result<Box<dyn Architecture>, Vec<String>> {
    let preset = |name: &str| {
        let width = name.strip_prefix("bigram-")?.parse().ok()?;
        Some(Bigram {
            vocab_size: 50257,
            width,
        })
    };
    let cfg: Bigram = resolve_fields(NAME, spec, &["bigram-<width>"], preset)?;
    match cfg.width > 0 && cfg.vocab_size > 0 {
        true => Ok(Box::new(cfg)),
        false => Err(vec!["model.bigram: vocab_size and width must be > 0".into()]),
    }
}

impl Architecture for Bigram {
    fn name(&self) -> &str {
        NAME
    }
    fn resolved(&self) -> toml::Table {
        toml::Table::try_from(self).expect("two integers serialise")
    }
    fn vocab_size(&self) -> usize {
        self.vocab_size
    }
    fn max_context(&self) -> Option<usize> {
        None // no context at all: any length works
    }
    fn param_specs(&self) -> Vec<ParamSpec> {
        let shape = vec![self.vocab_size, self.width];
        vec![
            ParamSpec::new("embed.weight", shape.clone(), Init::Normal(0.02), false),
            ParamSpec::new("head.weight", shape, Init::Normal(0.02), true),
        ]
    }
    fn num_params_non_embedding(&self) -> usize {
        self.vocab_size * self.width // the head
    }
    fn flops_per_token(&self, _context: usize) -> f64 {
        6.0 * (self.vocab_size * self.width) as f64 // the head's matmul
    }
    fn build(&self, p: &Params, o: BuildOptions) -> Result<Box<dyn LanguageModel>, ModelError> {
        let get = |n: &str| -> Result<Tensor, ModelError> {
            let var = p.get(n)?;
            Ok(if o.training {
                var.as_tensor().clone()
            } else {
                var.as_detached_tensor()
            })
        };
        Ok(Box::new(BigramModel {
            embed: get("embed.weight")?,
            head: get("head.weight")?,
        }))
    }
}

struct BigramModel {
    embed: Tensor, // [V, W]
    head: Tensor,  // [V, W]
}

impl LanguageModel for BigramModel {
    fn hidden_states(&self, idx: &Tensor) -> Result<Tensor, ModelError> {
        Ok(self.embed.index_select(&idx.flatten_all()?, 0)?) // [B*T, W]
    }
    fn project(&self, h: &Tensor) -> Result<Tensor, ModelError> {
        Ok(h.matmul(&self.head.t()?)?) // [N, V]
    }
    fn max_context(&self) -> Option<usize> {
        None
    }
    fn trainable(&self) -> Vec<(String, Tensor)> {
        vec![
            ("embed.weight".into(), self.embed.clone()),
            ("head.weight".into(), self.head.clone()),
        ]
    }
}

#[allow(dead_code)] // the tests include this file for `construct`
fn main() -> std::process::ExitCode {
    let mut plugins = syllabus::plugins::Plugins::builtin();
    plugins
        .models
        .register(NAME, construct)
        .expect("a name of its own");
    syllabus::cli::main(plugins)
}
