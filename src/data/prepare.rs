//! Corpus preparation: read text/JSONL inputs, tokenize, split train/val by document, and
//! write token stores, document indexes and the manifest.
//!
//! Crash/error safety: everything is written under `.tmp` names first; only when all data is
//! in place is the old manifest (if any) removed, the files renamed, and the new manifest
//! renamed last. On any error nothing under a final name in `out_dir` has been touched.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::inputs::{discover, read_docs, InputFile, RawDoc};
use super::manifest::{
    checksum_field, missing_files, TRAIN_DOCS, TRAIN_STORE, VAL_DOCS, VAL_STORE,
};
use super::split::{held_out, text_hash};
use super::{
    commit_rename, tokenizer_file_hash, DataError, DocIndex, Manifest, SkipCounts, SourceFile,
    SourceTotals, SplitInfo, TokenStoreWriter, Tokenizer, MANIFEST_FILE, MANIFEST_FORMAT_VERSION,
    TOKENIZER_FILE,
};
use crate::fsutil::{tmp_path, to_checksummed_json, DirLock};

/// Text per tokenization batch: large enough to keep all cores busy, small enough to bound
/// memory regardless of corpus size.
const BATCH_BYTES: usize = 8 << 20;

#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// Files or directories (walked recursively in sorted order).
    pub inputs: Vec<PathBuf>,
    /// If non-empty, these form the validation split and `val_fraction` is ignored.
    pub val_inputs: Vec<PathBuf>,
    /// Fraction of documents held out for validation, in (0, 1), when `val_inputs` is empty.
    pub val_fraction: f64,
    /// Seeds the document hash that decides the held-out split.
    pub seed: u64,
    pub out_dir: PathBuf,
    pub overwrite: bool,
    /// A Hugging Face `tokenizer.json` (copied into `out_dir`); `None` means GPT-2's BPE.
    pub tokenizer: Option<PathBuf>,
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

fn check_options(opts: &PrepareOptions) -> Result<(), DataError> {
    if opts.inputs.is_empty() {
        return Err(DataError::NoInputs);
    }
    let f = opts.val_fraction;
    if opts.val_inputs.is_empty() && !(f > 0.0 && f < 1.0) {
        return Err(DataError::InvalidArgument(format!(
            "val_fraction must be in (0, 1) when no validation inputs are given, got {f}"
        )));
    }
    if opts.out_dir.join(MANIFEST_FILE).exists() && !opts.overwrite {
        let missing = missing_files(&opts.out_dir);
        let what = if missing.is_empty() {
            "prepared data".to_string()
        } else {
            format!("incomplete prepared data (missing {})", missing.join(", "))
        };
        return Err(DataError::RefuseOverwrite {
            dir: opts.out_dir.clone(),
            what,
        });
    }
    if opts.out_dir.exists() && !opts.out_dir.is_dir() {
        return Err(DataError::invalid(
            &opts.out_dir,
            "output path exists and is not a directory",
        ));
    }
    Ok(())
}

fn check_files(
    train: &[InputFile],
    val: &[InputFile],
    opts: &PrepareOptions,
) -> Result<(), DataError> {
    if train.is_empty() {
        return Err(DataError::NoInputs);
    }
    if !opts.val_inputs.is_empty() && val.is_empty() {
        return Err(DataError::InvalidArgument(
            "validation inputs contain no .txt/.jsonl(.gz) files".to_string(),
        ));
    }
    // A file listed twice would duplicate its documents (in both splits, if train and val).
    let mut seen = HashSet::new();
    for f in train.iter().chain(val) {
        let key = std::fs::canonicalize(&f.path).map_err(|e| DataError::io(&f.path, e))?;
        if !seen.insert(key) {
            return Err(DataError::InvalidArgument(format!(
                "{} is listed more than once among the inputs (train and validation inputs included)",
                f.path.display()
            )));
        }
    }
    Ok(())
}

/// One output split being written.
struct SplitBuilder {
    writer: TokenStoreWriter,
    starts: Vec<usize>,
    sources: Vec<u32>,
    per_source: Vec<SourceTotals>,
}

impl SplitBuilder {
    fn create(dir: &Path, name: &str, vocab_size: u32) -> Result<Self, DataError> {
        Ok(SplitBuilder {
            writer: TokenStoreWriter::create(&dir.join(name), vocab_size)?,
            starts: Vec::new(),
            sources: Vec::new(),
            per_source: Vec::new(),
        })
    }

    fn push_doc(&mut self, ids: &[u32], source: u32, eot: u32) -> Result<(), DataError> {
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
    let vocab = tokenizer.vocab_size() as u32;
    let mut st = State {
        opts,
        tokenizer,
        tokenizer_hash,
        sources: Vec::new(),
        source_ids: HashMap::new(),
        train: SplitBuilder::create(&opts.out_dir, TRAIN_STORE, vocab)?,
        val: SplitBuilder::create(&opts.out_dir, VAL_STORE, vocab)?,
        files: Vec::new(),
        skipped: SkipCounts::default(),
        train_hashes: HashSet::new(),
        val_in_train: 0,
    };
    let train_role = if val_files.is_empty() {
        Role::Both
    } else {
        Role::Train
    };
    for f in train_files {
        st.process_file(f, train_role)?;
    }
    for f in val_files {
        st.process_file(f, Role::Val)?;
    }
    st.check_nonempty()?;
    st.commit()
}

impl State<'_> {
    fn process_file(&mut self, file: &InputFile, role: Role) -> Result<(), DataError> {
        let mut info = SourceFile {
            path: file.path.display().to_string(),
            split: role.name().to_string(),
            documents: 0,
            text_bytes: 0,
            skipped: SkipCounts::default(),
        };
        let stats = read_docs(file, BATCH_BYTES, |batch| {
            self.process_batch(batch, role, &mut info)
        })?;
        info.skipped.blank_lines += stats.blank_lines;
        self.skipped.add(&info.skipped);
        self.files.push(info);
        Ok(())
    }

