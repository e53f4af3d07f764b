//! Committing a prepared directory: indexes and manifest to temp names, then renames with the
//! manifest last (see the module docs of `prepare`).

use std::path::{Path, PathBuf};

use super::{SplitBuilder, State};
use crate::data::manifest::{TRAIN_DOCS, VAL_DOCS};
use crate::data::{
    commit_rename, tokenizer_file_hash, DataError, DocIndex, Manifest, MANIFEST_FILE,
    TOKENIZER_FILE,
};
use crate::fsutil::{tmp_path, to_checksummed_json};

impl State<'_> {
    /// Writes indexes and manifest to temp names, then renames everything into place with
    /// the manifest last (see the module docs).
    pub(super) fn commit(self) -> Result<Manifest, DataError> {
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
