//! `docs/config.md`, the configuration reference, is generated from the doc comments of the
//! config structs (every key's meaning, unit and default is written there, next to the code),
//! and this test fails when it is out of date. Regenerate with
//! `SYLLABUS_WRITE_DOCS=1 cargo test --release --test config_reference`.

use std::path::Path;

/// (TOML table, source file, struct) in the order a config file lists them.
const SECTIONS: [(&str, &str, &str); 18] = [
    ("run", "src/config/schema.rs", "RunConfig"),
    ("data", "src/config/schema.rs", "DataConfig"),
    ("model", "src/config/model.rs", "ModelConfig"),
    ("optim", "src/config/schema.rs", "OptimConfig"),
    ("schedule", "src/config/schema.rs", "ScheduleConfig"),
    ("train", "src/config/schema.rs", "TrainConfig"),
    ("budget", "src/config/budget.rs", "BudgetConfig"),
    ("eval", "src/config/schema.rs", "EvalConfig"),
    ("checkpoint", "src/config/schema.rs", "CheckpointConfig"),
    ("logging", "src/config/schema.rs", "LoggingConfig"),
    ("ledger", "src/ledger/update.rs", "UpdateRule"),
    ("perf", "src/device/peak.rs", "PerfConfig"),
    ("sampling", "src/config/sampling.rs", "SamplingConfig"),
    ("sampling.lfr", "src/sampling/lfr_schedule.rs", "LfrParams"),
    (
        "sampling.loss-priority",
        "src/sampling/loss_priority.rs",
        "LossPriorityParams",
    ),
    ("sampling.spaced", "src/sampling/spaced.rs", "SpacedParams"),
    (
        "sampling.curriculum",
        "src/sampling/curriculum.rs",
        "CurriculumParams",
    ),
    (
        "sampling.online-batch",
        "src/sampling/online_batch.rs",
        "OnlineBatchParams",
    ),
];

/// (key, type, doc) of every `pub` field of `pub struct name` in `source`.
fn fields(source: &str, name: &str) -> Vec<(String, String, String)> {
    let start = source
        .find(&format!("pub struct {name} {{"))
        .unwrap_or_else(|| panic!("pub struct {name} not found"));
    let body = &source[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find("\n}").unwrap()];
    let (mut out, mut doc) = (Vec::new(), Vec::new());
    // Inside an attribute that rustfmt spread over several lines (`#[serde(` ... `)]`).
    let mut in_attr = false;
    for line in body.lines().map(str::trim) {
        if in_attr {
            in_attr = !line.ends_with(")]");
        } else if line.starts_with("#[") {
            in_attr = !line.ends_with(']');
        } else if let Some(d) = line.strip_prefix("///") {
            doc.push(d.trim().to_string());
        } else if let Some(field) = line.strip_prefix("pub ") {
            let (key, ty) = field.split_once(':').expect("pub field: Type");
            let ty = ty.trim().trim_end_matches(',').to_string();
            out.push((key.trim().to_string(), ty, doc.join(" ")));
            doc.clear();
        } else {
            doc.clear();
        }
    }
    out
}

fn reference(root: &Path) -> String {
    let mut md = String::from(
        "# Configuration reference\n\nGenerated from the doc comments of the config structs \
         (`tests/config_reference.rs`); each key's unit and default is stated in its text. \
         Unknown keys are errors, and `--set table.key=value` overrides any key from the \
         command line.\n",
    );
    for (table, file, name) in SECTIONS {
        let source = std::fs::read_to_string(root.join(file)).unwrap();
        md += &format!(
            "\n## `[{table}]`\n\n`{name}` in `{file}`\n\n| key | type | meaning |\n|---|---|---|\n"
        );
        for (key, ty, doc) in fields(&source, name) {
            let doc = doc.replace('|', "\\|");
            md += &format!("| `{key}` | `{}` | {doc} |\n", ty.replace('|', "\\|"));
        }
    }
    md
}

#[test]
fn the_configuration_reference_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("docs/config.md");
    let fresh = reference(root);
    if std::env::var_os("SYLLABUS_WRITE_DOCS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "docs/config.md is out of date: SYLLABUS_WRITE_DOCS=1 cargo test --release --test \
         config_reference"
    );
}

#[test]
fn every_field_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut undocumented = Vec::new();
    for (table, file, name) in SECTIONS {
        let source = std::fs::read_to_string(root.join(file)).unwrap();
        let fields = fields(&source, name);
        assert!(!fields.is_empty(), "{name}: no fields read");
        let missing = fields.iter().filter(|(_, _, doc)| doc.is_empty());
        undocumented.extend(missing.map(|(key, ..)| format!("[{table}] {key} ({file})")));
    }
    assert!(undocumented.is_empty(), "no doc comment: {undocumented:#?}");
}
