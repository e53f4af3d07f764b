//! Hugging Face interop without Python: `syllabus export` writes a GPT2LMHeadModel directory
//! (file contents and key set checked here; `scripts/check_hf_export.py` checks it against
//! `transformers` itself), and `model.init_from` starts a run from such a directory.

mod common;

use common::syllabus;

use safetensors::SafeTensors;
use syllabus::train::{train, TrainOptions};

#[test]
fn export_writes_a_gpt2_directory_and_init_from_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = train(&common::tiny_config(d, 3, ""), &TrainOptions::default()).unwrap();
    let o = syllabus(&["export", "--run", "run", "--out", "hf"], d);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("hf/config.json")).unwrap()).unwrap();
    assert_eq!(config["model_type"], "gpt2");
    assert_eq!(config["architectures"][0], "GPT2LMHeadModel");
    assert_eq!(
        (config["n_layer"].as_u64(), config["n_embd"].as_u64()),
        (Some(1), Some(16))
    );
    assert_eq!(config["activation_function"], "gelu_new");
    assert!(d.join("hf/generation_config.json").is_file());
    let bytes = std::fs::read(d.join("hf/model.safetensors")).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let format = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("format").cloned());
    assert_eq!(
        format.as_deref(),
        Some("pt"),
        "transformers needs the framework tag"
    );
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut keys: Vec<String> = file.names().into_iter().map(String::from).collect();
    keys.sort();
    let cfg = common::tiny_config(d, 3, "");
    let mut expected: Vec<String> = cfg
        .arch()
        .param_specs()
        .into_iter()
        .map(|s| s.name)
        .collect();
    expected.sort();
    assert_eq!(
        keys, expected,
        "GPT2LMHeadModel's keys; the head is tied to wte"
    );

    // A second export into the same directory needs --overwrite.
    let o = syllabus(&["export", "--run", "run", "--out", "hf"], d);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--overwrite"));

    // Continued pretraining from the export starts where the first run ended.
    let b_dir = d.join("b");
    std::fs::create_dir(&b_dir).unwrap();
    let init = format!("[model]\ninit_from = \"{}\"", d.join("hf").display());
    let b_text = common::tiny_config_toml(&b_dir, 2, "").replace("[model]", &init);
    let b = syllabus::config::Config::from_toml_str(&b_text, "b.toml", &[]).unwrap();
    let b = train(&b, &TrainOptions::default()).unwrap();
    assert_eq!(b.first_eval.unwrap().loss, a.final_eval.loss);

    // Another shape is an error naming each field that differs.
    let wider = b_text.replace("d_model = 16", "d_model = 32");
    let wider = syllabus::config::Config::from_toml_str(&wider, "w.toml", &[]).unwrap();
    let opts = TrainOptions {
        overwrite: true,
        ..Default::default()
    };
    let err = train(&wider, &opts).unwrap_err().to_string();
    assert!(err.contains("n_embd = 16 but model.d_model = 32"), "{err}");
}
