//! Token store, document index, blocks and `prepare` behaviour, end to end on temp files.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use syllabus::data::{
    is_prepared, load_prepared, prepare, unigram_entropy, Blocks, DataError, PrepareOptions,
    TokenStore, TokenStoreWriter, Tokenizer, EOT_TOKEN, GPT2_VOCAB_SIZE,
};

const VOCAB: u32 = GPT2_VOCAB_SIZE as u32;

fn opts(inputs: Vec<PathBuf>, out_dir: &Path) -> PrepareOptions {
    PrepareOptions {
        inputs,
        val_inputs: Vec::new(),
        val_fraction: 0.2,
        seed: 1,
        out_dir: out_dir.to_path_buf(),
        overwrite: false,
        ..PrepareOptions::default()
    }
}

fn write_jsonl(path: &Path, texts: &[String]) {
    let mut f = std::fs::File::create(path).expect("create jsonl");
    for (i, t) in texts.iter().enumerate() {
        let line = serde_json::json!({"id": i, "source": format!("s{}", i % 3), "text": t});
        writeln!(f, "{line}").expect("write line");
    }
}

fn corpus(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "Document number {i}: the quick brown fox {} jumps.",
                i * 7919
            )
        })
        .collect()
}

/// Splits a store's tokens at EOT and decodes each document.
fn decode_docs(tok: &Tokenizer, store: &TokenStore) -> Vec<String> {
    let mut all = vec![0u32; store.len()];
    store.read(0, &mut all);
    assert_eq!(all.last(), Some(&EOT_TOKEN), "stores end with EOT");
    all[..all.len() - 1]
        .split(|&t| t == EOT_TOKEN)
        .map(|ids| tok.decode(ids))
        .collect()
}

fn write_store(path: &Path, tokens: &[u32]) {
    let mut w = TokenStoreWriter::create(path, VOCAB).expect("writer");
    w.push(tokens).expect("push");
    assert_eq!(w.finish().expect("finish"), tokens.len() as u64);
}

fn open_err(path: &Path) -> String {
    TokenStore::open(path).expect_err("must fail").to_string()
}

#[test]
fn encode_store_decode_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tok = Tokenizer::gpt2().expect("tokenizer");
    let docs = [
        "Hello world.",
        "naïve café — 東京 🚀 Ünïcödé\n\ttabs and\r\nCRLF",
        "a literal <|endoftext|> stays text",
    ];
    let path = dir.path().join("train.bin");
    let mut w = TokenStoreWriter::create(&path, VOCAB).expect("writer");
    for d in &docs {
        w.push(&tok.encode(d).expect("encodes")).expect("push");
        w.push(&[EOT_TOKEN]).expect("push eot");
    }
    let n = w.finish().expect("finish");
    assert!(!dir.path().join("train.bin.tmp").exists());
    let store = TokenStore::open(&path).expect("open");
    assert_eq!(store.len() as u64, n);
    assert_eq!(store.vocab_size(), VOCAB);
    assert_eq!(store.path(), path.as_path());
    // GPT-2 ids fit u16: 64-byte header + 2 bytes per token.
    let size = std::fs::metadata(&path).expect("stat").len();
    assert_eq!(size, 64 + 2 * n);
    assert_eq!(decode_docs(&tok, &store), docs);
    assert_eq!(store.get(store.len() - 1), EOT_TOKEN);
}

