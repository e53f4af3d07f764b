//! Writing a token store: streamed into a temp file, header and rename on `finish`.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crc32fast::Hasher;

use super::{Dtype, MAGIC, OFF_COUNT, OFF_DTYPE, OFF_VOCAB, STORE_FORMAT_VERSION};
use crate::data::content::OFF_CONTENT_CRC;
use crate::data::{commit_rename, DataError};
use crate::fsutil::binheader::{Header, HEADER_LEN};
use crate::fsutil::tmp_path;

/// Streams tokens into `<final>.tmp`, then on `finish` writes the real header, fsyncs and
/// renames onto the final name: a crash never leaves a partial file under the final name.
/// Dropping an unfinished writer deletes the temp file.
#[derive(Debug)]
pub struct TokenStoreWriter {
    final_path: PathBuf,
    tmp_path: PathBuf,
    out: Option<BufWriter<File>>,
    dtype: Dtype,
    vocab_size: u32,
    count: u64,
    /// CRC32 of the token bytes written so far: computed while streaming, so the content
    /// checksum costs no second pass over the file.
    crc: Hasher,
    scratch: Vec<u8>,
    finished: bool,
}

impl TokenStoreWriter {
    pub fn create(final_path: &Path, vocab_size: u32) -> Result<Self, DataError> {
        if vocab_size == 0 {
            return Err(DataError::InvalidArgument(format!(
                "{}: vocab_size must be positive",
                final_path.display()
            )));
        }
        let tmp = tmp_path(final_path);
        let file = File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        // Placeholder so token bytes land at their final offsets; rewritten in `finish`.
        out.write_all(&[0u8; HEADER_LEN])
            .map_err(|e| DataError::io(&tmp, e))?;
        Ok(TokenStoreWriter {
            final_path: final_path.to_path_buf(),
            tmp_path: tmp,
            out: Some(out),
            dtype: Dtype::for_vocab(vocab_size),
            vocab_size,
            count: 0,
            crc: Hasher::new(),
            scratch: Vec::new(),
            finished: false,
        })
    }

    /// Appends tokens; an id >= vocab_size is an error (nothing of this call is written).
    pub fn push(&mut self, tokens: &[u32]) -> Result<(), DataError> {
        if let Some(i) = tokens.iter().position(|&t| t >= self.vocab_size) {
            return Err(DataError::TokenOutOfRange {
                path: self.final_path.clone(),
                position: self.count + i as u64,
                token: tokens[i],
                vocab_size: self.vocab_size,
            });
        }
        self.scratch.clear();
        match self.dtype {
            // Truncation is exact: every token was checked < vocab_size <= 65536 above.
            Dtype::U16 => tokens
                .iter()
                .for_each(|&t| self.scratch.extend_from_slice(&(t as u16).to_le_bytes())),
            Dtype::U32 => tokens
                .iter()
                .for_each(|&t| self.scratch.extend_from_slice(&t.to_le_bytes())),
        }
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| DataError::invalid(&self.final_path, "push after a failed finish"))?;
        out.write_all(&self.scratch)
            .map_err(|e| DataError::io(&self.tmp_path, e))?;
        self.crc.update(&self.scratch);
        self.count += tokens.len() as u64;
        Ok(())
    }

    /// Tokens pushed so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// CRC32 of the token bytes pushed so far: the content checksum `finish` writes.
    pub fn content_crc(&self) -> u32 {
        self.crc.clone().finalize()
    }

    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Writes the header, fsyncs, renames into place; returns the token count.
    pub fn finish(mut self) -> Result<u64, DataError> {
        let out = self.out.take().ok_or_else(|| {
            DataError::invalid(&self.final_path, "writer already finished or failed")
        })?;
        let mut file = out
            .into_inner()
            .map_err(|e| DataError::io(&self.tmp_path, e.into_error()))?;
        let mut header = Header::new(MAGIC, STORE_FORMAT_VERSION);
        header.set_u32(OFF_DTYPE, self.dtype.width() as u32);
        header.set_u32(OFF_VOCAB, self.vocab_size);
        header.set_u64(OFF_COUNT, self.count);
        header.set_u32(OFF_CONTENT_CRC, self.content_crc());
        let tmp = self.tmp_path.clone();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(&header.seal()))
            .and_then(|_| file.sync_all())
            .map_err(|e| DataError::io(&tmp, e))?;
        drop(file);
        commit_rename(&tmp, &self.final_path)?;
        self.finished = true;
        Ok(self.count)
    }
}

impl Drop for TokenStoreWriter {
    fn drop(&mut self) {
        if !self.finished {
            drop(self.out.take());
            // Best effort: the temp file is garbage either way, and Drop cannot report.
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}
