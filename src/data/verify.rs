//! A complete check of a prepared-data directory, file by file (`syllabus verify`).
//!
//! Unlike `load_prepared`, which stops at the first problem, every file is checked and
//! reported: the manifest (its checksum and internal consistency), then each split's token
//! store (header, length, content checksum, token range) and document index (header, length,
//! content checksum, structure), each against the manifest's counts and checksums, and the
//! copied `tokenizer.json` (when there is one) against its recorded hash. When the
//! manifest itself fails, the files are looked for under their default names and checked on
//! their own.

use std::fmt;
use std::path::{Path, PathBuf};

use super::manifest::{
    check_docs, check_store, checksum_field, read_manifest, TRAIN_DOCS, TRAIN_STORE, VAL_DOCS,
    VAL_STORE,
};
use super::{
    prepared_tokenizer, DataError, DocIndex, Manifest, TokenStore, MANIFEST_FILE, TOKENIZER_FILE,
};

/// The outcome for one file.
#[derive(Debug)]
pub enum FileStatus {
    /// Every check passed; the text says what was found.
    Ok(String),
    /// Every check that the file's format allows passed, but the format predates content
    /// checksums, so its content could not be verified (re-preparing adds them).
    NoChecksum {
        format: u32,
    },
    Failed(DataError),
}

/// One file of a verified directory and its outcome.
#[derive(Debug)]
pub struct FileCheck {
    pub path: PathBuf,
    pub status: FileStatus,
}

impl FileCheck {
    /// False only for `FileStatus::Failed`: a format without checksums is accepted.
    pub fn passed(&self) -> bool {
        !matches!(self.status, FileStatus::Failed(_))
    }

    /// `found` describes a file that passed; `format` is its format version when that format
    /// has no checksum of its content.
    fn new(path: PathBuf, result: Result<String, DataError>, unchecked: Option<u32>) -> Self {
        let status = match (result, unchecked) {
            (Err(e), _) => FileStatus::Failed(e),
            (Ok(_), Some(format)) => FileStatus::NoChecksum { format },
            (Ok(found), None) => FileStatus::Ok(found),
        };
        FileCheck { path, status }
    }
}

/// One line: `PATH: ok (...)`, `PATH: no content checksum (format 1) ...`, or the error
/// (which names the file).
impl fmt::Display for FileCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.status {
            FileStatus::Ok(found) => write!(f, "{path}: ok ({found})"),
            FileStatus::NoChecksum { format } => write!(
                f,
                "{path}: no content checksum (format {format}): the rest checks out; re-run \
                 `syllabus prepare` to add one"
            ),
            FileStatus::Failed(e) => {
                let msg = e.to_string();
                if msg.starts_with(&path.to_string()) {
                    write!(f, "{msg}")
                } else {
                    write!(f, "{path}: {msg}")
                }
            }
        }
    }
}

/// Checks every file of the prepared directory `dir`; an error only if `dir` is not a
/// directory. The manifest comes first, then train and val (store, then index).
pub fn verify_prepared(dir: &Path) -> Result<Vec<FileCheck>, DataError> {
    if !dir.is_dir() {
        return Err(DataError::invalid(dir, "not a directory"));
    }
    let path = dir.join(MANIFEST_FILE);
    let mut checks = Vec::new();
    let manifest = match read_manifest(dir) {
        Ok(m) => {
            let format = m.format_version;
            let found = format!("format {format}, checksum verified");
            let unchecked = (format < 2).then_some(format);
            checks.push(FileCheck::new(path, Ok(found), unchecked));
            Some(m)
        }
        Err(e) => {
            checks.push(FileCheck::new(path, Err(e), None));
            None
        }
    };
    for (name, store_file, docs_file) in [
        ("train", TRAIN_STORE, TRAIN_DOCS),
        ("val", VAL_STORE, VAL_DOCS),
    ] {
        let m = manifest.as_ref();
        verify_split(dir, m, name, (store_file, docs_file), &mut checks);
    }
    if let Some(m) = manifest.as_ref().filter(|m| m.tokenizer_hash.is_some()) {
        let result = prepared_tokenizer(dir, m).map(|t| {
            format!(
                "vocabulary {}, separator {}, hash verified",
                t.vocab_size(),
                t.eot_token()
            )
        });
        checks.push(FileCheck::new(dir.join(TOKENIZER_FILE), result, None));
    }
    Ok(checks)
}

fn verify_split(
    dir: &Path,
    m: Option<&Manifest>,
    name: &str,
    (default_store, default_docs): (&str, &str),
    checks: &mut Vec<FileCheck>,
) {
    let split = m.map(|m| if name == "train" { &m.train } else { &m.val });
    // Without a valid manifest each file can only be checked on its own.
    let alone = if m.is_none() {
        "; not checked against the manifest"
    } else {
        ""
    };
    let store_path = dir.join(split.map_or(default_store, |s| &s.file));
    let docs_path = dir.join(split.map_or(default_docs, |s| &s.docs_file));

    let store = match TokenStore::open(&store_path) {
        Ok(store) => Some(store),
        Err(e) => {
            checks.push(FileCheck::new(store_path.clone(), Err(e), None));
            None
        }
    };
    if let Some(store) = &store {
        let consistent = match (m, split) {
            (Some(m), Some(split)) => check_store(store, m, split, name),
            _ => Ok(()),
        };
        let found = consistent.map(|()| match store.content_crc() {
            Some(crc) => format!("{} tokens, {}{alone}", store.len(), checksum_field(crc)),
            None => format!("{} tokens{alone}", store.len()),
        });
        let unchecked = store
            .content_crc()
            .is_none()
            .then(|| store.format_version());
        checks.push(FileCheck::new(store_path, found, unchecked));
    }

    let result = DocIndex::open_with_crc(&docs_path).and_then(|(docs, crc)| {
        if let (Some(m), Some(split)) = (m, split) {
            check_docs(&docs_path, &docs, crc, store.as_ref(), m, split, name)?;
        }
        Ok(format!(
            "{} documents, {}{alone}",
            docs.len(),
            checksum_field(crc)
        ))
    });
    // Document indexes have carried a content checksum since their format 1.
    checks.push(FileCheck::new(docs_path, result, None));
}