#[test]
fn header_corruption_and_truncation_are_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.bin");
    write_store(&good, &[1, 2, 3, 4, 5]);
    let bytes = std::fs::read(&good).expect("read");
    let variant = |name: &str, edit: &dyn Fn(&mut Vec<u8>)| {
        let p = dir.path().join(name);
        let mut b = bytes.clone();
        edit(&mut b);
        std::fs::write(&p, &b).expect("write");
        let msg = open_err(&p);
        assert!(
            msg.contains(&p.display().to_string()),
            "names the path: {msg}"
        );
        msg
    };
    let magic = variant("magic.bin", &|b| b[2] ^= 0xff);
    assert!(magic.contains("not a syllabus token store"), "{magic}");
    let crc = variant("crc.bin", &|b| b[24] ^= 0x01); // token_count's low byte
    assert!(
        crc.contains("header checksum mismatch: file corrupted"),
        "{crc}"
    );
    let reserved = variant("reserved.bin", &|b| b[44] = 9);
    assert!(reserved.contains("header checksum mismatch"), "{reserved}");
    // A well-formed header from a future version (valid checksum) gets a version message.
    let version = variant("version.bin", &|b| {
        b[8..12].copy_from_slice(&3u32.to_le_bytes());
        let crc = crc32fast::hash(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
    });
    assert!(
        version.contains("unsupported format version 3 (this build supports versions 1 to 2)"),
        "{version}"
    );
    let trunc = variant("trunc.bin", &|b| {
        b.pop();
    });
    assert!(
        trunc.contains("truncated: expected 74 bytes, found 73"),
        "{trunc}"
    );
    let short = variant("short.bin", &|b| b.truncate(20));
    assert!(
        short.contains("truncated: expected 64 bytes, found 20"),
        "{short}"
    );
    let missing = open_err(&dir.path().join("nope.bin"));
    assert!(missing.contains("nope.bin"), "{missing}");
}

#[test]
fn body_token_out_of_range_is_detected_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("s.bin");
    write_store(&p, &[1, 2, 3]);
    let mut b = std::fs::read(&p).expect("read");
    b[66..68].copy_from_slice(&60_000u16.to_le_bytes()); // token 1 := 60000 >= 50257
    std::fs::write(&p, &b).expect("write");
    let msg = open_err(&p);
    assert!(msg.contains("content checksum mismatch"), "{msg}");
    // With both checksums made to match (a foreign writer), the range check still catches it.
    let crc = crc32fast::hash(&b[64..]);
    b[40..44].copy_from_slice(&crc.to_le_bytes());
    let crc = crc32fast::hash(&b[..60]);
    b[60..64].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&p, &b).expect("write");
    let msg = open_err(&p);
    assert!(msg.contains("token id 60000 at position 1"), "{msg}");
}

#[test]
fn val_split_is_by_document_disjoint_and_deterministic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let texts = corpus(300);
    let input = dir.path().join("c.jsonl");
    write_jsonl(&input, &texts);
    let tok = Tokenizer::gpt2().expect("tokenizer");
    let split = |out: &str, seed: u64| {
        let out = dir.path().join(out);
        let mut o = opts(vec![input.clone()], &out);
        o.seed = seed;
        let m = prepare(&o).expect("prepare");
        let data = load_prepared(&out).expect("load");
        assert_eq!(data.manifest, m);
        let train = decode_docs(&tok, &data.train);
        let val = decode_docs(&tok, &data.val);
        assert_eq!(train.len() as u64, m.train.documents);
        assert_eq!(data.val_docs.len() as u64, m.val.documents);
        (
            train,
            val,
            std::fs::read(out.join("val.bin")).expect("read"),
        )
    };
    let (train, val, val_bytes) = split("a", 1);
    let t: HashSet<_> = train.iter().collect();
    let v: HashSet<_> = val.iter().collect();
    assert!(t.is_disjoint(&v), "no document in both splits");
    assert_eq!(t.len() + v.len(), texts.len(), "every document kept once");
    assert!(
        (30..90).contains(&val.len()),
        "about 20% held out: {}",
        val.len()
    );
    // Order inside each split follows the input order.
    let order: Vec<&String> = texts.iter().filter(|d| t.contains(d)).collect();
    assert_eq!(train.iter().collect::<Vec<_>>(), order);

    let (train2, _, val_bytes2) = split("b", 1);
    assert_eq!(train, train2);
    assert_eq!(val_bytes, val_bytes2, "same seed, same bytes");
    let (_, val3, _) = split("c", 2);
    assert_ne!(val, val3, "another seed, another split");
}

