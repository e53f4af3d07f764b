//! The eval suite's task logic on hand-made examples, with a fake scorer whose preference is
//! known, so every expected accuracy is worked out by hand.

mod eval_support;

use std::sync::Arc;

use eval_support::{write_tasks_dir, PreferringScorer};
use syllabus::data::{TokenStore, Tokenizer};
use syllabus::eval::choice::evaluate_choices;
use syllabus::eval::lambada::evaluate_lambada;
use syllabus::eval::perplexity::evaluate_stream;
use syllabus::eval::{
    log_scalars, run_suite_with, ChoiceExample, ClozeExample, EvalError, Normalisation,
    SuiteOptions, Task,
};
use syllabus::logging::MemorySink;

fn tok() -> Tokenizer {
    Tokenizer::gpt2().expect("embedded vocabulary")
}

fn preferring(tok: &Tokenizer) -> PreferringScorer {
    let favoured = tok.encode(" right").expect("encodes");
    assert_eq!(favoured.len(), 1, "\" right\" is one GPT-2 token");
    PreferringScorer::new(favoured, 64)
}

fn example(context: &str, endings: &[&str], label: usize) -> ChoiceExample {
    ChoiceExample {
        options: endings
            .iter()
            .map(|e| (context.to_string(), format!(" {e}")))
            .collect(),
        label,
    }
}

#[test]
fn multiple_choice_picks_the_preferred_option() -> Result<(), EvalError> {
    let tok = tok();
    let scorer = preferring(&tok);
    let examples = [
        example("The sky is", &["green", "right", "loud"], 1),
        example("Q:", &["right", "wrong"], 0),
        example("Pick", &["wrong", "right"], 0), // the label disagrees with the scorer
    ];
    for norm in [Normalisation::None, Normalisation::Bytes] {
        let r = evaluate_choices("t", &examples, norm, &scorer, &tok, 2)?;
        assert_eq!(r.examples, 3);
        assert!((r.acc - 2.0 / 3.0).abs() < 1e-12, "{norm:?}: {}", r.acc);
        // Random baseline: mean of 1/3, 1/2, 1/2; centered (2/3 - 4/9) / (5/9) = 0.4.
        assert!((r.random_baseline - 4.0 / 9.0).abs() < 1e-12);
        assert!((r.acc_centered - 0.4).abs() < 1e-12);
        assert_eq!(r.acc_raw, r.acc_norm_bytes);
    }
    // 7 options in all, each scored once.
    assert_eq!(scorer.seen().len(), 14);
    Ok(())
}

