//! The model-based quality filter of DCLM (Li et al. 2024, §4.4): a fastText bigram classifier
//! (Joulin et al. 2017) trained on high-quality positives (`__label__hq`: OpenHermes and
//! r/ExplainLikeImFive in DCLM) against random web text (`__label__cc`). We use the pure-Rust
//! `fasttext` crate, which reads and writes the C++ `.bin` format, so DCLM's published
//! classifier can be given as `quality.model`.
//!
//! As in DCLM's scoring code, newlines are replaced by spaces before prediction (fastText
//! reads one line per example).

use std::io::Write;
use std::path::{Path, PathBuf};

use fasttext::args::{Args, LossName, ModelName};
use fasttext::FastText;

use super::CurateError;

/// The negative label of `train-classifier` (DCLM's).
pub const NEGATIVE_LABEL: &str = "__label__cc";

pub struct QualityModel {
    model: FastText,
    label: String,
    labels: usize,
}

impl QualityModel {
    /// Loads a fastText supervised model and checks it knows `label`.
    pub fn load(path: &Path, label: &str) -> Result<QualityModel, CurateError> {
        let model = FastText::load_model(path).map_err(|e| CurateError::Classifier {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let (labels, _) = model.get_labels();
        if !labels.iter().any(|l| l == label) {
            return Err(CurateError::Classifier {
                path: path.to_path_buf(),
                message: format!("has no label {label:?} (its labels: {})", labels.join(", ")),
            });
        }
        Ok(QualityModel {
            model,
            labels: labels.len(),
            label: label.to_string(),
        })
    }

    /// P(positive label | text); 0 for a text with no words.
    pub fn score(&self, text: &str) -> f64 {
        // Tokenized as C++ fastText's `predictLine` reads a line from a stream: the newline
        // ends it with the `</s>` token, which takes part in the word n-grams. (The crate's
        // `FastText::predict` appends `</s>` after hashing the n-grams, which moves
        // probabilities by up to ~0.01 against fastText's own.)
        let mut line = text.replace(['\n', '\r'], " ");
        line.push('\n');
        let (mut words, mut labels, mut pending_newline) = (Vec::new(), Vec::new(), false);
        self.model.dict().get_line(
            &mut line.as_bytes(),
            &mut words,
            &mut labels,
            &mut pending_newline,
        );
        self.model
            .predict_on_words(&words, self.labels, 0.0)
            .into_iter()
            .find(|p| p.label == self.label)
            .map_or(0.0, |p| f64::from(p.prob))
    }
}

/// Hyperparameters of `curate train-classifier` (defaults: DCLM's classifier).
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub positive_label: String,
    pub negative_label: String,
    pub word_ngrams: i32,
    pub lr: f64,
    pub dim: i32,
    pub epoch: i32,
    /// Hash buckets of the word n-grams: the model holds `(words + bucket) * dim` floats, so
    /// the default 2,000,000 (fastText's and DCLM's) makes an ~800 MB `.bin` at dim 100.
    pub bucket: i32,
    /// 1 makes training deterministic (fastText's Hogwild! SGD races otherwise).
    pub threads: i32,
    pub seed: i32,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            positive_label: super::config::default_label(),
            negative_label: NEGATIVE_LABEL.into(),
            word_ngrams: 2,
            lr: 0.1,
            dim: 100,
            epoch: 5,
            bucket: 2_000_000,
            threads: 1,
            seed: 0,
        }
    }
}

/// One fastText training line: the label, then the text on one line.
fn training_line(label: &str, text: &str) -> String {
    format!(
        "{label} {}\n",
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

/// Trains a classifier on positive and negative texts (shuffled together deterministically)
/// and writes it to `out` (fastText `.bin`, via a temporary name). The training file fastText
/// reads is written next to `out` and removed afterwards.
pub fn train(
    positives: &[String],
    negatives: &[String],
    opts: &TrainOptions,
    out: &Path,
) -> Result<FastText, CurateError> {
    let mut lines: Vec<String> = positives
        .iter()
        .map(|t| training_line(&opts.positive_label, t))
        .chain(
            negatives
                .iter()
                .map(|t| training_line(&opts.negative_label, t)),
        )
        .filter(|l| l.split_whitespace().count() > 1)
        .collect();
    // Interleave by a seeded hash so SGD does not see all of one class first.
    lines.sort_by_key(|l| super::normalize::hash64(l.as_bytes(), opts.seed as u64));
    let input = tmp_training_file(out);
    let write = || -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input)?);
        for l in &lines {
            f.write_all(l.as_bytes())?;
        }
        f.flush()
    };
    write().map_err(|e| CurateError::io(&input, e))?;
    let mut args = Args {
        input: input.clone(),
        ..Args::default()
    };
    args.apply_supervised_defaults();
    args.model = ModelName::Supervised;
    args.loss = LossName::Softmax;
    args.word_ngrams = opts.word_ngrams;
    args.bucket = opts.bucket;
    args.lr = opts.lr;
    args.dim = opts.dim;
    args.epoch = opts.epoch;
    args.thread = opts.threads;
    args.seed = opts.seed;
    args.verbose = 0;
    let trained = FastText::train(args);
    let _ = std::fs::remove_file(&input);
    let model = trained.map_err(|e| CurateError::Classifier {
        path: out.to_path_buf(),
        message: format!("training failed: {e}"),
    })?;
    let tmp = crate::fsutil::tmp_path(out);
    model
        .save_model(&tmp)
        .map_err(|e| CurateError::Classifier {
            path: out.to_path_buf(),
            message: format!("saving failed: {e}"),
        })?;
    std::fs::rename(&tmp, out).map_err(|e| CurateError::io(out, e))?;
    Ok(model)
}

fn tmp_training_file(out: &Path) -> PathBuf {
    let mut os = out.as_os_str().to_owned();
    os.push(".train.txt.tmp");
    PathBuf::from(os)
}
