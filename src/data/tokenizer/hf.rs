//! Hugging Face `tokenizer.json` files, through the `tokenizers` crate.
//!
//! Encoding runs the tokenizer's normalizer, pre-tokenizer and model directly, skipping its
//! added-vocabulary pass, so special-token strings in the text stay ordinary text. Decoding
//! byte-level vocabularies goes through a precomputed id-to-bytes table: exact bytes even
//! when a token boundary splits a UTF-8 character (the crate's own decoder would replace
//! such bytes with U+FFFD, which would miscount bytes in bits-per-byte evaluation).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokenizers::{
    DecoderWrapper, Model, Normalizer, OffsetType, PreTokenizedString, PreTokenizer,
    Tokenizer as HfInner,
};

use super::bytes::{char_to_byte, token_bytes};
use crate::data::DataError;

/// The manifest's name for a tokenizer loaded from a `tokenizer.json`.
pub const HF_TOKENIZER_NAME: &str = "huggingface tokenizer.json";

/// Document separators looked up in this order.
const EOT_CANDIDATES: [&str; 3] = ["<|endoftext|>", "</s>", "<eos>"];

pub(super) struct HfTokenizer {
    inner: HfInner,
    path: PathBuf,
    /// Bytes of every id, when the vocabulary is byte-level.
    id_bytes: Option<Vec<Vec<u8>>>,
    vocab_size: usize,
    eot: u32,
}

impl HfTokenizer {
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let inner = HfInner::from_bytes(&bytes).map_err(|e| {
            DataError::invalid(path, format!("not a Hugging Face tokenizer.json: {e}"))
        })?;
        let vocab = inner.get_vocab(true);
        let vocab_size = vocab.values().max().map_or(0, |&m| m as usize + 1);
        let eot = EOT_CANDIDATES
            .iter()
            .find_map(|t| vocab.get(*t).copied())
            .ok_or_else(|| {
                DataError::invalid(
                    path,
                    format!(
                        "the vocabulary has no document separator (one of {})",
                        EOT_CANDIDATES.join(", ")
                    ),
                )
            })?;
        let id_bytes = byte_level_table(&inner, vocab_size);
        Ok(HfTokenizer {
            inner,
            path: path.to_path_buf(),
            id_bytes,
            vocab_size,
            eot,
        })
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>, DataError> {
        let fail = |e: tokenizers::Error| {
            DataError::Tokenizer(format!("{}: cannot encode text: {e}", self.path.display()))
        };
        let mut pre = PreTokenizedString::from(text);
        if let Some(n) = self.inner.get_normalizer() {
            pre.normalize(|s| n.normalize(s)).map_err(fail)?;
        }
        if let Some(p) = self.inner.get_pre_tokenizer() {
            p.pre_tokenize(&mut pre).map_err(fail)?;
        }
        let model = self.inner.get_model();
        pre.tokenize(|s| model.tokenize(s.get())).map_err(fail)?;
        let encoding = pre.into_encoding(None, 0, OffsetType::None).map_err(fail)?;
        Ok(encoding.get_ids().to_vec())
    }

    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>, DataError> {
        let unknown = |id: u32| {
            DataError::Tokenizer(format!(
                "cannot decode token ids: id {id} is outside the vocabulary of {}",
                self.path.display()
            ))
        };
        if let Some(table) = &self.id_bytes {
            let mut out = Vec::with_capacity(ids.len() * 4);
            for &id in ids {
                out.extend_from_slice(table.get(id as usize).ok_or_else(|| unknown(id))?);
            }
            return Ok(out);
        }
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= self.vocab_size) {
            return Err(unknown(id));
        }
        let text = self
            .inner
            .decode(ids, false)
            .map_err(|e| DataError::Tokenizer(format!("cannot decode token ids: {e}")))?;
        Ok(text.into_bytes())
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    pub fn eot_token(&self) -> u32 {
        self.eot
    }
}

/// Every id's bytes for a byte-level tokenizer (its decoder is `ByteLevel`); `None` for any
/// other kind, whose decoding is left to the tokenizer itself. Special tokens decode to
/// their text, as GPT-2's `<|endoftext|>` does.
fn byte_level_table(inner: &HfInner, vocab_size: usize) -> Option<Vec<Vec<u8>>> {
    if !matches!(inner.get_decoder(), Some(DecoderWrapper::ByteLevel(_))) {
        return None;
    }
    let map = char_to_byte();
    let added = inner.get_added_tokens_decoder();
    (0..vocab_size as u32)
        .map(|id| match added.get(&id) {
            Some(t) => Some(t.content.as_bytes().to_vec()),
            None => token_bytes(&inner.id_to_token(id).unwrap_or_default(), &map),
        })
        .collect()
}

/// `"sha256:<hex>"` of a tokenizer file's bytes: how the manifest and the run identify it.
pub fn tokenizer_file_hash(path: &Path) -> Result<String, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex}"))
}
