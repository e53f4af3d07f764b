//! GPT-2 byte-level BPE (OpenAI's `r50k_base`, shipped inside `tiktoken-rs`, so it works
//! offline).

use std::sync::Arc;

use tiktoken_rs::CoreBPE;

use super::DataError;

/// `<|endoftext|>`: GPT-2's document separator.
pub const EOT_TOKEN: u32 = 50256;
/// 50,000 merges + 256 byte tokens + `<|endoftext|>`.
pub const GPT2_VOCAB_SIZE: usize = 50257;

/// Cheap to clone (the BPE tables are shared) and safe to use from many threads.
#[derive(Clone)]
pub struct Gpt2Tokenizer {
    bpe: Arc<CoreBPE>,
}

impl std::fmt::Debug for Gpt2Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gpt2Tokenizer(r50k_base)")
    }
}

impl Gpt2Tokenizer {
    /// Builds the BPE tables from the embedded vocabulary (about 0.2 s in release builds:
    /// construct once and clone).
    pub fn new() -> Result<Self, DataError> {
        let bpe = tiktoken_rs::r50k_base().map_err(|e| DataError::Tokenizer(e.to_string()))?;
        Ok(Gpt2Tokenizer { bpe: Arc::new(bpe) })
    }

    /// Encodes `text` as ordinary text: a literal `<|endoftext|>` inside the text is encoded as
    /// its characters, never as the special token, so data cannot forge document boundaries.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.bpe.encode_ordinary(text)
    }

    /// Decodes ids to text. Token boundaries can split a UTF-8 character, so the byte string
    /// may be invalid: such bytes (and unknown ids) become U+FFFD instead of failing, which is
    /// what sampling and logging want.
    pub fn decode(&self, ids: &[u32]) -> String {
        match self.bpe.decode_bytes(ids) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(_) => self.decode_skipping_unknown(ids),
        }
    }

    /// The exact bytes of `ids` (no U+FFFD substitution), or an error naming an id outside the
    /// vocabulary. Evaluation counts text length in UTF-8 bytes from these.
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>, DataError> {
        self.bpe
            .decode_bytes(ids)
            .map_err(|e| DataError::Tokenizer(format!("cannot decode token ids: {e}")))
    }

    /// Slow path for ids outside the vocabulary: decode the rest, mark unknown ids.
    fn decode_skipping_unknown(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            match self.bpe.decode_bytes(&[id]) {
                Ok(b) => bytes.extend_from_slice(&b),
                Err(_) => bytes.extend_from_slice("\u{FFFD}".as_bytes()),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    pub fn vocab_size(&self) -> usize {
        GPT2_VOCAB_SIZE
    }

    pub fn eot_token(&self) -> u32 {
        EOT_TOKEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ids_and_round_trip() {
        let tok = Gpt2Tokenizer::new().expect("embedded vocabulary loads");
        assert_eq!(tok.encode("Hello world"), vec![15496, 995]);
        let text = "naïve café — 東京 🚀\n\tend";
        assert_eq!(tok.decode(&tok.encode(text)), text);
    }

    #[test]
    fn special_token_text_is_not_special() {
        let tok = Gpt2Tokenizer::new().expect("embedded vocabulary loads");
        let ids = tok.encode("a<|endoftext|>b");
        assert!(!ids.contains(&EOT_TOKEN));
        assert_eq!(tok.decode(&ids), "a<|endoftext|>b");
        assert_eq!(tok.decode(&[EOT_TOKEN]), "<|endoftext|>");
    }

    #[test]
    fn decode_is_lossy_not_failing() {
        let tok = Gpt2Tokenizer::new().expect("embedded vocabulary loads");
        // "🚀" is several byte-level tokens; decoding only the first gives a partial char.
        let ids = tok.encode("🚀");
        assert!(ids.len() > 1);
        assert!(tok.decode(&ids[..1]).contains('\u{FFFD}'));
        assert_eq!(tok.decode(&[15496, 999_999]), "Hello\u{FFFD}");
    }
}
