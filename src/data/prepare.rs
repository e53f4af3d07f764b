//! Corpus preparation: read text/JSONL/parquet inputs, tokenize, split train/val by document,
//! and write token stores, document indexes and the manifest.
//!
//! Crash/error safety: everything is written under `.tmp` names first; only when all data is
//! in place is the old manifest (if any) removed, the files renamed, and the new manifest
//! renamed last. On any error (a corrupt shard halfway through included) nothing under a final
//! name in `out_dir` has been touched.
//!
//! Streaming: one reader thread decodes the inputs into batches of about `BATCH_BYTES` (8 MB)
//! of text and hands them through a channel of `IN_FLIGHT` (2) batches; this thread
//! tokenizes each batch on all cores (rayon) and appends it to the token stores in input
//! order, so the output is the same for any number of threads. Reading and decompressing the
//! next batches overlaps tokenizing the current one.
//!
//! Memory: bounded, apart from per-document bookkeeping:
//! - batches: at most `IN_FLIGHT` queued + one being filled + one being tokenized, each about
//!   `BATCH_BYTES` of text (more only if a single document is larger: a `.txt` file or one
//!   JSONL line is never split), plus the batch being tokenized's ids (4 bytes per token;
//!   GPT-2 averages about 4 bytes of English text per token, so about the text size again):
//!   about 4 x 8 MB of text + 8 MB of ids;
//! - reader buffers: 1 MB of file buffer and decompressor state; for parquet, the current
//!   compressed and decoded page of each column read, and its dictionary page (parquet reads
//!   page by page; writers default to about 1 MB pages);
//! - the tokenizer's tables (a few tens of MB, shared by all threads) and the token stores'
//!   1 MB write buffers;
//! - growing with the corpus: the document indexes (8 bytes of start offset + 4 bytes of
//!   source id per document, train and val, held until the end), and, when validation comes
//!   from its own inputs, the set of train-document text hashes used to count validation
//!   documents also in train (8 bytes per train document plus hash-set overhead, about
//!   16-20 bytes in all). For 10B tokens of 1,000-token documents that is 10M documents:
//!   about 120 MB of index (twice that for a moment while the index files are written) plus
//!   about 200 MB of hashes.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use self::checks::{check_files, check_options};
use self::progress::Progress;
use self::stream::{stream_files, Event};
use super::inputs::{discover, Columns, InputFile, RawDoc, ReadStats};
use super::manifest::{checksum_field, TRAIN_DOCS, TRAIN_STORE, VAL_DOCS, VAL_STORE};
use super::split::{held_out, text_hash};
use super::{
    tokenizer_file_hash, DataError, Manifest, SkipCounts, SourceFile, SourceTotals, SplitInfo,
    TokenStoreWriter, Tokenizer, MANIFEST_FORMAT_VERSION,
};
use crate::fsutil::DirLock;

mod checks;
mod commit;
mod progress;
mod stream;
#[cfg(test)]
mod tests;

/// Text per tokenization batch: large enough to keep all cores busy, small enough to bound
/// memory regardless of corpus size.
pub(crate) const BATCH_BYTES: usize = 8 << 20;

#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// Files, directories (walked recursively in sorted order) or glob patterns.
    pub inputs: Vec<PathBuf>,
    /// If non-empty, these form the validation split and `val_fraction` is ignored.
    pub val_inputs: Vec<PathBuf>,
    /// Fraction of documents held out for validation, in (0, 1), when `val_inputs` is empty.
    pub val_fraction: f64,
    /// Seeds the document hash that decides the held-out split.
    pub seed: u64,
    pub out_dir: PathBuf,
    pub overwrite: bool,
    /// Parquet columns holding the text and the source names.
    pub columns: Columns,
    /// Show a progress bar on stderr (only drawn when stderr is a terminal).
    pub progress: bool,
    /// A Hugging Face `tokenizer.json` (copied into `out_dir`); `None` means GPT-2's BPE.
    pub tokenizer: Option<PathBuf>,
}

impl Default for PrepareOptions {
    /// The `syllabus prepare` defaults, with no inputs, an empty output path and no progress.
    fn default() -> Self {
        PrepareOptions {
            inputs: Vec::new(),
            val_inputs: Vec::new(),
            val_fraction: 0.05,
            seed: 1337,
            out_dir: PathBuf::new(),
            overwrite: false,
            columns: Columns::default(),
            progress: false,
            tokenizer: None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Train,
    Val,
    /// Split by hash.
    Both,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Train => "train",
            Role::Val => "val",
            Role::Both => "train+val",
        }
    }
}

pub fn prepare(opts: &PrepareOptions) -> Result<Manifest, DataError> {
    check_options(opts)?;
    let train_files = discover(&opts.inputs)?;
    let val_files = discover(&opts.val_inputs)?;
    check_files(&train_files, &val_files, opts)?;
    let created = !opts.out_dir.exists();
    // One writer per prepared-data directory (the lock also creates it).
    let lock = DirLock::acquire(&opts.out_dir, "prepare")?;
    let result = run(opts, &train_files, &val_files);
    if result.is_err() && created {
        let _ = std::fs::remove_file(lock.path());
        drop(lock);
        // Only succeeds if empty, i.e. if nothing but our own (removed) temp files was there.
        let _ = std::fs::remove_dir(&opts.out_dir);
    }
    result
}

