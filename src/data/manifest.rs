//! `manifest.json`: what a prepared directory holds, and loading it back with full validation.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{DataError, DocIndex, TokenStore, EOT_TOKEN, GPT2_VOCAB_SIZE};

pub const MANIFEST_FILE: &str = "manifest.json";
pub const MANIFEST_FORMAT_VERSION: u32 = 1;
pub const TOKENIZER_NAME: &str = "gpt2 (tiktoken r50k_base)";
pub(crate) const TRAIN_STORE: &str = "train.bin";
pub(crate) const VAL_STORE: &str = "val.bin";
pub(crate) const TRAIN_DOCS: &str = "train.docs";
pub(crate) const VAL_DOCS: &str = "val.docs";

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Manifest {
    pub format_version: u32,
    pub tokenizer: String,
    pub vocab_size: u32,
    pub eot_token: u32,
    /// Source names; the index is the source id used in the document indexes.
    pub sources: Vec<String>,
    pub train: SplitInfo,
    pub val: SplitInfo,
    /// `"hash"`: `val_fraction` of the training inputs' documents held out by a seeded hash
    /// of their text; `"files"`: the validation inputs form the split.
    pub val_split: String,
    /// Set only for the `"hash"` split.
    pub val_fraction: Option<f64>,
    pub seed: u64,
    /// Validation documents whose exact text also occurs in train (only possible with
    /// `"files"`; the hash split sends equal texts to the same side).
    pub val_documents_also_in_train: u64,
    pub source_files: Vec<SourceFile>,
    pub skipped: SkipCounts,
    pub created_unix: u64,
    pub syllabus_version: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct SplitInfo {
    pub documents: u64,
    /// Including one EOT per document.
    pub tokens: u64,
    /// Token store file name, relative to the prepared directory.
    pub file: String,
    /// Document index file name, relative to the prepared directory.
    pub docs_file: String,
    /// Per source id (same length as `Manifest::sources`).
    pub per_source: Vec<SourceTotals>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourceTotals {
    pub documents: u64,
    pub tokens: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: String,
    /// `"train"`, `"val"`, or `"train+val"` (documents split by hash).
    pub split: String,
    /// Documents kept (skipped ones excluded).
    pub documents: u64,
    /// UTF-8 bytes of the kept documents' text.
    pub text_bytes: u64,
    pub skipped: SkipCounts,
}

/// What was skipped, by reason. Nothing else is ever dropped: other problems are errors.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SkipCounts {
    /// Documents whose text is empty or only whitespace.
    pub empty_documents: u64,
    /// Blank lines in JSONL files.
    pub blank_lines: u64,
}

impl SkipCounts {
    pub(crate) fn add(&mut self, other: &SkipCounts) {
        self.empty_documents += other.empty_documents;
        self.blank_lines += other.blank_lines;
    }
}

/// A loaded, validated prepared directory.
#[derive(Debug, Clone)]
pub struct PreparedData {
    pub manifest: Manifest,
    pub train: Arc<TokenStore>,
    pub val: Arc<TokenStore>,
    pub train_docs: DocIndex,
    pub val_docs: DocIndex,
}

/// True when `dir` holds a manifest and all four data files (it does not validate them).
pub fn is_prepared(dir: &Path) -> bool {
    [MANIFEST_FILE, TRAIN_STORE, VAL_STORE, TRAIN_DOCS, VAL_DOCS]
        .iter()
        .all(|f| dir.join(f).is_file())
}

/// Loads a prepared directory and checks that the manifest, stores and indexes agree.
pub fn load_prepared(dir: &Path) -> Result<PreparedData, DataError> {
    let manifest = read_manifest(dir)?;
    let (train, train_docs) = load_split(dir, &manifest, &manifest.train, "train")?;
    let (val, val_docs) = load_split(dir, &manifest, &manifest.val, "val")?;
    Ok(PreparedData {
        manifest,
        train: Arc::new(train),
        val: Arc::new(val),
        train_docs,
        val_docs,
    })
}

fn read_manifest(dir: &Path) -> Result<Manifest, DataError> {
    let path = dir.join(MANIFEST_FILE);
    if !path.is_file() {
        return Err(DataError::invalid(
            dir,
            format!("not a prepared data directory (no {MANIFEST_FILE}); run `syllabus prepare`"),
        ));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| DataError::io(&path, e))?;
    // Check the version before the full schema so an older/newer manifest gets a version
    // message rather than a confusing missing-field error.
    let version = serde_json::from_str::<serde_json::Value>(&text)
        .map_err(|e| DataError::invalid(&path, format!("invalid JSON: {e}")))?
        .get("format_version")
        .and_then(|v| v.as_u64());
    if version != Some(MANIFEST_FORMAT_VERSION as u64) {
        return Err(DataError::UnsupportedVersion {
            path,
            found: version.map_or(0, |v| v.min(u32::MAX as u64) as u32),
            supported: MANIFEST_FORMAT_VERSION,
        });
    }
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| DataError::invalid(&path, format!("invalid manifest: {e}")))?;
    check_manifest(&path, &m)?;
    Ok(m)
}

