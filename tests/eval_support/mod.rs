//! Shared by the eval tests: a fake scorer with a known preference, and eval files written by
//! hand in the formats the parsers of `syllabus::eval::datasets` read.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use flate2::write::GzEncoder;
use flate2::Compression;
use syllabus::eval::{EvalError, Request, Score, Scorer};

/// Prefers any text containing the favoured token sequence: such a request scores
/// `-0.1` per continuation token and is the greedy decoding; any other scores `-3` per token.
pub struct PreferringScorer {
    pub favoured: Vec<u32>,
    pub max: usize,
    /// Every request seen, in call order.
    pub seen: Mutex<Vec<Request>>,
}

impl PreferringScorer {
    pub fn new(favoured: Vec<u32>, max: usize) -> Self {
        PreferringScorer {
            favoured,
            max,
            seen: Mutex::new(Vec::new()),
        }
    }

    pub fn seen(&self) -> Vec<Request> {
        self.seen.lock().expect("lock").clone()
    }
}

fn contains(haystack: &[u32], needle: &[u32]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl Scorer for PreferringScorer {
    fn max_input_len(&self) -> usize {
        self.max
    }

    fn score_batch(&self, batch: &[Request]) -> Result<Vec<Score>, EvalError> {
        self.seen
            .lock()
            .expect("lock")
            .extend(batch.iter().cloned());
        Ok(batch
            .iter()
            .map(|r| {
                let all: Vec<u32> = r.context.iter().chain(&r.continuation).copied().collect();
                let hit = contains(&all, &self.favoured);
                let per_token = if hit { -0.1 } else { -3.0 };
                Score {
                    logprob: per_token * r.continuation.len() as f64,
                    tokens: r.continuation.len(),
                    greedy: hit,
                }
            })
            .collect())
    }
}

/// Writes `lines` gzip-compressed to `dir/name`.
pub fn write_gz(dir: &Path, name: &str, lines: &[&str]) {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    for l in lines {
        writeln!(enc, "{l}").expect("write");
    }
    std::fs::write(dir.join(name), enc.finish().expect("gzip")).expect("write file");
}

/// A tasks directory holding every task's file, where " right" is always one option and the
/// label points at it in every example except the last of each file (so the preferring
/// scorer gets all but one right).
pub fn write_tasks_dir(dir: &Path) {
    write_gz(
        dir,
        "lambada_openai_test.jsonl.gz",
        &[
            r#"{"text": "Left or right? He turned right"}"#,
            r#"{"text": "The answer was simply right"}"#,
            r#"{"text": "She said it was wrong"}"#,
        ],
    );
    write_gz(
        dir,
        "hellaswag_val.jsonl.gz",
        &[
            r#"{"ind": 0, "activity_label": "Driving", "ctx": "A car turns", "endings": ["left.", "right", "around.", "back."], "label": 1}"#,
            r#"{"ind": 1, "activity_label": "Walking", "ctx": "He goes", "endings": ["right", "up.", "down.", "away."], "label": 0}"#,
            r#"{"ind": 2, "activity_label": "Cooking", "ctx": "She stirs", "endings": ["slowly.", "right", "fast.", "well."], "label": 3}"#,
        ],
    );
    write_gz(
        dir,
        "piqa_valid.jsonl.gz",
        &[
            r#"{"goal": "Turn the bolt", "sol1": "to the left", "sol2": "to the right", "label": 1}"#,
            r#"{"goal": "Open the jar", "sol1": "twist right", "sol2": "smash it", "label": 1}"#,
        ],
    );
    write_gz(
        dir,
        "arc_easy_test.jsonl.gz",
        &[
            r#"{"id": "a", "question": "Which way?", "choices": {"text": ["up", "right", "down"], "label": ["A", "B", "C"]}, "answerKey": "B"}"#,
            r#"{"id": "b", "question": "Which?", "choices": {"text": ["right", "x", "y", "z", "w"], "label": ["1", "2", "3", "4", "5"]}, "answerKey": "1"}"#,
            r#"{"id": "c", "question": "Pick", "choices": {"text": ["a", "b", "c", "right"], "label": ["A", "B", "C", "D"]}, "answerKey": "A"}"#,
        ],
    );
    write_gz(
        dir,
        "winogrande_dev.jsonl.gz",
        &[
            r#"{"qID": "1", "sentence": "Anna told Maria the _ answer was correct.", "option1": "wrong", "option2": "right", "answer": "2"}"#,
            r#"{"qID": "2", "sentence": "The _ side was sunny.", "option1": "left", "option2": "right", "answer": "1"}"#,
        ],
    );
    write_gz(
        dir,
        "wikitext2_test.raw.gz",
        &[
            " = Title = ",
            " The road turns right , then left . It is a long road @-@ way . ",
        ],
    );
}