/// One output split being written.
struct SplitBuilder {
    writer: TokenStoreWriter,
    starts: Vec<usize>,
    sources: Vec<u32>,
    per_source: Vec<SourceTotals>,
}

impl SplitBuilder {
    /// `vocab_size` picks the store's id width (u16 up to 65,536, u32 above).
    fn create(dir: &Path, name: &str, vocab_size: u32) -> Result<Self, DataError> {
        Ok(SplitBuilder {
            writer: TokenStoreWriter::create(&dir.join(name), vocab_size)?,
            starts: Vec::new(),
            sources: Vec::new(),
            per_source: Vec::new(),
        })
    }

    /// Appends a document's ids and the end-of-text id `eot` that separates documents.
    fn push_doc(&mut self, ids: &[u32], eot: u32, source: u32) -> Result<(), DataError> {
        self.starts.push(self.writer.count() as usize);
        self.sources.push(source);
        self.writer.push(ids)?;
        self.writer.push(&[eot])?;
        let s = source as usize;
        if self.per_source.len() <= s {
            self.per_source.resize(s + 1, SourceTotals::default());
        }
        self.per_source[s].documents += 1;
        self.per_source[s].tokens += ids.len() as u64 + 1;
        Ok(())
    }
}

struct State<'a> {
    opts: &'a PrepareOptions,
    tokenizer: Tokenizer,
    /// `"sha256:..."` of `opts.tokenizer`.
    tokenizer_hash: Option<String>,
    sources: Vec<String>,
    source_ids: HashMap<String, u32>,
    train: SplitBuilder,
    val: SplitBuilder,
    files: Vec<SourceFile>,
    skipped: SkipCounts,
    /// Text hashes of train documents, to count exact duplicates in file-given val inputs.
    train_hashes: HashSet<u64>,
    val_in_train: u64,
    progress: Progress,
    /// The manifest entry of the file being read, from its first batch to its end.
    current: Option<SourceFile>,
}

fn run(
    opts: &PrepareOptions,
    train_files: &[InputFile],
    val_files: &[InputFile],
) -> Result<Manifest, DataError> {
    let tokenizer = Tokenizer::load(opts.tokenizer.as_deref())?;
    let tokenizer_hash = opts
        .tokenizer
        .as_deref()
        .map(tokenizer_file_hash)
        .transpose()?;
    let vocab_size = tokenizer.vocab_size() as u32;
    let disk_bytes = train_files
        .iter()
        .chain(val_files)
        .map(|f| f.disk_bytes)
        .sum();
    let mut st = State {
        opts,
        tokenizer,
        tokenizer_hash,
        sources: Vec::new(),
        source_ids: HashMap::new(),
        train: SplitBuilder::create(&opts.out_dir, TRAIN_STORE, vocab_size)?,
        val: SplitBuilder::create(&opts.out_dir, VAL_STORE, vocab_size)?,
        files: Vec::new(),
        skipped: SkipCounts::default(),
        train_hashes: HashSet::new(),
        val_in_train: 0,
        progress: Progress::new(opts.progress, disk_bytes),
        current: None,
    };
    let train_role = if val_files.is_empty() {
        Role::Both
    } else {
        Role::Train
    };
    let roles: Vec<Role> = train_files
        .iter()
        .map(|_| train_role)
        .chain(val_files.iter().map(|_| Role::Val))
        .collect();
    let files: Vec<InputFile> = train_files.iter().chain(val_files).cloned().collect();
    stream_files(&files, &opts.columns, |event| match event {
        Event::Batch {
            file,
            docs,
            disk_pos,
        } => {
            st.process_batch(docs, roles[file], &files[file])?;
            st.progress.at(disk_pos);
            Ok(())
        }
        Event::FileDone { file, stats } => {
            st.file_done(&files[file], roles[file], &stats);
            Ok(())
        }
    })?;
    st.progress.finish();
    st.check_nonempty()?;
    st.commit()
}

