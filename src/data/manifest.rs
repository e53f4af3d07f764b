//! `manifest.json`: what a prepared directory holds, and loading it back with full validation.
//!
//! Format 2 carries a top-level `"checksum"` of its own content (`fsutil::to_checksummed_json`)
//! and the content checksum of every store and index, so an edited field or a swapped file is
//! detected. Format 1 (earlier builds, neither) still loads.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::prepared_tokenizer::check_tokenizer_fields;
use super::{DataError, DocIndex, TokenStore};
use crate::fsutil::binheader::HeaderError;
use crate::fsutil::{from_checksummed_json, ChecksumError};

pub const MANIFEST_FILE: &str = "manifest.json";
/// The format this build writes; it reads 1 (no checksums) to this.
pub const MANIFEST_FORMAT_VERSION: u32 = 2;
pub(crate) const TRAIN_STORE: &str = "train.bin";
pub(crate) const VAL_STORE: &str = "val.bin";
pub(crate) const TRAIN_DOCS: &str = "train.docs";
pub(crate) const VAL_DOCS: &str = "val.docs";

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Manifest {
    pub format_version: u32,
    /// `"gpt2 (tiktoken r50k_base)"`, or `"huggingface tokenizer.json"` for a tokenizer file
    /// copied into the directory as `tokenizer.json`.
    pub tokenizer: String,
    /// `"sha256:<hex>"` of the copied `tokenizer.json`; absent for GPT-2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer_hash: Option<String>,
    /// One more than the largest token id.
    pub vocab_size: u32,
    /// The document separator that ends every document.
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
    /// Content checksum of `file` as its header stores it, `"crc32:xxxxxxxx"`; required from
    /// format 2, absent in format 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_checksum: Option<String>,
    /// Content checksum of `docs_file`, like `file_checksum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docs_file_checksum: Option<String>,
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
    missing_files(dir).is_empty()
}

/// The files of a prepared directory that `dir` lacks.
pub fn missing_files(dir: &Path) -> Vec<&'static str> {
    [MANIFEST_FILE, TRAIN_STORE, VAL_STORE, TRAIN_DOCS, VAL_DOCS]
        .into_iter()
        .filter(|f| !dir.join(f).is_file())
        .collect()
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

