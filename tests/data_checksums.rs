//! Content checksums of prepared data: a changed byte in any file is caught by loading the
//! directory and by `syllabus verify`, with the file named; format-1 files (no content
//! checksum) still load.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use syllabus::data::{
    load_prepared, prepare, verify_prepared, DataError, DocIndex, FileStatus, PrepareOptions,
    TokenStore, TokenStoreWriter, EOT_TOKEN, GPT2_VOCAB_SIZE,
};

const VOCAB: u32 = GPT2_VOCAB_SIZE as u32;
const HEADER: usize = 64;

/// A prepared directory of 80 short documents, 20% held out.
fn prepared(root: &Path) -> PathBuf {
    let input = root.join("c.jsonl");
    let mut f = std::fs::File::create(&input).expect("create jsonl");
    for i in 0..80 {
        let text = format!("Document {i}: a river runs past {} old mills.", i * 31);
        let line = serde_json::json!({"source": format!("s{}", i % 2), "text": text});
        writeln!(f, "{line}").expect("write line");
    }
    let out = root.join("prepared");
    prepare(&PrepareOptions {
        inputs: vec![input],
        val_inputs: Vec::new(),
        val_fraction: 0.2,
        seed: 7,
        out_dir: out.clone(),
        overwrite: false,
        ..PrepareOptions::default()
    })
    .expect("prepare");
    out
}

fn syllabus_verify(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_syllabus"))
        .arg("verify")
        .arg(dir)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The `verify` output line about `file` (they start with its path or name it).
fn line_for(out: &str, file: &str) -> String {
    let lines: Vec<&str> = out.lines().filter(|l| l.contains(file)).collect();
    assert_eq!(lines.len(), 1, "one line for {file}: {out}");
    lines[0].to_string()
}

fn edit(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut b = std::fs::read(path).expect("read");
    f(&mut b);
    std::fs::write(path, &b).expect("write");
}

/// Recomputes the header CRC after a header edit, as a foreign writer would.
fn reseal_header(b: &mut [u8]) {
    let crc = crc32fast::hash(&b[..60]);
    b[60..64].copy_from_slice(&crc.to_le_bytes());
}

/// Rewrites a token store as format 1 (earlier builds): version 1, no content checksum.
fn downgrade_store(b: &mut [u8]) {
    b[8..12].copy_from_slice(&1u32.to_le_bytes());
    b[40..44].fill(0);
    reseal_header(b);
}

/// Flips the low bit of the first token: another in-range id (the first token of a document
/// is never EOT), so only the content checksum can notice.
fn change_first_token(b: &mut [u8]) {
    assert_ne!(
        u16::from_le_bytes([b[HEADER], b[HEADER + 1]]) as u32,
        EOT_TOKEN
    );
    b[HEADER] ^= 1;
}

/// `load_prepared` and `syllabus verify` both reject the directory naming `file` and `what`;
/// every other file still verifies.
fn assert_detected(dir: &Path, file: &str, what: &str) {
    let err = load_prepared(dir)
        .expect_err("corrupted directory")
        .to_string();
    assert!(err.contains(file) && err.contains(what), "{err}");
    let o = syllabus_verify(dir);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(line_for(&out, file).contains(what), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.contains(": ok (")).count(),
        4,
        "{out}"
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("1 of 5 files failed verification"),
        "{stderr}"
    );
}

#[test]
fn clean_directory_verifies_ok() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = prepared(root.path());
    let checks = verify_prepared(&dir).expect("verify");
    assert_eq!(checks.len(), 5);
    for c in &checks {
        assert!(matches!(c.status, FileStatus::Ok(_)), "{c}");
    }
    let data = load_prepared(&dir).expect("load");
    let crc = data
        .train
        .content_crc()
        .expect("format 2 has a content checksum");
    assert_eq!(data.train.format_version(), 2);
    let recorded = data.manifest.train.file_checksum.as_deref();
    assert_eq!(recorded, Some(format!("crc32:{crc:08x}").as_str()));
    let o = syllabus_verify(&dir);
    assert!(o.status.success(), "{}", stdout(&o));
    let out = stdout(&o);
    for f in [
        "manifest.json",
        "train.bin",
        "val.bin",
        "train.docs",
        "val.docs",
    ] {
        assert!(line_for(&out, f).contains(": ok ("), "{out}");
    }
    assert!(line_for(&out, "train.bin").contains(&format!("crc32:{crc:08x}")));
}

#[test]
fn changed_token_in_train_bin_is_detected() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = prepared(root.path());
    let path = dir.join("train.bin");
    edit(&path, |b| change_first_token(b));
    let err = TokenStore::open(&path).expect_err("corrupted store");
    assert!(matches!(err, DataError::ContentChecksum { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}: content checksum mismatch (", path.display()))
            && msg.ends_with("the token store is corrupted; re-run `syllabus prepare`"),
        "{msg}"
    );
    assert_detected(&dir, "train.bin", "content checksum mismatch");
}

#[test]
fn changed_token_in_val_bin_is_detected() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = prepared(root.path());
    let path = dir.join("val.bin");
    // The last byte: the high byte of the final EOT (50256 = 0xC450), changed to another id.
    edit(&path, |b| {
        let last = b.len() - 1;
        b[last] = 0x01;
    });
    let err = TokenStore::open(&path)
        .expect_err("corrupted store")
        .to_string();
    assert!(err.contains("val.bin: content checksum mismatch"), "{err}");
    assert_detected(&dir, "val.bin", "content checksum mismatch");
}

