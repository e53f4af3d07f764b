//! GPT-2's byte-to-character map, which byte-level BPE vocabularies (GPT-2, RoBERTa,
//! GPT-NeoX, Llama 3, and the tokenizers `syllabus tokenizer train` writes) use to store
//! arbitrary bytes as printable characters (Radford et al. 2019, `encoder.py`).

use std::collections::HashMap;

/// Printable Latin-1 bytes stand for themselves; the other 68 bytes are shifted to
/// U+0100 onwards, in byte order.
fn byte_to_char() -> [char; 256] {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut table = ['\0'; 256];
    let mut shifted = 0u32;
    for b in 0..=255u8 {
        table[b as usize] = if printable(b) {
            b as char
        } else {
            shifted += 1;
            char::from_u32(255 + shifted).unwrap_or('\0') // 256..=323: always valid
        };
    }
    table
}

/// The inverse map, used to turn a vocabulary entry back into its bytes.
pub(super) fn char_to_byte() -> HashMap<char, u8> {
    byte_to_char()
        .iter()
        .enumerate()
        .map(|(b, &c)| (c, b as u8))
        .collect()
}

/// The bytes a byte-level vocabulary entry stands for, or `None` if it holds a character
/// outside the map (then the vocabulary is not byte-level).
pub(super) fn token_bytes(token: &str, map: &HashMap<char, u8>) -> Option<Vec<u8>> {
    token.chars().map(|c| map.get(&c).copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_is_a_bijection_matching_gpt2() {
        let t = byte_to_char();
        let inverse = char_to_byte();
        assert_eq!(inverse.len(), 256);
        // Known entries of GPT-2's table: space is 'Ġ' (U+0120), newline 'Ċ' (U+010A).
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'A' as usize], 'A');
        assert_eq!(token_bytes("Ġworld", &inverse), Some(b" world".to_vec()));
        assert_eq!(token_bytes("▁world", &inverse), None);
    }
}
