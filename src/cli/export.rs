//! `syllabus export`: a run's checkpoint as a Hugging Face `GPT2LMHeadModel` directory.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::Device;
use clap::Args;

use crate::data::TOKENIZER_FILE;
use crate::fsutil::{commit_rename, tmp_path};
use crate::model::hf::export_hf;
use crate::plugins::Plugins;
use crate::train::{checkpoint, load_run_tokenizer, CONFIG_FILE};

#[derive(Args)]
pub(super) struct ExportArgs {
    /// Run directory.
    #[arg(long)]
    run: PathBuf,
    /// Checkpoint directory; default: the run's newest complete checkpoint.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Output directory (config.json, generation_config.json, model.safetensors), loadable
    /// with `GPT2LMHeadModel.from_pretrained`.
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing, non-empty output directory.
    #[arg(long)]
    overwrite: bool,
}

pub(super) fn export(a: ExportArgs, plugins: &Plugins) -> Result<()> {
    let run = super::run_directory(&a.run, CONFIG_FILE)?;
    let path = match a.checkpoint {
        Some(p) => p,
        None => checkpoint::latest(run)?
            .ok_or_else(|| anyhow!("{}: no complete checkpoint to export", run.display()))?,
    };
    let ckpt = checkpoint::load(&path, &plugins.models, &Device::Cpu)?;
    let Some(mut hf_config) = ckpt.arch.hf_config() else {
        bail!(
            "architecture `{}` has no Hugging Face counterpart to export to",
            ckpt.arch.name()
        );
    };
    let non_empty = a.out.read_dir().is_ok_and(|mut d| d.next().is_some());
    if non_empty && !a.overwrite {
        bail!(
            "{} is not empty; pass --overwrite to replace it",
            a.out.display()
        );
    }
    // Written beside the target and renamed: an interrupted export leaves no partial model.
    let tmp = tmp_path(&a.out);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| tmp.display().to_string())?;
    }
    // The run's own document separator, and its tokenizer.json when it has one (Hugging
    // Face's `PreTrainedTokenizerFast(tokenizer_file=...)` loads it).
    let eot = load_run_tokenizer(run)?.eot_token();
    hf_config["bos_token_id"] = eot.into();
    hf_config["eos_token_id"] = eot.into();
    export_hf(&hf_config, &ckpt.params, &tmp)?;
    let run_tokenizer = run.join(TOKENIZER_FILE);
    if run_tokenizer.is_file() {
        let dest = tmp.join(TOKENIZER_FILE);
        std::fs::copy(&run_tokenizer, &dest).with_context(|| dest.display().to_string())?;
    }
    if a.out.exists() {
        std::fs::remove_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    }
    commit_rename(&tmp, &a.out).with_context(|| a.out.display().to_string())?;
    println!(
        "{} (step {}) -> {}",
        path.display(),
        ckpt.manifest.state.step,
        a.out.display()
    );
    Ok(())
}
