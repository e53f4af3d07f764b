//! Shared fixtures: a small synthetic corpus and a tiny-model config around it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use syllabus::config::Config;

/// Writes a few thousand tokens of varied English-like text as two .txt documents.
pub fn write_corpus(dir: &Path) -> (PathBuf, PathBuf) {
    let subjects = [
        "the cat",
        "a dog",
        "my friend",
        "the old man",
        "a child",
        "the river",
    ];
    let verbs = ["sees", "finds", "follows", "remembers", "crosses", "paints"];
    let objects = [
        "the hill",
        "a small boat",
        "the red door",
        "an apple",
        "the long road",
    ];
    let mut train = String::new();
    let mut val = String::new();
    for i in 0..1500 {
        let s = format!(
            "{} {} {} on day {}. ",
            subjects[i % subjects.len()],
            verbs[(i / 3) % verbs.len()],
            objects[(i / 7) % objects.len()],
            i % 31
        );
        if i % 10 == 0 {
            val.push_str(&s);
        } else {
            train.push_str(&s);
        }
    }
    let t = dir.join("train.txt");
    let v = dir.join("val.txt");
    std::fs::write(&t, train).unwrap();
    std::fs::write(&v, val).unwrap();
    (t, v)
}

/// A config for a very small GPT on the synthetic corpus, everything under `dir`.
pub fn tiny_config(dir: &Path, steps: u64, extra: &str) -> Config {
    let text = tiny_config_toml(dir, steps, extra);
    Config::from_toml_str(&text, "test.toml", &[]).unwrap()
}

/// The TOML text of [`tiny_config`] (writes the corpus under `dir`).
pub fn tiny_config_toml(dir: &Path, steps: u64, extra: &str) -> String {
    let (train, val) = write_corpus(dir);
    format!(
        r#"
[run]
name = "t"
out_dir = "{run}"
seed = 7
[data]
prepared_dir = "{prep}"
inputs = ["{train}"]
val_inputs = ["{val}"]
[model]
vocab_size = 50257
n_positions = 16
n_layer = 1
n_head = 2
d_model = 16
[optim]
lr = 1e-2
[schedule]
warmup_steps = 2
[budget]
steps = {steps}
[train]
batch_size = 4
grad_accum = 2
[eval]
every = 4
max_blocks = 8
batch_size = 4
sample_tokens = 4
# The end-of-run suite on the validation split only: the same on machines with and without
# eval files in the user cache, and fast.
tasks = ["val"]
ppl_max_tokens = 256
[checkpoint]
every = 3
keep_last = 2
[logging]
log_every = 2
{extra}
"#,
        run = dir.join("run").display(),
        prep = dir.join("prepared").display(),
        train = train.display(),
        val = val.display(),
    )
}

/// Runs the `syllabus` binary in `cwd` with two threads.
pub fn syllabus(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_syllabus"))
        .args(args)
        .current_dir(cwd)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .expect("binary runs")
}
