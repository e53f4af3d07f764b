//! Training a byte-level BPE tokenizer (GPT-2's scheme: byte alphabet, GPT-2's
//! pre-tokenization regex, no prefix space) on a corpus, with Hugging Face's `tokenizers`.
//!
//! Documents stream from the input files through a bounded channel, so memory holds the
//! trainer's word counts (one entry per distinct pre-tokenized word), not the corpus.

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;

use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, NormalizerWrapper, TokenizerBuilder};

use crate::data::inputs::{discover, read_docs, Columns};
use crate::data::DataError;

/// The separator every trained tokenizer carries (id 0), GPT-2's spelling.
pub const TRAINED_EOT: &str = "<|endoftext|>";
/// Smallest useful vocabulary: the 256 bytes plus the separator.
pub const MIN_TRAINED_VOCAB: usize = 257;

#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Files, directories or glob patterns, in any format `prepare` reads.
    pub inputs: Vec<PathBuf>,
    /// Total vocabulary: 256 bytes + merges + the separator.
    pub vocab_size: usize,
    /// Pairs seen fewer times are never merged.
    pub min_frequency: u64,
    /// Stop reading after this many bytes of text (a sample is enough for BPE).
    pub max_bytes: Option<u64>,
}

/// What the training read.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrainStats {
    pub documents: u64,
    pub text_bytes: u64,
}

/// Documents per channel message and messages in flight: bounds the text held in memory.
const DOCS_PER_MESSAGE: usize = 256;
const MESSAGES_IN_FLIGHT: usize = 4;

/// Trains a tokenizer on `opts.inputs` and writes it to `out` as `tokenizer.json`
/// (atomically: a temp file renamed into place).
pub fn train_tokenizer(opts: &TrainOptions, out: &Path) -> Result<TrainStats, DataError> {
    if opts.vocab_size < MIN_TRAINED_VOCAB {
        return Err(DataError::InvalidArgument(format!(
            "--vocab-size must be at least {MIN_TRAINED_VOCAB} (256 bytes + {TRAINED_EOT}), got {}",
            opts.vocab_size
        )));
    }
    let files = discover(&opts.inputs)?;
    if files.is_empty() {
        return Err(DataError::NoInputs);
    }
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(opts.vocab_size)
        .min_frequency(opts.min_frequency)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from(TRAINED_EOT, true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let byte_level = ByteLevel::default().add_prefix_space(false);
    let mut tokenizer =
        TokenizerBuilder::<BPE, NormalizerWrapper, ByteLevel, ByteLevel, ByteLevel>::new()
            .with_model(BPE::default())
            .with_normalizer(None)
            .with_pre_tokenizer(Some(byte_level))
            .with_post_processor(Some(byte_level))
            .with_decoder(Some(byte_level))
            .build()
            .map_err(|e| DataError::Tokenizer(format!("cannot build the tokenizer: {e}")))?;

    let (tx, rx) = sync_channel::<Vec<String>>(MESSAGES_IN_FLIGHT);
    let max_bytes = opts.max_bytes.unwrap_or(u64::MAX);
    let reader = std::thread::spawn(move || -> Result<TrainStats, DataError> {
        let mut stats = TrainStats::default();
        // A send fails only when training stopped early; its own error is the one reported.
        let stopped = || DataError::Tokenizer("training stopped".into());
        let columns = Columns::default();
        for file in &files {
            if stats.text_bytes >= max_bytes {
                break;
            }
            read_docs(file, &columns, 1 << 20, |batch| {
                let mut texts = Vec::with_capacity(DOCS_PER_MESSAGE);
                for doc in batch.docs {
                    if stats.text_bytes >= max_bytes {
                        break;
                    }
                    stats.documents += 1;
                    stats.text_bytes += doc.text.len() as u64;
                    texts.push(doc.text);
                    if texts.len() == DOCS_PER_MESSAGE {
                        tx.send(std::mem::take(&mut texts)).map_err(|_| stopped())?;
                    }
                }
                tx.send(texts).map_err(|_| stopped())
            })?;
        }
        Ok(stats)
    });
    let trained = tokenizer.train(&mut trainer, rx.into_iter().flatten());
    let read = reader
        .join()
        .map_err(|_| DataError::Tokenizer("the input reader thread panicked".into()));
    trained.map_err(|e| DataError::Tokenizer(format!("BPE training failed: {e}")))?;
    let stats = read??;
    if stats.documents == 0 {
        return Err(DataError::EmptyCorpus(
            "no documents in the tokenizer's training inputs".into(),
        ));
    }
    let tmp = crate::fsutil::tmp_path(out);
    tokenizer
        .save(&tmp, false)
        .map_err(|e| DataError::Tokenizer(format!("{}: cannot write: {e}", tmp.display())))?;
    crate::data::commit_rename(&tmp, out)?;
    Ok(stats)
}
