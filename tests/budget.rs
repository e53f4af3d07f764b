//! The compute budget end to end: amounts become steps, tokens stop exactly, scoring
//! is charged, usage survives resume, references are stored and never re-measured.

mod common;

use std::path::Path;

use candle_core::Device;
use syllabus::budget::{BudgetConfig, StopReason, ThroughputReference, PLAN_FILE, REFERENCE_FILE};
use syllabus::train::{checkpoint, train, TrainOptions};

/// Tokens per step of `common::tiny_config`: batch 4 x accum 2 x context 16.
const TOKENS_PER_STEP: u64 = 128;

fn with_budget(dir: &Path, extra: &str, budget: BudgetConfig) -> syllabus::config::Config {
    let mut cfg = common::tiny_config(dir, 100, extra);
    cfg.budget = budget;
    cfg
}

fn plan_json(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("run").join(PLAN_FILE)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_tokens_budget_stops_at_exactly_that_many_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let budget = BudgetConfig {
        tokens: Some(7 * TOKENS_PER_STEP),
        ..Default::default()
    };
    let s = train(
        &with_budget(dir.path(), "", budget),
        &TrainOptions::default(),
    )
    .unwrap();
    assert_eq!(s.tokens_seen, 7 * TOKENS_PER_STEP);
    assert_eq!((s.steps, s.planned_steps), (7, 7));
    assert_eq!(s.stop, Some(StopReason::Planned));
    assert_eq!(s.budget.trained_tokens, 7 * TOKENS_PER_STEP);
    assert_eq!(plan_json(dir.path())["planned_steps"], 7);

    // A budget between two step boundaries is floored: never more tokens than granted.
    let dir = tempfile::tempdir().unwrap();
    let budget = BudgetConfig {
        tokens: Some(7 * TOKENS_PER_STEP + 100),
        ..Default::default()
    };
    let s = train(
        &with_budget(dir.path(), "", budget),
        &TrainOptions::default(),
    )
    .unwrap();
    assert_eq!(s.tokens_seen, 7 * TOKENS_PER_STEP);
}

#[test]
fn accelerator_hours_convert_with_the_reference_and_report_theoretical_hours() {
    let dir = tempfile::tempdir().unwrap();
    // 1,280 tokens/s for 1 s = 10 steps of 128 tokens.
    let budget = BudgetConfig {
        accelerator_hours: Some(1.0 / 3600.0),
        tokens_per_s: Some(1280.0),
        ..Default::default()
    };
    let s = train(
        &with_budget(dir.path(), "", budget),
        &TrainOptions::default(),
    )
    .unwrap();
    assert_eq!(s.steps, 10);
    let hours = s.theoretical_hours.unwrap();
    assert!((hours - 1.0 / 3600.0).abs() < 1e-12, "{hours}");
    let r: ThroughputReference = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("run").join(REFERENCE_FILE)).unwrap(),
    )
    .unwrap();
    assert_eq!((r.tokens_per_s, r.source.as_str()), (1280.0, "config"));
    let metrics = std::fs::read_to_string(dir.path().join("run/metrics.jsonl")).unwrap();
    for tag in [
        "budget/theoretical_hours",
        "budget/wall_hours",
        "budget/remaining_fraction",
        "budget/eval_wall_hours",
    ] {
        assert!(metrics.contains(tag), "{tag} missing from metrics.jsonl");
    }
}

#[test]
fn scoring_work_is_charged_and_buys_fewer_steps() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "[sampling]\npolicy = \"online-batch\"\n[sampling.online-batch]\npool_factor = 2.0";
    let budget = BudgetConfig {
        steps: Some(10),
        ..Default::default()
    };
    let s = train(
        &with_budget(dir.path(), extra, budget),
        &TrainOptions::default(),
    )
    .unwrap();
    // 16 sequences scored per step at 1/3 of a training token each (no measured rate):
    // 10 x 128 units / (128 + 256 / 3) per step = 6 steps.
    assert_eq!((s.steps, s.planned_steps), (6, 6));
    assert_eq!(s.budget.scored_tokens, 6 * 16 * 16);
    assert_eq!(s.budget.trained_tokens, 6 * TOKENS_PER_STEP);
    let used = s.budget.trained_tokens as f64 + s.budget.scored_tokens as f64 / 3.0;
    assert!(used <= 10.0 * TOKENS_PER_STEP as f64, "overspent: {used}");
    assert_eq!(plan_json(dir.path())["scored_tokens_per_step"], 256);
}

