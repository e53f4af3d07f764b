//! Config parsing, overrides and validation messages.

use syllabus::config::Config;

const BASE: &str = r#"
[data]
prepared_dir = "data/prepared/x"
[model]
preset = "tiny"
[budget]
steps = 100
[train]
batch_size = 8
"#;

fn load(text: &str, sets: &[&str]) -> Result<Config, String> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    Config::from_toml_str(text, "test.toml", &sets).map_err(|e| e.to_string())
}

#[test]
fn defaults_fill_in_and_preset_is_expanded() {
    let c = load(BASE, &[]).unwrap();
    assert_eq!(c.optim.lr, 6e-4);
    assert_eq!(c.run.seed, 1337);
    assert_eq!(c.model.n_layer, Some(4));
    assert_eq!(Some(c.context()), c.arch().max_context());
    // The saved config round-trips to the same config.
    assert_eq!(load(&c.to_toml(), &[]).unwrap(), c);
}

#[test]
fn every_problem_is_reported_at_once_with_field_paths() {
    let text = r#"
[run]
device = "gpu"
[data]
prepared_dir = "x"
val_fraction = 1.5
[model]
vocab_size = 4096
n_positions = 128
n_layer = 2
n_head = 5
d_model = 768
context_length = 256
[optim]
lr = -1.0
beta2 = 1.0
[budget]
steps = 10
[train]
batch_size = 0
"#;
    let err = load(text, &[]).unwrap_err();
    for needle in [
        "run.device must be \"cpu\", \"cuda\" or \"cuda:N\"",
        "data.val_fraction must be in [0, 1)",
        "model.n_head must divide model.d_model (768 % 5 != 0)",
        "optim.lr must be a positive number",
        "optim.beta2 must be in [0, 1)",
        "schedule.warmup_steps (100) exceeds budget.steps (10)",
        "train.batch_size must be > 0",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    // Checks of the resolved model (against the tokenizer, the context) need a valid shape;
    // with one, they are reported with the rest.
    let err = load(&text.replace("n_head = 5", "n_head = 4"), &[]).unwrap_err();
    for needle in [
        "run.device must be",
        "the model's vocab_size (4096) is smaller than the tokenizer's vocabulary (50257, GPT-2's BPE)",
        "model.context_length (256) is longer than the model's maximum context (128)",
        "train.batch_size must be > 0",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

#[test]
fn unknown_keys_and_wrong_types_are_rejected_with_the_key() {
    let err = load(&format!("{BASE}\n[optim]\nlrr = 1.0\n"), &[]).unwrap_err();
    assert!(err.contains("unknown field `lrr`"), "{err}");
    let err = load(&BASE.replace("steps = 100", "steps = \"many\""), &[]).unwrap_err();
    assert!(
        err.contains("invalid type") && err.contains("steps"),
        "{err}"
    );
    let err = load(&BASE.replace("tiny", "huge"), &[]).unwrap_err();
    assert!(
        err.contains("unknown preset `huge`") && err.contains("gpt2-124m"),
        "{err}"
    );
}

#[test]
fn set_overrides_are_type_checked_and_limited_to_known_keys() {
    let c = load(
        BASE,
        &[
            "optim.lr=1e-3",
            "budget.steps=200",
            "run.name=exp1",
            "optim.weight_decay=0",
        ],
    )
    .unwrap();
    assert_eq!(c.optim.lr, 1e-3);
    assert_eq!(c.budget.steps, Some(200));
    assert_eq!(c.run.name, "exp1");
    assert_eq!(
        c.optim.weight_decay, 0.0,
        "integer accepted for a float key"
    );
    let err = load(BASE, &["train.stepz=3"]).unwrap_err();
    assert!(err.contains("unknown field `stepz`"), "{err}");
    let err = load(BASE, &["budget.steps=abc"]).unwrap_err();
    assert!(err.contains("type mismatch for `budget.steps`"), "{err}");
    let err = load(BASE, &["budget.steps"]).unwrap_err();
    assert!(err.contains("expected key.path=value"), "{err}");
}

#[test]
fn sampling_section_keeps_policy_tables_and_rejects_stray_keys() {
    let c = load(
        &format!("{BASE}\n[sampling]\npolicy = \"lfr\"\n[sampling.lfr]\ndrop = \"random\"\n"),
        &[],
    )
    .unwrap();
    assert_eq!(c.sampling.policy, "lfr");
    assert_eq!(
        c.sampling.selected_params()["drop"].as_str(),
        Some("random")
    );
    assert_eq!(load(&c.to_toml(), &[]).unwrap(), c, "round trip");
    assert_eq!(load(BASE, &[]).unwrap().sampling.policy, "uniform");
    let err = load(&format!("{BASE}\n[sampling]\npolicyy = 3\n"), &[]).unwrap_err();
    assert!(err.contains("sampling.policyy"), "{err}");
    let c = load(BASE, &["sampling.policy=spaced"]).unwrap();
    assert_eq!(c.sampling.policy, "spaced");
}

#[test]
fn precision_defaults_to_f32_parses_bf16_and_rejects_others() {
    use syllabus::model::Precision;
    let c = load(BASE, &[]).unwrap();
    assert_eq!(c.train.precision, Precision::F32);
    // The default is left out of the saved config, so the run id of an f32 run is unchanged.
    assert!(!c.to_toml().contains("precision"), "{}", c.to_toml());
    let c = load(BASE, &["train.precision=bf16"]).unwrap();
    assert_eq!(c.train.precision, Precision::Bf16);
    assert_eq!(load(&c.to_toml(), &[]).unwrap(), c);
    let err = load(BASE, &["train.precision=fp16"]).unwrap_err();
    assert!(err.contains("fp16") && err.contains("bf16"), "{err}");
}

#[test]
fn device_accepts_cuda_without_ordinal() {
    for ok in ["cpu", "cuda", "cuda:0", "cuda:7"] {
        load(BASE, &[&format!("run.device={ok}")]).unwrap();
    }
    let err = load(BASE, &["run.device=gpu:0"]).unwrap_err();
    assert!(err.contains("run.device must be"), "{err}");
}