fn check_manifest(path: &Path, m: &Manifest) -> Result<(), DataError> {
    let fail = |msg: String| Err(DataError::invalid(path, msg));
    if m.tokenizer != TOKENIZER_NAME {
        return fail(format!(
            "tokenizer is {:?}, this build supports {TOKENIZER_NAME:?}",
            m.tokenizer
        ));
    }
    if m.vocab_size as usize != GPT2_VOCAB_SIZE || m.eot_token != EOT_TOKEN {
        return fail(format!(
            "vocab_size {} / eot_token {} do not match GPT-2 ({GPT2_VOCAB_SIZE} / {EOT_TOKEN})",
            m.vocab_size, m.eot_token
        ));
    }
    for (name, split) in [("train", &m.train), ("val", &m.val)] {
        if split.per_source.len() != m.sources.len() {
            return fail(format!(
                "{name}.per_source has {} entries but there are {} sources",
                split.per_source.len(),
                m.sources.len()
            ));
        }
        let docs: u64 = split.per_source.iter().map(|s| s.documents).sum();
        let tokens: u64 = split.per_source.iter().map(|s| s.tokens).sum();
        if docs != split.documents || tokens != split.tokens {
            return fail(format!(
                "{name}.per_source totals disagree with {name} totals"
            ));
        }
        for f in [&split.file, &split.docs_file] {
            // Plain names only: a manifest must not point outside its directory.
            if f.is_empty() || f.contains(['/', '\\']) || f == ".." {
                return fail(format!("{name}: file name {f:?} is not a plain file name"));
            }
        }
    }
    Ok(())
}

fn load_split(
    dir: &Path,
    m: &Manifest,
    split: &SplitInfo,
    name: &str,
) -> Result<(TokenStore, DocIndex), DataError> {
    let store_path = dir.join(&split.file);
    let docs_path = dir.join(&split.docs_file);
    let store = TokenStore::open(&store_path)?;
    let docs = DocIndex::open(&docs_path)?;
    let mismatch = |path: &PathBuf, what: String| {
        Err(DataError::invalid(
            path,
            format!("{what}; the prepared data is inconsistent, re-run prepare with --overwrite"),
        ))
    };
    if store.vocab_size() != m.vocab_size {
        return mismatch(
            &store_path,
            format!(
                "vocab_size {} but manifest says {}",
                store.vocab_size(),
                m.vocab_size
            ),
        );
    }
    if store.len() as u64 != split.tokens {
        return mismatch(
            &store_path,
            format!(
                "holds {} tokens but manifest {name}.tokens is {}",
                store.len(),
                split.tokens
            ),
        );
    }
    if docs.len() as u64 != split.documents || docs.token_count() != store.len() {
        return mismatch(
            &docs_path,
            format!(
                "indexes {} documents over {} tokens; manifest says {} documents, store holds {} tokens",
                docs.len(),
                docs.token_count(),
                split.documents,
                store.len()
            ),
        );
    }
    if docs.num_sources() as usize != m.sources.len() {
        return mismatch(
            &docs_path,
            format!(
                "{} sources but manifest lists {}",
                docs.num_sources(),
                m.sources.len()
            ),
        );
    }
    // Every document ends with EOT: cheap (one read per document) and catches an index
    // paired with the wrong store.
    if let Some(i) = (0..docs.len()).find(|&i| store.get(docs.doc_end(i) - 1) != EOT_TOKEN) {
        return mismatch(
            &docs_path,
            format!("document {i} does not end with <|endoftext|>"),
        );
    }
    Ok((store, docs))
}