#[test]
fn changed_byte_in_doc_index_is_detected() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = prepared(root.path());
    let path = dir.join("train.docs");
    // The last byte of the body: the high byte of the last document's source id.
    edit(&path, |b| {
        let last = b.len() - 1;
        b[last] ^= 0x80;
    });
    let err = DocIndex::open(&path)
        .expect_err("corrupted index")
        .to_string();
    assert!(
        err.contains("train.docs: content checksum mismatch")
            && err.contains("the document index is corrupted"),
        "{err}"
    );
    assert_detected(&dir, "train.docs", "content checksum mismatch");
}

#[test]
fn edited_manifest_field_is_detected() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = prepared(root.path());
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains("\"seed\": 7,"), "{text}");
    std::fs::write(&path, text.replace("\"seed\": 7,", "\"seed\": 8,")).expect("write");
    assert_detected(&dir, "manifest.json", "checksum mismatch");

    // Without its checksum a format-2 manifest is refused too.
    let mut value: serde_json::Value = serde_json::from_str(&text).expect("json");
    value.as_object_mut().expect("object").remove("checksum");
    std::fs::write(&path, value.to_string()).expect("write");
    assert_detected(&dir, "manifest.json", "no \"checksum\" field");
}

/// A store swapped for a valid one of the same length: its own checksums agree, the manifest's
/// record of the content does not.
#[test]
fn manifest_records_each_files_content_checksum() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = prepared(root.path());
    let path = dir.join("val.bin");
    let store = TokenStore::open(&path).expect("open");
    let mut tokens = vec![0u32; store.len()];
    store.read(0, &mut tokens);
    drop(store);
    tokens[0] ^= 1;
    let mut w = TokenStoreWriter::create(&path, VOCAB).expect("writer");
    w.push(&tokens).expect("push");
    w.finish().expect("finish");
    TokenStore::open(&path).expect("a valid store on its own");
    assert_detected(&dir, "val.bin", "but manifest val.file_checksum is crc32:");
}

#[test]
fn format_1_files_still_load_and_verify_reports_them() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = prepared(root.path());
    for f in ["train.bin", "val.bin"] {
        edit(&dir.join(f), |b| downgrade_store(b));
    }
    let store = TokenStore::open(&dir.join("train.bin")).expect("format 1 opens");
    assert_eq!((store.format_version(), store.content_crc()), (1, None));
    // A format-1 manifest: no checksum of its own, none of the files.
    let path = dir.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    let obj = m.as_object_mut().expect("object");
    obj.remove("checksum");
    obj.insert("format_version".into(), 1.into());
    for split in ["train", "val"] {
        let s = obj[split].as_object_mut().expect("split");
        s.remove("file_checksum");
        s.remove("docs_file_checksum");
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&m).expect("json")).expect("write");

    let data = load_prepared(&dir).expect("format 1 directory loads");
    assert_eq!(data.manifest.format_version, 1);
    let o = syllabus_verify(&dir);
    assert!(o.status.success(), "{}", stdout(&o));
    let out = stdout(&o);
    for f in ["manifest.json", "train.bin", "val.bin"] {
        assert!(
            line_for(&out, f).contains("no content checksum (format 1)"),
            "{out}"
        );
    }
    assert!(line_for(&out, "train.docs").contains(": ok ("), "{out}");

    // The range check still runs on a format-1 store.
    edit(&dir.join("val.bin"), |b| {
        b[HEADER..HEADER + 2].copy_from_slice(&60_000u16.to_le_bytes());
    });
    let err = TokenStore::open(&dir.join("val.bin")).expect_err("out of range");
    assert!(
        matches!(err, DataError::TokenOutOfRange { position: 0, .. }),
        "{err}"
    );
    let o = syllabus_verify(&dir);
    assert_eq!(o.status.code(), Some(1));
    assert!(line_for(&stdout(&o), "val.bin").contains("token id 60000 at position 0"));
}

/// The parallel pass over fixed chunks: a bad id past the first chunk is reported at its
/// position in the store, and a changed byte there fails the checksum.
#[test]
fn checks_past_the_first_chunk_report_store_positions() {
    let root = tempfile::tempdir().expect("tempdir");
    let path = root.path().join("big.bin");
    let n = 3_000_000usize; // 6 MB of u16 ids: several chunks
    let tokens: Vec<u32> = (0..n).map(|i| (i * 7919 % 50_000) as u32).collect();
    TokenStore::create_from(&path, VOCAB, &tokens).expect("write and open");
    let at = 2_345_678usize;
    let off = HEADER + 2 * at;
    edit(&path, |b| b[off] ^= 1);
    let msg = TokenStore::open(&path).expect_err("changed").to_string();
    assert!(msg.contains("content checksum mismatch"), "{msg}");
    edit(&path, |b| {
        b[off..off + 2].copy_from_slice(&65_000u16.to_le_bytes());
        let crc = crc32fast::hash(&b[HEADER..]);
        b[40..44].copy_from_slice(&crc.to_le_bytes());
        reseal_header(b);
    });
    let msg = TokenStore::open(&path)
        .expect_err("out of range")
        .to_string();
    assert!(
        msg.contains(&format!("token id 65000 at position {at}")),
        "{msg}"
    );
}

#[test]
fn verify_names_a_missing_file_and_refuses_a_non_directory() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = prepared(root.path());
    std::fs::remove_file(dir.join("val.docs")).expect("rm");
    let o = syllabus_verify(&dir);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(line_for(&out, "val.docs").contains("No such file"), "{out}");
    let o = syllabus_verify(&dir.join("manifest.json"));
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("not a directory"), "{stderr}");
}
