//! Trained tokenizers end to end: BPE training, exact round trips, `prepare` recording the
//! tokenizer, the model's vocabulary taken from it, runs decoding with their own tokenizer,
//! and mismatches refused.

mod common;

use std::path::{Path, PathBuf};

use syllabus::config::Config;
use syllabus::data::tokenizer::train::{train_tokenizer, TrainOptions};
use syllabus::data::{
    load_prepared, prepare, prepared_tokenizer, tokenizer_file_hash, verify_prepared,
    PrepareOptions, Tokenizer, TOKENIZER_FILE,
};
use syllabus::train::{train, TrainOptions as RunOptions};

const VOCAB: usize = 300;

/// Trains a `VOCAB`-token BPE on the fixture corpus under `dir`.
fn trained(dir: &Path) -> PathBuf {
    let (train_txt, _) = common::write_corpus(dir);
    let out = dir.join("tok.json");
    let opts = TrainOptions {
        inputs: vec![train_txt],
        vocab_size: VOCAB,
        min_frequency: 2,
        max_bytes: None,
    };
    let stats = train_tokenizer(&opts, &out).unwrap();
    assert_eq!(stats.documents, 1);
    out
}

fn prepare_with(dir: &Path, tokenizer: Option<PathBuf>, overwrite: bool) {
    let (train_txt, val_txt) = common::write_corpus(dir);
    prepare(&PrepareOptions {
        inputs: vec![train_txt],
        val_inputs: vec![val_txt],
        val_fraction: 0.1,
        seed: 1,
        out_dir: dir.join("prepared"),
        overwrite,
        tokenizer,
        ..PrepareOptions::default()
    })
    .unwrap();
}

#[test]
fn a_trained_tokenizer_round_trips_text_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = trained(dir.path());
    let tok = Tokenizer::from_file(&path).unwrap();
    assert_eq!(tok.vocab_size(), VOCAB);
    assert_eq!(
        tok.eot_token(),
        0,
        "<|endoftext|> is the first special token"
    );

    // Text the tokenizer never saw, in any script, survives exactly (byte-level alphabet).
    for text in [
        "the cat sees the red door on day 3. ",
        "naïve café — 東京 🚀\n\tend",
        "  leading spaces and trailing  ",
        "",
    ] {
        let ids = tok.encode(text).unwrap();
        assert!(ids.iter().all(|&id| (id as usize) < VOCAB));
        assert_eq!(tok.decode(&ids), text);
    }
    // Merges learned from the corpus compress it.
    let seen = "the old man remembers the long road on day 12. ";
    assert!(tok.encode(seen).unwrap().len() * 2 < seen.len());
    // A special-token string in the data is ordinary text.
    let ids = tok.encode("a<|endoftext|>b").unwrap();
    assert!(!ids.contains(&0));
    assert_eq!(tok.decode(&ids), "a<|endoftext|>b");
    // Exact bytes even when a token boundary splits a character.
    let rocket = tok.encode("🚀").unwrap();
    assert_eq!(rocket.len(), 4, "unseen: one token per byte");
    assert_eq!(tok.decode_bytes(&rocket[..1]).unwrap(), vec![0xF0]);
    assert!(tok.decode_bytes(&[VOCAB as u32]).is_err());

    // Training is deterministic.
    let again = dir.path().join("again");
    std::fs::create_dir(&again).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(trained(&again)).unwrap()
    );
}

#[test]
fn prepare_records_the_tokenizer_and_refuses_a_replaced_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = trained(dir.path());
    prepare_with(dir.path(), Some(path.clone()), false);
    let prepared = dir.path().join("prepared");
    let data = load_prepared(&prepared).unwrap();
    let m = &data.manifest;
    assert_eq!(m.tokenizer, "huggingface tokenizer.json");
    assert_eq!(m.tokenizer_hash, Some(tokenizer_file_hash(&path).unwrap()));
    assert_eq!((m.vocab_size, m.eot_token), (VOCAB as u32, 0));
    assert_eq!(data.train.vocab_size(), VOCAB as u32);

    // The stored tokens decode back to the corpus, documents separated by id 0.
    let tok = prepared_tokenizer(&prepared, m).unwrap();
    let mut ids = vec![0u32; data.train.len()];
    data.train.read(0, &mut ids);
    assert_eq!(ids.last(), Some(&0));
    let corpus = std::fs::read_to_string(dir.path().join("train.txt")).unwrap();
    assert_eq!(tok.decode(&ids[..ids.len() - 1]), corpus);

    let checks = verify_prepared(&prepared).unwrap();
    assert!(checks.iter().all(|c| c.passed()), "{checks:?}");
    assert_eq!(
        checks.len(),
        6,
        "manifest, 2 stores, 2 indexes, the tokenizer"
    );

    // Another tokenizer file in its place is refused, by loading and by `verify`.
    std::fs::write(prepared.join(TOKENIZER_FILE), b"{}").unwrap();
    let err = prepared_tokenizer(&prepared, m).unwrap_err().to_string();
    assert!(err.contains("the file was replaced"), "{err}");
    let failed: Vec<_> = verify_prepared(&prepared)
        .unwrap()
        .into_iter()
        .filter(|c| !c.passed())
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].to_string().contains("tokenizer.json"));

    // Preparing again with GPT-2's BPE leaves no stale tokenizer file.
    prepare_with(dir.path(), None, true);
    assert!(!prepared.join(TOKENIZER_FILE).exists());
    let m = load_prepared(&prepared).unwrap().manifest;
    assert_eq!((m.vocab_size, m.tokenizer_hash), (50257, None));
}

