//! Every architecture through the whole framework: deterministic training, bit-exact resume,
//! sampling and export; and an architecture registered from outside the crate
//! (`examples/custom_model.rs`) through every command.

mod common;

#[path = "../examples/custom_model.rs"]
mod custom_model;

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Device;
use syllabus::config::Config;
use syllabus::model::ModelRegistry;
use syllabus::plugins::Plugins;
use syllabus::train::{checkpoint, train, TrainOptions};

/// `[model]` of the tiny test config for `arch` (the same width and depth as the GPT-2 one).
fn model_table(arch: &str) -> String {
    match arch {
        "llama" => "[model]\narch = \"llama\"\n[model.llama]\nvocab_size = 50257\n\
                    n_positions = 16\nn_layer = 1\nn_head = 2\nd_model = 16\n"
            .into(),
        "qlstm" => "[model]\narch = \"qlstm\"\ncontext_length = 16\n[model.qlstm]\n\
                    vocab_size = 50257\nn_layer = 1\nn_head = 2\nd_model = 16\n\
                    block_length = 4\nff_dim = 64\n"
            .into(),
        other => panic!("no test shape for {other}"),
    }
}

/// The tiny test config with the model replaced by `arch`'s.
fn config_text(dir: &Path, steps: u64, arch: &str) -> String {
    let gpt2 = "[model]\nvocab_size = 50257\nn_positions = 16\nn_layer = 1\nn_head = 2\n\
                d_model = 16\n";
    let text = common::tiny_config_toml(dir, steps, "");
    assert!(text.contains(gpt2), "the fixture's model table");
    text.replace(gpt2, &model_table(arch))
}

fn config(dir: &Path, steps: u64, arch: &str) -> Config {
    Config::from_toml_str(&config_text(dir, steps, arch), "test.toml", &[]).unwrap()
}

fn weights(run_dir: &Path) -> BTreeMap<String, Vec<f32>> {
    let path = checkpoint::latest(run_dir).unwrap().expect("a checkpoint");
    let ckpt = checkpoint::load(&path, &ModelRegistry::builtin(), &Device::Cpu).unwrap();
    ckpt.params
        .to_tensors()
        .into_iter()
        .map(|(k, t)| (k, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

#[test]
fn every_architecture_is_deterministic_and_resumes_bit_for_bit() {
    for arch in ["llama", "qlstm"] {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let full = train(&config(a.path(), 6, arch), &TrainOptions::default()).unwrap();
        assert!(full.losses.iter().all(|l| l.is_finite()), "{arch}");
        assert!(
            full.losses[5] < full.losses[0],
            "{arch} learns: {:?}",
            full.losses
        );

        let cfg = config(b.path(), 6, arch);
        let stop = TrainOptions {
            stop_after: Some(4),
            ..Default::default()
        };
        let first = train(&cfg, &stop).unwrap();
        let resume = TrainOptions {
            resume: true,
            ..Default::default()
        };
        let rest = train(&cfg, &resume).unwrap();
        let stitched: Vec<f64> = first.losses.iter().chain(&rest.losses).copied().collect();
        assert_eq!(
            stitched, full.losses,
            "{arch}: the loss sequence continues bit for bit"
        );
        let (wa, wb) = (
            weights(&a.path().join("run")),
            weights(&b.path().join("run")),
        );
        assert_eq!(wa, wb, "{arch}: the same weights");
    }
}

#[test]
fn llama_samples_and_exports_under_hugging_face_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("l.toml"), config_text(d, 3, "llama")).unwrap();
    let o = common::syllabus(&["train", "--config", "l.toml"], d);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = common::syllabus(&["sample", "--run", "run", "--tokens", "4", "--json"], d);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let sample: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(sample["ids"].as_array().map(Vec::len), Some(4), "{sample}");

    let o = common::syllabus(&["export", "--run", "run", "--out", "hf"], d);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("hf/config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "LlamaForCausalLM");
    assert_eq!(config["intermediate_size"], 64, "8/3 · 16 rounded up to 64");
    let bytes = std::fs::read(d.join("hf/model.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut keys: Vec<String> = file.names().into_iter().map(String::from).collect();
    keys.sort();
    let cfg = config_text(d, 3, "llama");
    let arch = Config::from_toml_str(&cfg, "l.toml", &[])
        .unwrap()
        .arch()
        .clone();
    let mut want: Vec<String> = arch.param_specs().into_iter().map(|s| s.name).collect();
    want.sort();
    assert_eq!(keys, want);
    assert!(
        keys.contains(&"lm_head.weight".to_string()),
        "untied by default"
    );
}

#[test]
fn a_users_architecture_gets_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gpt2 = common::tiny_config_toml(d, 4, "");
    let text = gpt2.replace(
        "[model]\nvocab_size = 50257\nn_positions = 16\nn_layer = 1\nn_head = 2\nd_model = 16\n",
        "[model]\narch = \"bigram\"\npreset = \"bigram-8\"\ncontext_length = 16\n",
    );
    std::fs::write(d.join("b.toml"), &text).unwrap();
    let mut plugins = Plugins::builtin();
    plugins
        .models
        .register(custom_model::NAME, custom_model::construct)
        .unwrap();
    let cli = |args: &[&str]| {
        let mut all = vec!["syllabus"];
        all.extend_from_slice(args);
        syllabus::cli::run(&plugins, all)
    };
    let config = d.join("b.toml");
    let config = config.to_str().unwrap();
    cli(&["train", "--config", config]).unwrap_or_else(|e| panic!("{e:#}"));
    let run = d.join("run");
    let run = run.to_str().unwrap();
    cli(&["sample", "--run", run, "--tokens", "3"]).unwrap_or_else(|e| panic!("{e:#}"));
    cli(&["eval", "--run", run]).unwrap_or_else(|e| panic!("{e:#}"));
    let bench = ["bench", "--config", config, "--warmup", "0", "--steps", "1"];
    cli(&bench).unwrap_or_else(|e| panic!("{e:#}"));
    let out = d.join("hf");
    let err = cli(&["export", "--run", run, "--out", out.to_str().unwrap()]).unwrap_err();
    assert!(
        format!("{err:#}").contains("no Hugging Face counterpart"),
        "{err:#}"
    );

    // Without the plugin the architecture is unknown, and the message lists the known ones.
    let err = Config::load(Path::new(config), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("bigram") && err.contains("llama"), "{err}");
}