#[test]
fn doc_index_maps_tokens_to_sources() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("c.jsonl");
    write_jsonl(&input, &corpus(60));
    let out = dir.path().join("out");
    let mut o = opts(vec![input], &out);
    o.val_fraction = 0.5;
    let m = prepare(&o).expect("prepare");
    assert_eq!(m.sources, vec!["s0", "s1", "s2"]);
    let data = load_prepared(&out).expect("load");
    let (store, docs) = (&data.train, &data.train_docs);
    for i in 0..docs.len() {
        let (s, e) = (docs.doc_start(i), docs.doc_end(i));
        assert_eq!(store.get(e - 1), EOT_TOKEN);
        assert_eq!(docs.source_of_token(s), docs.doc_source(i));
        assert_eq!(docs.source_of_token(e - 1), docs.doc_source(i));
    }
    let per: u64 = m.train.per_source.iter().map(|s| s.tokens).sum();
    assert_eq!(per, store.len() as u64);
}

#[test]
fn malformed_jsonl_reports_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"text\": \"ok\"}\n\n{\"text\": \"unclosed\"\n").expect("write");
    let err = prepare(&opts(vec![bad.clone()], &dir.path().join("o1"))).expect_err("bad json");
    assert!(matches!(err, DataError::Jsonl { line: 3, .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}:3: ", bad.display())),
        "{err}"
    );

    let no_text = dir.path().join("no_text.jsonl");
    std::fs::write(&no_text, "{\"text\": \"ok\"}\n{\"body\": \"x\"}\n").expect("write");
    let err = prepare(&opts(vec![no_text.clone()], &dir.path().join("o2"))).expect_err("no text");
    let expected = format!("{}:2: missing string field \"text\"", no_text.display());
    assert_eq!(err.to_string(), expected);
    // Failed runs leave no output directory behind.
    assert!(!dir.path().join("o1").exists() && !dir.path().join("o2").exists());
}

#[test]
fn refuses_to_overwrite_without_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("c.jsonl");
    write_jsonl(&input, &corpus(50));
    let out = dir.path().join("out");
    let mut o = opts(vec![input], &out);
    prepare(&o).expect("first prepare");
    assert!(is_prepared(&out));
    let before = std::fs::read(out.join("train.bin")).expect("read");
    o.seed = 99;
    let err = prepare(&o).expect_err("must refuse");
    let msg = err.to_string();
    assert!(
        msg.contains("refusing to overwrite prepared data in"),
        "{msg}"
    );
    assert!(msg.contains("--overwrite"), "{msg}");
    assert_eq!(std::fs::read(out.join("train.bin")).expect("read"), before);
    o.overwrite = true;
    let m = prepare(&o).expect("overwrite allowed");
    assert_eq!(m.seed, 99);
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .expect("ls")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temp files left");
}

#[test]
fn txt_gz_directories_and_val_inputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).expect("mkdir");
    std::fs::write(tree.join("b.txt"), "Second book.").expect("write");
    std::fs::write(tree.join("empty.txt"), "  \n").expect("write");
    std::fs::write(tree.join(".hidden"), "ignored").expect("write");
    let gz = std::fs::File::create(tree.join("sub/a.txt.gz")).expect("create");
    let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::default());
    enc.write_all("First book, gzipped.".as_bytes())
        .expect("gz");
    enc.finish().expect("gz finish");
    let val = dir.path().join("val.jsonl");
    std::fs::write(
        &val,
        "{\"text\": \"Second book.\"}\n{\"text\": \"held out\"}\n",
    )
    .expect("write");
    let out = dir.path().join("out");
    let mut o = opts(vec![tree], &out);
    o.val_inputs = vec![val];
    let m = prepare(&o).expect("prepare");
    assert_eq!(m.sources, vec!["b", "a", "default"]); // sorted walk: b.txt, empty.txt, sub/
    assert_eq!(m.skipped.empty_documents, 1);
    assert_eq!((m.train.documents, m.val.documents), (2, 2));
    assert_eq!(m.val_split, "files");
    assert_eq!(m.val_documents_also_in_train, 1);
    let tok = Tokenizer::gpt2().expect("tokenizer");
    let data = load_prepared(&out).expect("load");
    assert_eq!(
        decode_docs(&tok, &data.train),
        ["Second book.", "First book, gzipped."]
    );
}

