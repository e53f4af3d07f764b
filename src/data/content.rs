//! The content checksum of the binary data files (token stores from format 2, document
//! indexes always): a CRC32 of every byte after the header, stored in it at `OFF_CONTENT_CRC`.

use std::path::Path;

use crc32fast::Hasher;
use rayon::prelude::*;

use super::DataError;

/// Where the CRC32 of the body is stored.
pub(crate) const OFF_CONTENT_CRC: usize = 40;
/// Body bytes per parallel checksum task: large enough that the per-task overhead and the
/// final in-order combine are negligible, small enough to spread a 50 MB store over 16 cores.
/// A multiple of every token width, so chunk boundaries never split a token.
pub(crate) const CONTENT_CHUNK: usize = 1 << 21;

/// CRC32 of one piece of a body, to be combined in order with [`combine_in_order`].
pub(crate) fn hash_piece(bytes: &[u8]) -> Hasher {
    let mut h = Hasher::new();
    h.update(bytes);
    h
}

/// Combines per-piece hashers, in the order of the pieces, into the CRC32 of their
/// concatenation: exactly `crc32fast::hash` of the whole, however the pieces were scheduled.
pub(crate) fn combine_in_order(pieces: impl IntoIterator<Item = Hasher>) -> u32 {
    let mut whole = Hasher::new();
    for piece in pieces {
        whole.combine(&piece);
    }
    whole.finalize()
}

/// CRC32 of `body`, computed over `CONTENT_CHUNK` pieces in parallel.
pub(crate) fn content_crc(body: &[u8]) -> u32 {
    let pieces: Vec<Hasher> = body.par_chunks(CONTENT_CHUNK).map(hash_piece).collect();
    combine_in_order(pieces)
}

/// The error for a body whose CRC32 differs from the one its header stores.
pub(crate) fn content_mismatch(
    path: &Path,
    kind: &'static str,
    stored: u32,
    computed: u32,
) -> DataError {
    DataError::ContentChecksum {
        path: path.to_path_buf(),
        kind,
        stored,
        computed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_content_crc_equals_the_sequential_crc() {
        // Three full chunks and a partial one, with varied bytes.
        let body: Vec<u8> = (0..3 * CONTENT_CHUNK + 1234)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(content_crc(&body), crc32fast::hash(&body));
        assert_eq!(content_crc(&body[..10]), crc32fast::hash(&body[..10]));
        assert_eq!(content_crc(&[]), crc32fast::hash(&[]));
    }
}
