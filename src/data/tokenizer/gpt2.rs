//! GPT-2 byte-level BPE (OpenAI's `r50k_base`, shipped inside `tiktoken-rs`, so it works
//! offline).

use tiktoken_rs::CoreBPE;

use crate::data::DataError;

/// `<|endoftext|>`: GPT-2's document separator.
pub const EOT_TOKEN: u32 = 50256;
/// 50,000 merges + 256 byte tokens + `<|endoftext|>`.
pub const GPT2_VOCAB_SIZE: usize = 50257;
/// The manifest's name for this tokenizer.
pub const GPT2_TOKENIZER_NAME: &str = "gpt2 (tiktoken r50k_base)";

pub(super) struct Gpt2 {
    bpe: CoreBPE,
}

impl Gpt2 {
    pub fn new() -> Result<Self, DataError> {
        let bpe = tiktoken_rs::r50k_base().map_err(|e| DataError::Tokenizer(e.to_string()))?;
        Ok(Gpt2 { bpe })
    }

    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.bpe.encode_ordinary(text)
    }

    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>, DataError> {
        self.bpe
            .decode_bytes(ids)
            .map_err(|e| DataError::Tokenizer(format!("cannot decode token ids: {e}")))
    }
}
