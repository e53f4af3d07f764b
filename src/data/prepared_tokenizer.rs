//! The tokenizer of a prepared directory: GPT-2's, or a `tokenizer.json` copied into the
//! directory at prepare time and identified in the manifest by its SHA-256.

use std::path::Path;

use super::tokenizer::{GPT2_TOKENIZER_NAME, HF_TOKENIZER_NAME};
use super::{tokenizer_file_hash, DataError, Manifest, Tokenizer, EOT_TOKEN, GPT2_VOCAB_SIZE};

/// The copy of a `tokenizer.json` inside a prepared directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// What the manifest says about its tokenizer, checked without reading the file.
pub(crate) fn check_tokenizer_fields(m: &Manifest) -> Result<(), String> {
    match (m.tokenizer.as_str(), &m.tokenizer_hash) {
        (GPT2_TOKENIZER_NAME, None) => {
            if m.vocab_size as usize != GPT2_VOCAB_SIZE || m.eot_token != EOT_TOKEN {
                return Err(format!(
                    "vocab_size {} / eot_token {} do not match GPT-2 ({GPT2_VOCAB_SIZE} / \
                     {EOT_TOKEN})",
                    m.vocab_size, m.eot_token
                ));
            }
            Ok(())
        }
        (HF_TOKENIZER_NAME, Some(hash)) if hash.starts_with("sha256:") => {
            if m.eot_token >= m.vocab_size {
                return Err(format!(
                    "eot_token {} is outside the vocabulary ({})",
                    m.eot_token, m.vocab_size
                ));
            }
            Ok(())
        }
        (HF_TOKENIZER_NAME, _) => Err(format!(
            "tokenizer {HF_TOKENIZER_NAME:?} needs a \"tokenizer_hash\" of the form \
             \"sha256:<hex>\""
        )),
        (name, _) => Err(format!(
            "tokenizer is {name:?}; this build supports {GPT2_TOKENIZER_NAME:?} and \
             {HF_TOKENIZER_NAME:?} (with tokenizer_hash)"
        )),
    }
}

/// Loads the tokenizer of the prepared directory `dir` whose manifest is `m`, checking that
/// the copied file is the one the manifest records and agrees with its vocabulary.
pub fn prepared_tokenizer(dir: &Path, m: &Manifest) -> Result<Tokenizer, DataError> {
    let Some(recorded) = &m.tokenizer_hash else {
        return Tokenizer::gpt2();
    };
    let path = dir.join(TOKENIZER_FILE);
    if !path.is_file() {
        return Err(DataError::invalid(
            dir,
            format!(
                "the manifest names a tokenizer but {TOKENIZER_FILE} is missing; re-run \
                 `syllabus prepare --overwrite`"
            ),
        ));
    }
    let found = tokenizer_file_hash(&path)?;
    if &found != recorded {
        return Err(DataError::invalid(
            &path,
            format!("hash is {found} but the manifest records {recorded}: the file was replaced"),
        ));
    }
    let tok = Tokenizer::from_file(&path)?;
    if tok.vocab_size() != m.vocab_size as usize || tok.eot_token() != m.eot_token {
        return Err(DataError::invalid(
            &path,
            format!(
                "vocabulary {} / separator {} disagree with the manifest ({} / {})",
                tok.vocab_size(),
                tok.eot_token(),
                m.vocab_size,
                m.eot_token
            ),
        ));
    }
    Ok(tok)
}