/// The fixture config on a trained tokenizer, its vocabulary left to the tokenizer.
fn config_text(dir: &Path, tokenizer: &Path) -> String {
    let text = common::tiny_config_toml(dir, 6, "");
    let prepared = format!("prepared_dir = \"{}\"\n", dir.join("prepared").display());
    assert!(text.contains(&prepared) && text.contains("vocab_size = 50257\n"));
    let with_tok = format!("{prepared}tokenizer = \"{}\"\n", tokenizer.display());
    text.replace(&prepared, &with_tok)
        .replace("vocab_size = 50257\n", "")
}

#[test]
fn a_run_trains_with_a_trained_tokenizer_and_decodes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let tok_path = trained(dir.path());
    let text = config_text(dir.path(), &tok_path);
    let config = Config::from_toml_str(&text, "test.toml", &[]).unwrap();
    assert_eq!(
        config.arch().vocab_size(),
        VOCAB,
        "vocabulary from the tokenizer"
    );

    let summary = train(&config, &RunOptions::default()).unwrap();
    assert!(summary.losses.iter().all(|l| l.is_finite()));
    assert!(
        summary.losses[5] < summary.losses[0],
        "{:?}",
        summary.losses
    );
    assert!(summary.losses[0] < (VOCAB as f64).ln() + 0.5);
    let run = dir.path().join("run");
    assert_eq!(
        tokenizer_file_hash(&run.join(TOKENIZER_FILE)).unwrap(),
        tokenizer_file_hash(&tok_path).unwrap()
    );

    // `sample` decodes with the run's copy, even after the original is gone.
    std::fs::remove_file(&tok_path).unwrap();
    let run_arg = run.display().to_string();
    let out = common::syllabus(
        &[
            "sample", "--run", &run_arg, "--prompt", "the cat", "--tokens", "5", "--json",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tok = Tokenizer::from_file(&run.join(TOKENIZER_FILE)).unwrap();
    let prompt: Vec<u32> = serde_json::from_value(json["prompt_ids"].clone()).unwrap();
    assert_eq!(prompt, tok.encode("the cat").unwrap());
    let new: Vec<u32> = serde_json::from_value(json["ids"].clone()).unwrap();
    assert!(new.len() == 5 && new.iter().all(|&id| (id as usize) < VOCAB));
    let text = json["text"].as_str().unwrap();
    assert_eq!(text, format!("the cat{}", tok.decode(&new)));

    // The Hugging Face export names the run's separator and carries its tokenizer.
    let out = common::syllabus(&["export", "--run", &run_arg, "--out", "hf"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hf = dir.path().join("hf");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(hf.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        (
            config["eos_token_id"].as_u64(),
            config["vocab_size"].as_u64()
        ),
        (Some(0), Some(VOCAB as u64))
    );
    assert!(hf.join(TOKENIZER_FILE).is_file());
}

#[test]
fn mismatched_tokenizers_and_vocabularies_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tok_path = trained(dir.path());
    let text = config_text(dir.path(), &tok_path);
    // Prepared with the trained tokenizer, then trained with a config that asks for GPT-2's.
    train(
        &Config::from_toml_str(&text, "test.toml", &[]).unwrap(),
        &RunOptions {
            stop_after: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let gpt2 = common::tiny_config(dir.path(), 6, "");
    let err = train(
        &gpt2,
        &RunOptions {
            overwrite: true,
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("was prepared with a tokenizer.json") && err.contains("GPT-2's BPE"),
        "{err}"
    );

    // A vocabulary smaller than the tokenizer's is a config error.
    let small = text.replace("[model]\n", "[model]\nvocab_size = 100\n");
    let err = Config::from_toml_str(&small, "test.toml", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("vocab_size (100) is smaller than the tokenizer's vocabulary (300"),
        "{err}"
    );
    // So is a tokenizer file that is not one.
    std::fs::write(&tok_path, b"not json").unwrap();
    let err = Config::from_toml_str(&text, "test.toml", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("data.tokenizer") && err.contains("tok.json"),
        "{err}"
    );
}

#[test]
fn the_cli_trains_a_tokenizer_and_never_overwrites_silently() {
    let dir = tempfile::tempdir().unwrap();
    let (train_txt, _) = common::write_corpus(dir.path());
    let input = train_txt.display().to_string();
    let args = [
        "tokenizer",
        "train",
        "--input",
        &input,
        "--vocab-size",
        "280",
        "--out",
        "t.json",
    ];
    let out = common::syllabus(&args, dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("vocabulary 280 (separator id 0)"));
    let again = common::syllabus(&args, dir.path());
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("pass --overwrite"));
    let tiny = common::syllabus(
        &[
            "tokenizer",
            "train",
            "--input",
            &input,
            "--vocab-size",
            "100",
            "--out",
            "u.json",
        ],
        dir.path(),
    );
    assert!(String::from_utf8_lossy(&tiny.stderr).contains("--vocab-size must be at least 257"));
    assert!(!dir.path().join("u.json").exists());
}