#[test]
fn input_errors_are_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let err = |inputs: Vec<PathBuf>| prepare(&opts(inputs, &out)).expect_err("fails").to_string();
    assert!(err(vec![]).contains("no input files"));
    let missing = dir.path().join("missing.txt");
    assert!(err(vec![missing.clone()]).contains(&missing.display().to_string()));
    let csv = dir.path().join("x.csv");
    std::fs::write(&csv, "a,b").expect("write");
    let msg = err(vec![csv]);
    assert!(
        msg.contains("x.csv") && msg.contains("unsupported input file type"),
        "{msg}"
    );
    let latin1 = dir.path().join("l.txt");
    std::fs::write(&latin1, b"caf\xe9 au lait").expect("write");
    assert!(err(vec![latin1]).contains("invalid UTF-8 at byte offset 3"));
    let empty = dir.path().join("e.jsonl");
    std::fs::write(&empty, "\n{\"text\": \"\"}\n").expect("write");
    assert!(err(vec![empty]).contains("no documents"));
    assert!(!out.exists(), "nothing created on error");
}

#[test]
fn load_prepared_detects_mismatched_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("c.jsonl");
    write_jsonl(&input, &corpus(40));
    let out = dir.path().join("out");
    prepare(&opts(vec![input], &out)).expect("prepare");
    // A valid store that does not match the manifest.
    std::fs::remove_file(out.join("val.bin")).expect("rm");
    write_store(&out.join("val.bin"), &[1, EOT_TOKEN]);
    let msg = load_prepared(&out).expect_err("mismatch").to_string();
    assert!(
        msg.contains("val.bin") && msg.contains("inconsistent"),
        "{msg}"
    );
    let msg = load_prepared(dir.path())
        .expect_err("no manifest")
        .to_string();
    assert!(msg.contains("not a prepared data directory"), "{msg}");
}

#[test]
fn corpus_smaller_than_one_block_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("tiny.bin");
    write_store(&p, &[5; 10]);
    let store = Arc::new(TokenStore::open(&p).expect("open"));
    let err = Blocks::new(store.clone(), 65).expect_err("too small");
    let msg = err.to_string();
    assert!(
        msg.contains("holds 10 tokens but one block needs 65"),
        "{msg}"
    );
    let blocks = Blocks::new(store, 10).expect("exactly one block");
    assert_eq!((blocks.len(), blocks.block_len()), (1, 10));
}

#[test]
fn unigram_entropy_of_uniform_four_is_ln4() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("u.bin");
    let tokens: Vec<u32> = (0..4000).map(|i| [3, 17, 256, EOT_TOKEN][i % 4]).collect();
    write_store(&p, &tokens);
    let h = unigram_entropy(&TokenStore::open(&p).expect("open"));
    assert!((h - 4f64.ln()).abs() < 1e-12, "{h}");
}

/// The corpus shipped in `data/default/` must prepare cleanly: it is what a fresh checkout
/// trains on.
#[test]
fn embedded_default_corpus_prepares() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/default");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut o = opts(vec![root.join("train.jsonl.gz")], &dir.path().join("out"));
    o.val_inputs = vec![root.join("val.jsonl.gz")];
    let t = std::time::Instant::now();
    let m = prepare(&o).expect("prepare embedded corpus");
    eprintln!(
        "embedded corpus: {:.2} s, train {} docs / {} tokens, val {} docs / {} tokens, sources {:?}",
        t.elapsed().as_secs_f64(),
        m.train.documents,
        m.train.tokens,
        m.val.documents,
        m.val.tokens,
        m.sources
    );
    assert!(m.train.tokens > 900_000 && m.val.tokens > 60_000, "{m:?}");
    assert_eq!(m.val_documents_also_in_train, 0);
    let data = load_prepared(&dir.path().join("out")).expect("load");
    eprintln!(
        "unigram entropy: train {:.4}, val {:.4} nats",
        unigram_entropy(&data.train),
        unigram_entropy(&data.val)
    );
}