impl State<'_> {
    /// The manifest entry of `file`, started at its first batch.
    fn file_info(&mut self, file: &InputFile, role: Role) -> &mut SourceFile {
        self.current.get_or_insert_with(|| SourceFile {
            path: file.path.display().to_string(),
            split: role.name().to_string(),
            documents: 0,
            text_bytes: 0,
            skipped: SkipCounts::default(),
        })
    }

    fn file_done(&mut self, file: &InputFile, role: Role, stats: &ReadStats) {
        let mut info = self.file_info(file, role).clone();
        self.current = None;
        info.skipped.blank_lines += stats.blank_lines;
        self.skipped.add(&info.skipped);
        self.files.push(info);
        self.progress.file_done(file.disk_bytes);
    }

    fn process_batch(
        &mut self,
        batch: Vec<RawDoc>,
        role: Role,
        file: &InputFile,
    ) -> Result<(), DataError> {
        let tok = &self.tokenizer;
        let seed = self.opts.seed;
        // par_iter + collect keeps input order, so the output does not depend on threads.
        let encoded: Vec<(Vec<u32>, u64)> = batch
            .par_iter()
            .map(|d| Ok((tok.encode(&d.text)?, text_hash(&d.text))))
            .collect::<Result<_, DataError>>()?;
        let eot = tok.eot_token();
        let (mut documents, mut text_bytes, mut empty, mut tokens) = (0u64, 0u64, 0u64, 0u64);
        for (doc, (ids, hash)) in batch.into_iter().zip(encoded) {
            if doc.text.trim().is_empty() {
                empty += 1;
                continue;
            }
            let is_val = match role {
                Role::Train => false,
                Role::Val => true,
                Role::Both => held_out(hash, seed, self.opts.val_fraction),
            };
            match role {
                Role::Train => {
                    self.train_hashes.insert(hash);
                }
                Role::Val if self.train_hashes.contains(&hash) => self.val_in_train += 1,
                Role::Val | Role::Both => {}
            }
            let source = self.source_id(doc.source);
            let split = if is_val {
                &mut self.val
            } else {
                &mut self.train
            };
            split.push_doc(&ids, eot, source)?;
            documents += 1;
            text_bytes += doc.text.len() as u64;
            tokens += ids.len() as u64 + 1;
        }
        let info = self.file_info(file, role);
        info.documents += documents;
        info.text_bytes += text_bytes;
        info.skipped.empty_documents += empty;
        self.progress.batch(text_bytes, tokens, documents);
        Ok(())
    }

    fn source_id(&mut self, name: String) -> u32 {
        if let Some(&id) = self.source_ids.get(&name) {
            return id;
        }
        // Source ids are assigned in order of first appearance: deterministic for fixed inputs.
        let id = self.sources.len() as u32;
        self.sources.push(name.clone());
        self.source_ids.insert(name, id);
        id
    }

    fn check_nonempty(&self) -> Result<(), DataError> {
        let (nt, nv) = (self.train.starts.len(), self.val.starts.len());
        let files = self.files.len();
        let skipped = self.skipped.empty_documents;
        if nt + nv == 0 {
            return Err(DataError::EmptyCorpus(format!(
                "no documents in {files} input file(s) ({skipped} empty document(s) skipped)"
            )));
        }
        if nt == 0 && !self.opts.val_inputs.is_empty() {
            return Err(DataError::EmptyCorpus(format!(
                "the training inputs hold no documents ({skipped} empty document(s) skipped); \
                 the {nv} validation document(s) come from the validation inputs"
            )));
        }
        if nt == 0 {
            return Err(DataError::EmptyCorpus(format!(
                "the training split is empty: all {nv} document(s) went to validation; \
                 add training documents or lower the validation fraction"
            )));
        }
        if nv == 0 {
            return Err(DataError::EmptyCorpus(format!(
                "the validation split is empty: val_fraction {} of {nt} document(s) selected none; \
                 raise the validation fraction, add documents, or pass validation inputs",
                self.opts.val_fraction
            )));
        }
        Ok(())
    }

    /// The manifest entry of a split whose index was written with content checksum `docs_crc`.
    fn split_info(
        &self,
        split: &SplitBuilder,
        file: &str,
        docs_file: &str,
        docs_crc: u32,
    ) -> SplitInfo {
        let mut per_source = split.per_source.clone();
        per_source.resize(self.sources.len(), SourceTotals::default());
        SplitInfo {
            documents: split.starts.len() as u64,
            tokens: split.writer.count(),
            file: file.to_string(),
            docs_file: docs_file.to_string(),
            file_checksum: Some(checksum_field(split.writer.content_crc())),
            docs_file_checksum: Some(checksum_field(docs_crc)),
            per_source,
        }
    }

    /// The manifest, given the content checksums of the train and val indexes.
    fn manifest(&self, (train_docs_crc, val_docs_crc): (u32, u32)) -> Manifest {
        let by_hash = self.opts.val_inputs.is_empty();
        let created_unix = crate::fsutil::unix_now();
        Manifest {
            format_version: MANIFEST_FORMAT_VERSION,
            tokenizer: self.tokenizer.name().to_string(),
            tokenizer_hash: self.tokenizer_hash.clone(),
            vocab_size: self.tokenizer.vocab_size() as u32,
            eot_token: self.tokenizer.eot_token(),
            sources: self.sources.clone(),
            train: self.split_info(&self.train, TRAIN_STORE, TRAIN_DOCS, train_docs_crc),
            val: self.split_info(&self.val, VAL_STORE, VAL_DOCS, val_docs_crc),
            val_split: if by_hash { "hash" } else { "files" }.to_string(),
            val_fraction: by_hash.then_some(self.opts.val_fraction),
            seed: self.opts.seed,
            val_documents_also_in_train: self.val_in_train,
            source_files: self.files.clone(),
            skipped: self.skipped,
            created_unix,
            syllabus_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}