#[test]
fn lambada_counts_greedy_matches_and_target_perplexity() -> Result<(), EvalError> {
    let tok = tok();
    let scorer = preferring(&tok);
    let examples: Vec<ClozeExample> = ["Turn left or right", "It was wrong", "Go right"]
        .iter()
        .map(|t| ClozeExample::from_passage(t).expect("has a last word"))
        .collect();
    let r = evaluate_lambada(&examples, &scorer, &tok, 8)?;
    assert!((r.acc - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!((r.random_baseline, r.acc_centered), (0.0, r.acc));
    // Targets are one token each: log-likelihoods -0.1, -3, -0.1.
    let want = ((0.1 + 3.0 + 0.1) / 3.0f64).exp();
    assert!((r.target_ppl.expect("lambada has a ppl") - want).abs() < 1e-9);
    let seen = scorer.seen();
    let targets: Vec<String> = seen.iter().map(|q| tok.decode(&q.continuation)).collect();
    assert!(targets.contains(&" wrong".to_string()));
    Ok(())
}

#[test]
fn stream_perplexity_normalises_by_bytes_and_characters() -> Result<(), EvalError> {
    let tok = tok();
    // No " right" in the text: every token costs 3 nats.
    let text = "Paris is a café city. ".repeat(20);
    let tokens = tok.encode(&text).expect("encodes");
    let n = tokens.len();
    let scorer = PreferringScorer::new(tok.encode(" right").expect("encodes"), 16);
    let r = evaluate_stream("s", &tokens, &scorer, &tok, 4, 3)?;
    assert_eq!(r.tokens, n - 1);
    let first = tok.decode(&tokens[..1]);
    assert_eq!(r.bytes, text.len() - first.len());
    assert_eq!(r.chars, text.chars().count() - first.chars().count());
    let nll = 3.0 * (n - 1) as f64;
    assert!((r.nll - nll).abs() < 1e-9);
    assert!((r.norm_ppl - (nll / r.bytes as f64).exp()).abs() < 1e-9);
    assert!((r.norm_ppl_chars - (nll / r.chars as f64).exp()).abs() < 1e-9);
    assert!((r.token_ppl - 3f64.exp()).abs() < 1e-9);
    // 16 targets in the first window, then 4 per window.
    assert_eq!(r.windows, 1 + (n - 1 - 16).div_ceil(4));
    Ok(())
}

fn options(dir: &std::path::Path, tasks: Vec<Task>, val: Option<Arc<TokenStore>>) -> SuiteOptions {
    SuiteOptions {
        tasks,
        skipped: vec![],
        tasks_dir: dir.to_path_buf(),
        task_limit: 0,
        ppl_max_tokens: 0,
        context: 64,
        stride: 16,
        batch_size: 4,
        val,
        quiet: true,
    }
}

#[test]
fn whole_suite_on_hand_made_files() -> Result<(), EvalError> {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tasks_dir(dir.path());
    let tok = tok();
    let mut val_tokens = tok.encode("One document.").expect("encodes");
    val_tokens.push(syllabus::data::EOT_TOKEN);
    val_tokens.extend(tok.encode("Another one right here.").expect("encodes"));
    let val = TokenStore::create_from(&dir.path().join("val.bin"), 50257, &val_tokens)?;
    let opts = options(dir.path(), Task::ALL.to_vec(), Some(Arc::new(val)));
    let scorer = preferring(&tok);
    let report = run_suite_with(&scorer, &tok, &opts)?;

    let acc: Vec<(&str, f64)> = report
        .tasks
        .iter()
        .map(|t| (t.task.as_str(), t.acc))
        .collect();
    let want = [
        ("lambada", 2.0 / 3.0),
        ("hellaswag", 2.0 / 3.0),
        ("piqa", 0.5),
        ("arc_easy", 2.0 / 3.0),
        ("winogrande", 0.5),
    ];
    assert_eq!(acc.len(), want.len());
    for ((name, a), (want_name, w)) in acc.iter().zip(want) {
        assert_eq!(*name, want_name);
        assert!((a - w).abs() < 1e-12, "{name}: {a} != {w}");
    }
    let arc = &report.tasks[3];
    assert!((arc.random_baseline - (1.0 / 3.0 + 0.2 + 0.25) / 3.0).abs() < 1e-12);
    let mean = report.tasks.iter().map(|t| t.acc_centered).sum::<f64>() / 5.0;
    assert!((report.core_centered_mean.expect("tasks ran") - mean).abs() < 1e-12);
    let sets: Vec<&str> = report.perplexity.iter().map(|p| p.set.as_str()).collect();
    assert_eq!(sets, ["wikitext2", "val"]);

    // WinoGrande is scored by partial evaluation: the same suffix after each filled-in option.
    let seen = scorer.seen();
    let filled = seen
        .iter()
        .filter(|q| {
            tok.decode(&q.context)
                .ends_with("Anna told Maria the right")
        })
        .count();
    assert_eq!(filled, 1);
    assert!(seen
        .iter()
        .any(|q| tok.decode(&q.continuation) == " answer was correct."));

    let mut sink = MemorySink::new();
    log_scalars(&mut sink, &report, 42);
    for tag in [
        "eval/hellaswag/acc",
        "eval/winogrande/acc_centered",
        "eval/core_centered_mean",
        "eval/wikitext2/norm_ppl",
        "eval/val/norm_ppl",
        "eval/lambada/target_ppl",
    ] {
        assert_eq!(sink.series(tag).len(), 1, "{tag}");
        assert_eq!(sink.series(tag)[0].0, 42);
    }
    Ok(())
}

#[test]
fn limits_take_the_first_examples_and_tokens() -> Result<(), EvalError> {
    let dir = tempfile::tempdir().expect("tempdir");
    write_tasks_dir(dir.path());
    let tok = tok();
    let mut opts = options(dir.path(), vec![Task::Hellaswag, Task::Wikitext2], None);
    opts.task_limit = 2;
    opts.ppl_max_tokens = 10;
    let report = run_suite_with(&preferring(&tok), &tok, &opts)?;
    assert_eq!(report.tasks[0].examples, 2);
    assert_eq!(
        report.tasks[0].acc, 1.0,
        "the first two hellaswag examples are right"
    );
    assert_eq!(report.perplexity[0].tokens, 10);
    assert_eq!(report.settings.task_limit, 2);
    Ok(())
}
