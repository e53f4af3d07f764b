//! Tokenizers: GPT-2's byte-level BPE (the default, embedded, works offline) or any Hugging
//! Face `tokenizer.json`, such as one trained with `syllabus tokenizer train`.
//!
//! Both encode "ordinary" text: a literal special-token string inside a document (for example
//! `<|endoftext|>`) is encoded as its characters, never as the special token, so data cannot
//! forge document boundaries.

mod bytes;
mod gpt2;
mod hf;
pub mod train;

use std::path::Path;
use std::sync::Arc;

use super::DataError;

pub use gpt2::{EOT_TOKEN, GPT2_TOKENIZER_NAME, GPT2_VOCAB_SIZE};
pub use hf::{tokenizer_file_hash, HF_TOKENIZER_NAME};

/// Cheap to clone (the tables are shared) and safe to use from many threads.
#[derive(Clone)]
pub struct Tokenizer {
    inner: Arc<Backend>,
}

enum Backend {
    Gpt2(gpt2::Gpt2),
    // Boxed: the Hugging Face tokenizer is several times larger than GPT-2's handle.
    HuggingFace(Box<hf::HfTokenizer>),
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenizer({}, vocab {})", self.name(), self.vocab_size())
    }
}

impl Tokenizer {
    /// GPT-2's BPE (OpenAI's `r50k_base`). Builds its tables from the embedded vocabulary
    /// (about 0.2 s in release builds: construct once and clone).
    pub fn gpt2() -> Result<Self, DataError> {
        Ok(Self::wrap(Backend::Gpt2(gpt2::Gpt2::new()?)))
    }

    /// A Hugging Face `tokenizer.json`. Its document separator is the first of
    /// `<|endoftext|>`, `</s>` and `<eos>` in its vocabulary.
    pub fn from_file(path: &Path) -> Result<Self, DataError> {
        let tok = hf::HfTokenizer::load(path)?;
        Ok(Self::wrap(Backend::HuggingFace(Box::new(tok))))
    }

    /// `path` if given, GPT-2 otherwise: what `data.tokenizer` selects.
    pub fn load(path: Option<&Path>) -> Result<Self, DataError> {
        match path {
            Some(p) => Self::from_file(p),
            None => Self::gpt2(),
        }
    }

    fn wrap(backend: Backend) -> Self {
        Tokenizer {
            inner: Arc::new(backend),
        }
    }

    /// Encodes `text` as ordinary text (see the module docs).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, DataError> {
        match self.inner.as_ref() {
            Backend::Gpt2(t) => Ok(t.encode(text)),
            Backend::HuggingFace(t) => t.encode(text),
        }
    }

    /// Decodes ids to text. Token boundaries can split a UTF-8 character, so the bytes may
    /// be invalid: such bytes (and unknown ids) become U+FFFD instead of failing, which is
    /// what sampling and logging want.
    pub fn decode(&self, ids: &[u32]) -> String {
        match self.decode_bytes(ids) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(_) => self.decode_skipping_unknown(ids),
        }
    }

    /// The exact bytes of `ids` (no U+FFFD substitution), or an error naming an id outside the
    /// vocabulary. Evaluation counts text length in UTF-8 bytes from these.
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>, DataError> {
        match self.inner.as_ref() {
            Backend::Gpt2(t) => t.decode_bytes(ids),
            Backend::HuggingFace(t) => t.decode_bytes(ids),
        }
    }

    /// Slow path for ids outside the vocabulary: decode the rest, mark unknown ids.
    fn decode_skipping_unknown(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            match self.decode_bytes(&[id]) {
                Ok(b) => bytes.extend_from_slice(&b),
                Err(_) => bytes.extend_from_slice("\u{FFFD}".as_bytes()),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// One more than the largest token id.
    pub fn vocab_size(&self) -> usize {
        match self.inner.as_ref() {
            Backend::Gpt2(_) => GPT2_VOCAB_SIZE,
            Backend::HuggingFace(t) => t.vocab_size(),
        }
    }

    /// The document separator appended after every document.
    pub fn eot_token(&self) -> u32 {
        match self.inner.as_ref() {
            Backend::Gpt2(_) => EOT_TOKEN,
            Backend::HuggingFace(t) => t.eot_token(),
        }
    }

    /// What the prepared-data manifest records as the tokenizer.
    pub fn name(&self) -> &'static str {
        match self.inner.as_ref() {
            Backend::Gpt2(_) => GPT2_TOKENIZER_NAME,
            Backend::HuggingFace(_) => HF_TOKENIZER_NAME,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ids_and_round_trip() -> Result<(), DataError> {
        let tok = Tokenizer::gpt2()?;
        assert_eq!(tok.encode("Hello world")?, vec![15496, 995]);
        let text = "naïve café — 東京 🚀\n\tend";
        assert_eq!(tok.decode(&tok.encode(text)?), text);
        Ok(())
    }

    #[test]
    fn special_token_text_is_not_special() -> Result<(), DataError> {
        let tok = Tokenizer::gpt2()?;
        let ids = tok.encode("a<|endoftext|>b")?;
        assert!(!ids.contains(&EOT_TOKEN));
        assert_eq!(tok.decode(&ids), "a<|endoftext|>b");
        assert_eq!(tok.decode(&[EOT_TOKEN]), "<|endoftext|>");
        Ok(())
    }

    #[test]
    fn decode_is_lossy_not_failing() -> Result<(), DataError> {
        let tok = Tokenizer::gpt2()?;
        // "🚀" is several byte-level tokens; decoding only the first gives a partial char.
        let ids = tok.encode("🚀")?;
        assert!(ids.len() > 1);
        assert!(tok.decode(&ids[..1]).contains('\u{FFFD}'));
        assert_eq!(tok.decode(&[15496, 999_999]), "Hello\u{FFFD}");
        Ok(())
    }
}