#[test]
fn resume_continues_the_same_budget_without_counting_twice() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let extra = "[sampling]\npolicy = \"online-batch\"\n[sampling.online-batch]\npool_factor = 1.0";
    let budget = BudgetConfig {
        tokens: Some(9 * TOKENS_PER_STEP),
        ..Default::default()
    };
    let full = train(
        &with_budget(a.path(), extra, budget.clone()),
        &Default::default(),
    )
    .unwrap();
    let cfg = with_budget(b.path(), extra, budget);
    let stop = TrainOptions {
        stop_after: Some(3),
        ..Default::default()
    };
    let first = train(&cfg, &stop).unwrap();
    assert_eq!(first.stop, None);
    let saved = checkpoint::load(
        &checkpoint::latest(&b.path().join("run")).unwrap().unwrap(),
        &syllabus::model::ModelRegistry::builtin(),
        &Device::Cpu,
    )
    .unwrap()
    .manifest
    .state
    .budget;
    assert_eq!(saved.trained_tokens, 3 * TOKENS_PER_STEP);
    let resume = TrainOptions {
        resume: true,
        ..Default::default()
    };
    let rest = train(&cfg, &resume).unwrap();
    assert_eq!(rest.stop, Some(StopReason::Planned));
    assert_eq!(rest.steps, full.steps);
    assert_eq!(rest.budget.trained_tokens, full.budget.trained_tokens);
    assert_eq!(rest.budget.scored_tokens, full.budget.scored_tokens);
    assert!(rest.budget.wall.total >= saved.wall.total + rest.wall_seconds * 0.5);
    assert!(rest.budget.wall.eval >= saved.wall.eval);
}

#[test]
fn a_measured_reference_is_stored_and_not_remeasured_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let budget = BudgetConfig {
        steps: Some(4),
        measure_throughput: true,
        ..Default::default()
    };
    let cfg = with_budget(dir.path(), "", budget);
    let stop = TrainOptions {
        stop_after: Some(2),
        ..Default::default()
    };
    train(&cfg, &stop).unwrap();
    let path = dir.path().join("run").join(REFERENCE_FILE);
    let before = std::fs::read(&path).unwrap();
    let r: ThroughputReference = serde_json::from_slice(&before).unwrap();
    assert_eq!(r.source, "measured");
    assert!(r.tokens_per_s > 0.0 && r.forward_tokens_per_s > r.tokens_per_s);
    assert_eq!(r.model, Some(cfg.arch().resolved()));
    assert_eq!(r.arch.as_deref(), Some("gpt2"));
    let resume = TrainOptions {
        resume: true,
        ..Default::default()
    };
    let s = train(&cfg, &resume).unwrap();
    assert_eq!(s.steps, 4);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "re-measured on resume"
    );
    assert!(s.theoretical_hours.is_some());
}

#[test]
fn a_reference_for_another_model_is_refused_before_the_run_starts() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = ThroughputReference::from_rate(1000.0, 4, 2, 16);
    let tiny = syllabus::model::GptConfig::preset("tiny").unwrap();
    r.model = Some(syllabus::model::Architecture::resolved(&tiny));
    let file = dir.path().join("ref.json");
    r.write(&file).unwrap();
    let budget = BudgetConfig {
        class: Some("6h".into()),
        throughput_file: Some(file.clone()),
        ..Default::default()
    };
    let err = train(
        &with_budget(dir.path(), "", budget),
        &TrainOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("ref.json") && err.contains("another model"),
        "{err}"
    );
    assert!(!dir.path().join("run").exists(), "run directory touched");
}

#[test]
fn a_wall_clock_cap_ends_the_run_early() {
    let dir = tempfile::tempdir().unwrap();
    // 1 microsecond: spent before any step can start.
    let budget = BudgetConfig {
        steps: Some(50),
        wall_clock_hours: Some(1e-6 / 3600.0),
        ..Default::default()
    };
    let mut cfg = with_budget(dir.path(), "", budget);
    cfg.schedule.kind = syllabus::config::ScheduleKind::Wsd;
    let s = train(&cfg, &TrainOptions::default()).unwrap();
    assert_eq!(s.stop, Some(StopReason::WallClockCap));
    assert!(s.steps < 50, "{}", s.steps);
}
