//! Fixed-length training blocks over a token store.
//!
//! A block is `block_len = context_len + 1` consecutive tokens (inputs are the first
//! `context_len`, targets the last `context_len`). Block `i` covers tokens
//! `[i * block_len, (i + 1) * block_len)`; the trailing partial block is dropped. Blocks do
//! not overlap, so one pass over all ids is one epoch. Ids depend only on the store and
//! `block_len`, never on a shuffle, so per-block state (a loss ledger) can be keyed on them.

use std::sync::Arc;

use super::{DataError, TokenStore};

#[derive(Debug, Clone)]
pub struct Blocks {
    store: Arc<TokenStore>,
    block_len: usize,
    len: usize,
}

impl Blocks {
    /// Errors if `block_len < 2` (no input/target pair) or the store holds fewer than
    /// `block_len` tokens (zero blocks would make every epoch empty).
    pub fn new(store: Arc<TokenStore>, block_len: usize) -> Result<Self, DataError> {
        if block_len < 2 {
            return Err(DataError::InvalidArgument(format!(
                "block length must be at least 2 (context length + 1), got {block_len}"
            )));
        }
        if store.len() < block_len {
            return Err(DataError::TooFewTokens {
                path: store.path().to_path_buf(),
                tokens: store.len(),
                needed: block_len,
            });
        }
        let len = store.len() / block_len;
        Ok(Blocks {
            store,
            block_len,
            len,
        })
    }

    /// Number of whole blocks.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: construction requires at least one block.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn block_len(&self) -> usize {
        self.block_len
    }

    /// First token position of block `id` in the store (for document/source lookups).
    pub fn start_of(&self, id: usize) -> usize {
        id * self.block_len
    }

    /// Copies block `id` into `out`. Panics if `id >= len()` or `out.len() != block_len()`
    /// (both are caller bugs, not data errors).
    pub fn read(&self, id: usize, out: &mut [u32]) {
        assert!(
            id < self.len,
            "block id {id} out of range ({} blocks)",
            self.len
        );
        assert_eq!(
            out.len(),
            self.block_len,
            "output buffer length must equal block_len"
        );
        self.store.read(id * self.block_len, out);
    }

    pub fn store(&self) -> &TokenStore {
        &self.store
    }

    /// The shared store handle, for building other views over the same data.
    pub fn store_arc(&self) -> &Arc<TokenStore> {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_tile_the_store_and_drop_the_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens: Vec<u32> = (0..23).collect();
        let store =
            TokenStore::create_from(&dir.path().join("s.bin"), 100, &tokens).expect("store");
        let blocks = Blocks::new(Arc::new(store), 5).expect("blocks");
        assert_eq!(blocks.len(), 4);
        let mut out = [0u32; 5];
        blocks.read(3, &mut out);
        assert_eq!(out, [15, 16, 17, 18, 19]);
        assert_eq!(blocks.start_of(3), 15);
        assert!(Blocks::new(blocks.store_arc().clone(), 1).is_err());
    }
}