    fn process_batch(
        &mut self,
        batch: Vec<RawDoc>,
        role: Role,
        info: &mut SourceFile,
    ) -> Result<(), DataError> {
        let tok = &self.tokenizer;
        let seed = self.opts.seed;
        // par_iter + collect keeps input order, so the output does not depend on threads.
        let encoded: Vec<(Vec<u32>, u64)> = batch
            .par_iter()
            .map(|d| Ok((tok.encode(&d.text)?, text_hash(&d.text))))
            .collect::<Result<_, DataError>>()?;
        let eot = tok.eot_token();
        for (doc, (ids, hash)) in batch.into_iter().zip(encoded) {
            if doc.text.trim().is_empty() {
                info.skipped.empty_documents += 1;
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
            split.push_doc(&ids, source, eot)?;
            info.documents += 1;
            info.text_bytes += doc.text.len() as u64;
        }
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

    /// Writes indexes and manifest to temp names, then renames everything into place with
    /// the manifest last (see the module docs).
    fn commit(self) -> Result<Manifest, DataError> {
        let dir = self.opts.out_dir.clone();
        let n = self.sources.len() as u32;
        let index = |b: &SplitBuilder| {
            DocIndex::new(
                b.starts.clone(),
                b.sources.clone(),
                b.writer.count() as usize,
                n,
            )
        };
        let (train_idx, val_idx) = (index(&self.train)?, index(&self.val)?);
        let mut temps = TempFiles(Vec::new());
        let (train_tmp, train_crc) = train_idx.write_tmp(&dir.join(TRAIN_DOCS))?;
        temps.0.push(train_tmp);
        let (val_tmp, val_crc) = val_idx.write_tmp(&dir.join(VAL_DOCS))?;
        temps.0.push(val_tmp);
        let manifest = self.manifest((train_crc, val_crc));
        let tokenizer_tmp = match (&self.opts.tokenizer, &self.tokenizer_hash) {
            (Some(src), Some(hash)) => Some(copy_tokenizer(src, hash, &dir, &mut temps)?),
            _ => None,
        };
        let manifest_tmp = tmp_path(&dir.join(MANIFEST_FILE));
        temps.0.push(manifest_tmp.clone());
        write_json_synced(&manifest_tmp, &manifest)?;

        // From here on the directory is being replaced: drop the old manifest first so a
        // crash midway leaves a directory that is_prepared() rejects, not a mixed one.
        let old = dir.join(MANIFEST_FILE);
        if old.exists() {
            std::fs::remove_file(&old).map_err(|e| DataError::io(&old, e))?;
        }
        self.train.writer.finish()?;
        self.val.writer.finish()?;
        commit_rename(&temps.0[0], &dir.join(TRAIN_DOCS))?;
        commit_rename(&temps.0[1], &dir.join(VAL_DOCS))?;
        let tokenizer_dest = dir.join(TOKENIZER_FILE);
        match tokenizer_tmp {
            Some(tmp) => commit_rename(&tmp, &tokenizer_dest)?,
            // A GPT-2 prepare over a directory prepared with a tokenizer file.
            None if tokenizer_dest.exists() => std::fs::remove_file(&tokenizer_dest)
                .map_err(|e| DataError::io(&tokenizer_dest, e))?,
            None => {}
        }
        commit_rename(&manifest_tmp, &old)?;
        temps.0.clear();
        Ok(manifest)
    }
}

/// Copies the tokenizer file to a temp name in `dir` (registered in `temps`), returning it.
/// The hash recorded in the manifest was taken from `src` before tokenizing; the copy is
/// checked against it so a file replaced meanwhile cannot slip in.
fn copy_tokenizer(
    src: &Path,
    hash: &str,
    dir: &Path,
    temps: &mut TempFiles,
) -> Result<PathBuf, DataError> {
    let tmp = tmp_path(&dir.join(TOKENIZER_FILE));
    temps.0.push(tmp.clone());
    std::fs::copy(src, &tmp).map_err(|e| DataError::io(&tmp, e))?;
    if tokenizer_file_hash(&tmp)? != hash {
        return Err(DataError::invalid(
            src,
            "the tokenizer file changed while the corpus was being prepared",
        ));
    }
    Ok(tmp)
}

/// Writes the manifest with its own checksum (ending in a newline) and fsyncs it.
fn write_json_synced(path: &Path, manifest: &Manifest) -> Result<(), DataError> {
    let json = to_checksummed_json(manifest)
        .map_err(|e| DataError::invalid(path, format!("cannot serialize manifest: {e}")))?;
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(path)?;
        f.write_all(&json)?;
        f.sync_all()
    };
    write().map_err(|e| DataError::io(path, e))
}

/// Temp files removed on drop unless cleared (i.e. on every error path).
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p); // best effort: garbage either way
        }
    }
}