/// Reads and checks `dir/manifest.json` (version, checksum, schema, internal consistency).
pub(crate) fn read_manifest(dir: &Path) -> Result<Manifest, DataError> {
    let path = dir.join(MANIFEST_FILE);
    if !path.is_file() {
        return Err(DataError::invalid(
            dir,
            format!("not a prepared data directory (no {MANIFEST_FILE}); run `syllabus prepare`"),
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| DataError::io(&path, e))?;
    // Check the version before the full schema so an older/newer manifest gets a version
    // message rather than a confusing missing-field error.
    let version = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map_err(|e| DataError::invalid(&path, format!("invalid JSON: {e}")))?
        .get("format_version")
        .and_then(|v| v.as_u64());
    let version = match version {
        Some(v) if (1..=MANIFEST_FORMAT_VERSION as u64).contains(&v) => v as u32,
        _ => {
            // Worded as a binary file's header would: one version message for every format.
            return Err(DataError::Header(HeaderError::UnsupportedVersion {
                path,
                found: version.map_or(0, |v| v.min(u32::MAX as u64) as u32),
                oldest: 1,
                supported: MANIFEST_FORMAT_VERSION,
            }));
        }
    };
    // Format 1 had no checksum; from format 2 on a missing one means an edit.
    let m: Manifest = from_checksummed_json(&bytes, version >= 2).map_err(|e| match e {
        ChecksumError::Json(e) => DataError::invalid(&path, format!("invalid manifest: {e}")),
        e => DataError::JsonChecksum {
            path: path.clone(),
            source: e,
        },
    })?;
    check_manifest(&path, &m)?;
    Ok(m)
}

/// `"crc32:xxxxxxxx"`, the form content checksums take in the manifest.
pub(crate) fn checksum_field(crc: u32) -> String {
    format!("crc32:{crc:08x}")
}

fn parse_checksum_field(field: &str) -> Option<u32> {
    let hex = field.strip_prefix("crc32:")?;
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

fn check_manifest(path: &Path, m: &Manifest) -> Result<(), DataError> {
    let fail = |msg: String| Err(DataError::invalid(path, msg));
    check_tokenizer_fields(m).map_err(|msg| DataError::invalid(path, msg))?;
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
        for (field, value) in [
            ("file_checksum", &split.file_checksum),
            ("docs_file_checksum", &split.docs_file_checksum),
        ] {
            match value {
                None if m.format_version >= 2 => {
                    return fail(format!(
                        "{name}.{field} is missing (required from format 2)"
                    ))
                }
                Some(v) if parse_checksum_field(v).is_none() => {
                    return fail(format!(
                        "{name}.{field} is {v:?}, not \"crc32:\" and 8 hex digits"
                    ))
                }
                _ => {}
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
    let store = TokenStore::open(&dir.join(&split.file))?;
    check_store(&store, m, split, name)?;
    let docs_path = dir.join(&split.docs_file);
    let (docs, docs_crc) = DocIndex::open_with_crc(&docs_path)?;
    check_docs(&docs_path, &docs, docs_crc, Some(&store), m, split, name)?;
    Ok((store, docs))
}

fn inconsistent(path: &Path, what: String) -> DataError {
    DataError::invalid(
        path,
        format!("{what}; the prepared data is inconsistent, re-run prepare with --overwrite"),
    )
}

/// Whether a content checksum found in a file matches the manifest's record of it (format 1
/// manifests record none; a format 1 file has none to compare).
fn check_recorded(
    path: &Path,
    found: Option<u32>,
    recorded: &Option<String>,
    field: String,
) -> Result<(), DataError> {
    let Some(recorded) = recorded else {
        return Ok(());
    };
    if found.is_some() && found == parse_checksum_field(recorded) {
        return Ok(());
    }
    let found = found.map_or("no content checksum (format 1)".to_string(), checksum_field);
    Err(inconsistent(
        path,
        format!("content checksum is {found} but manifest {field} is {recorded}"),
    ))
}

/// Checks an opened token store against the manifest's entry for its split.
pub(crate) fn check_store(
    store: &TokenStore,
    m: &Manifest,
    split: &SplitInfo,
    name: &str,
) -> Result<(), DataError> {
    let path = store.path();
    if store.vocab_size() != m.vocab_size {
        let (found, want) = (store.vocab_size(), m.vocab_size);
        return Err(inconsistent(
            path,
            format!("vocab_size {found} but manifest says {want}"),
        ));
    }
    if store.len() as u64 != split.tokens {
        return Err(inconsistent(
            path,
            format!(
                "holds {} tokens but manifest {name}.tokens is {}",
                store.len(),
                split.tokens
            ),
        ));
    }
    let field = format!("{name}.file_checksum");
    check_recorded(path, store.content_crc(), &split.file_checksum, field)
}

/// Checks an opened document index (with its verified content checksum) against the
/// manifest and, when it opened, the split's token store.
pub(crate) fn check_docs(
    path: &Path,
    docs: &DocIndex,
    docs_crc: u32,
    store: Option<&TokenStore>,
    m: &Manifest,
    split: &SplitInfo,
    name: &str,
) -> Result<(), DataError> {
    if docs.len() as u64 != split.documents || docs.token_count() as u64 != split.tokens {
        return Err(inconsistent(
            path,
            format!(
                "indexes {} documents over {} tokens; manifest says {} documents over {} tokens",
                docs.len(),
                docs.token_count(),
                split.documents,
                split.tokens
            ),
        ));
    }
    if docs.num_sources() as usize != m.sources.len() {
        let (found, listed) = (docs.num_sources(), m.sources.len());
        return Err(inconsistent(
            path,
            format!("{found} sources but manifest lists {listed}"),
        ));
    }
    let field = format!("{name}.docs_file_checksum");
    check_recorded(path, Some(docs_crc), &split.docs_file_checksum, field)?;
    let Some(store) = store else {
        return Ok(());
    };
    if docs.token_count() != store.len() {
        let (found, held) = (docs.token_count(), store.len());
        return Err(inconsistent(
            path,
            format!("indexes {found} tokens but the store holds {held}"),
        ));
    }
    // Every document ends with EOT: cheap (one read per document) and catches an index
    // paired with the wrong store.
    if let Some(i) = (0..docs.len()).find(|&i| store.get(docs.doc_end(i) - 1) != m.eot_token) {
        return Err(inconsistent(
            path,
            format!(
                "document {i} does not end with the separator {}",
                m.eot_token
            ),
        ));
    }
    Ok(())
}
