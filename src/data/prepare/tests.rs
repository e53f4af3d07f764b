//! The split builder with a vocabulary larger than GPT-2's, as a general tokenizer may have.

use super::SplitBuilder;
use crate::data::TokenStore;

#[test]
fn split_builder_writes_u32_ids_for_a_vocabulary_above_65536() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (vocab, eot) = (100_000u32, 99_999u32);
    let mut split = SplitBuilder::create(dir.path(), "s.bin", vocab).expect("create");
    split.push_doc(&[70_000, 5], eot, 0).expect("in range");
    split.push_doc(&[65_536], eot, 1).expect("in range");
    assert_eq!(split.starts, [0, 3]);
    assert_eq!(split.per_source[1].tokens, 2);
    split.writer.finish().expect("finish");
    let store = TokenStore::open(&dir.path().join("s.bin")).expect("open");
    let mut ids = [0u32; 5];
    store.read(0, &mut ids);
    assert_eq!(ids, [70_000, 5, eot, 65_536, eot]);
    assert_eq!(store.vocab_size(), vocab);
}
