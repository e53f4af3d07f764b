//! `prepare` on parquet, zstd and glob inputs: the same documents give bit-identical output in
//! every format, and bad shards fail naming the file (and row or line) without leaving a
//! manifest or final files behind.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use syllabus::data::{load_prepared, prepare, Columns, DataError, PrepareOptions};

/// (text, source) rows; `None` is a null (or, in JSONL, an absent field).
type Row = (Option<String>, Option<String>);

/// Documents of varied length and source, one empty and some without a source.
fn rows(n: usize) -> Vec<Row> {
    (0..n)
        .map(|i| {
            let text = match i {
                7 => String::new(),
                _ => format!("Shard doc {i}: {} river bend.\n", "a long ".repeat(i % 13)),
            };
            let source = (i % 4 != 0).then(|| format!("src{}", i % 3));
            (Some(text), source)
        })
        .collect()
}

fn jsonl(rows: &[Row]) -> Vec<u8> {
    let mut out = Vec::new();
    for (text, source) in rows {
        let mut obj = serde_json::json!({ "id": 1, "text": text });
        if let Some(s) = source {
            obj["source"] = serde_json::json!(s);
        }
        out.extend_from_slice(format!("{obj}\n").as_bytes());
    }
    out
}

/// A parquet file of `rows` (text, source and an INT64 `id` column), in row groups of
/// `group_rows` and pages of at most 5 rows so every reader path (several pages per column,
/// several row groups) is taken.
fn write_parquet(path: &Path, rows: &[Row], group_rows: usize, compression: Compression) {
    let schema = "message doc { OPTIONAL BYTE_ARRAY content (UTF8); \
                  OPTIONAL BYTE_ARRAY origin (UTF8); REQUIRED INT64 id; }";
    let schema = Arc::new(parse_message_type(schema).expect("schema"));
    let props = WriterProperties::builder()
        .set_compression(compression)
        .set_data_page_row_count_limit(5)
        .set_write_batch_size(5)
        .build();
    let file = File::create(path).expect("create parquet");
    let mut writer = SerializedFileWriter::new(file, schema, Arc::new(props)).expect("writer");
    for group in rows.chunks(group_rows) {
        let mut rg = writer.next_row_group().expect("row group");
        for column in 0..2 {
            let cells = group.iter().map(|r| if column == 0 { &r.0 } else { &r.1 });
            let defs: Vec<i16> = cells.clone().map(|c| i16::from(c.is_some())).collect();
            let values: Vec<ByteArray> = cells.flatten().map(|s| s.as_str().into()).collect();
            let mut col = rg.next_column().expect("column").expect("exists");
            col.typed::<ByteArrayType>()
                .write_batch(&values, Some(&defs), None)
                .expect("write strings");
            col.close().expect("close column");
        }
        let ids: Vec<i64> = (0..group.len() as i64).collect();
        let mut col = rg.next_column().expect("column").expect("exists");
        col.typed::<Int64Type>()
            .write_batch(&ids, None, None)
            .expect("write ids");
        col.close().expect("close column");
        rg.close().expect("close row group");
    }
    writer.close().expect("close parquet");
}

/// Byte offset and length of a column chunk (its pages) in a parquet file.
fn column_chunk_range(path: &Path, row_group: usize, column: usize) -> (usize, usize) {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(File::open(path).expect("open")).expect("parquet");
    let chunk = reader
        .metadata()
        .row_group(row_group)
        .column(column)
        .clone();
    let (start, len) = chunk.byte_range();
    (start as usize, len as usize)
}

fn parquet_columns() -> Columns {
    Columns {
        text: "content".to_string(),
        source: Some("origin".to_string()),
    }
}

fn opts(inputs: Vec<PathBuf>, out_dir: &Path, columns: Columns) -> PrepareOptions {
    PrepareOptions {
        inputs,
        val_fraction: 0.25,
        seed: 5,
        out_dir: out_dir.to_path_buf(),
        columns,
        ..PrepareOptions::default()
    }
}

const DATA_FILES: [&str; 4] = ["train.bin", "val.bin", "train.docs", "val.docs"];

fn data_files(dir: &Path) -> Vec<Vec<u8>> {
    DATA_FILES
        .iter()
        .map(|f| std::fs::read(dir.join(f)).expect("read prepared file"))
        .collect()
}

#[test]
fn jsonl_jsonl_zst_and_parquet_prepare_bit_identically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let docs = rows(60);
    std::fs::write(d.join("a.jsonl"), jsonl(&docs)).expect("write");
    // Two zstd frames, split mid-corpus: the reader must go on past the first.
    let (head, tail) = docs.split_at(25);
    let mut zst = zstd::encode_all(&jsonl(head)[..], 3).expect("zstd");
    zst.extend(zstd::encode_all(&jsonl(tail)[..], 19).expect("zstd"));
    std::fs::write(d.join("b.jsonl.zst"), zst).expect("write");
    write_parquet(&d.join("c.parquet"), &docs, 17, Compression::SNAPPY);
    let zstd_level = parquet::basic::ZstdLevel::try_new(3).expect("level");
    write_parquet(
        &d.join("d.parquet"),
        &docs,
        60,
        Compression::ZSTD(zstd_level),
    );

    let mut outputs = Vec::new();
    for (input, columns) in [
        ("a.jsonl", Columns::default()),
        ("b.jsonl.zst", Columns::default()),
        ("c.parquet", parquet_columns()),
        ("d.parquet", parquet_columns()),
    ] {
        let out = d.join(format!("out-{input}"));
        let m = prepare(&opts(vec![d.join(input)], &out, columns)).expect(input);
        assert_eq!(m.skipped.empty_documents, 1, "{input}");
        assert_eq!(m.train.documents + m.val.documents, 59, "{input}");
        assert_eq!(m.sources, ["default", "src1", "src2", "src0"], "{input}");
        outputs.push(data_files(&out));
    }
    assert!(outputs.iter().all(|o| o == &outputs[0]));
    load_prepared(&d.join("out-c.parquet")).expect("parquet output loads");
}

#[test]
fn parquet_without_a_source_column_uses_the_default_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.parquet");
    write_parquet(&path, &rows(30), 30, Compression::UNCOMPRESSED);
    let columns = Columns {
        text: "content".to_string(),
        source: None,
    };
    let m = prepare(&opts(vec![path], &dir.path().join("out"), columns)).expect("prepare");
    assert_eq!(m.sources, ["default"]);
    assert_eq!(m.train.documents + m.val.documents, 29);
}

#[test]
fn train_prepares_parquet_inputs_with_the_configured_columns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write_parquet(&d.join("p.parquet"), &rows(60), 25, Compression::SNAPPY);
    let config = format!(
        "[run]\nname = \"pq\"\nout_dir = \"{run}\"\n\
         [data]\nprepared_dir = \"{prep}\"\ninputs = [\"{input}\"]\nval_fraction = 0.25\n\
         text_column = \"content\"\nsource_column = \"origin\"\n\
         [model]\nvocab_size = 50257\nn_positions = 16\nn_layer = 1\nn_head = 2\nd_model = 16\n\
         [budget]\nsteps = 2\n[schedule]\nwarmup_steps = 1\n[train]\nbatch_size = 2\n\
         [eval]\nmax_blocks = 4\nsample_tokens = 0\ntasks = [\"val\"]\nppl_max_tokens = 64\n",
        run = d.join("run").display(),
        prep = d.join("prepared").display(),
        input = d.join("p.parquet").display(),
    );
    std::fs::write(d.join("pq.toml"), config).expect("write config");
    let out = common::syllabus(&["train", "--config", "pq.toml"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = load_prepared(&d.join("prepared"))
        .expect("prepared")
        .manifest;
    assert_eq!(
        m.train.documents + m.val.documents,
        59,
        "the empty row is skipped"
    );
    for source in ["src0", "src1", "src2", "default"] {
        assert!(m.sources.iter().any(|s| s == source), "{:?}", m.sources);
    }

    let bad = std::fs::read_to_string(d.join("pq.toml"))
        .expect("config")
        .replace("text_column = \"content\"", "text_column = \"\"");
    std::fs::write(d.join("bad.toml"), bad).expect("write config");
    let out = common::syllabus(&["train", "--config", "bad.toml"], d);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("data.text_column is empty"), "{err}");
}

/// Runs prepare into a fresh `out`, expects an error, and checks nothing was left behind.
fn fails_cleanly(inputs: Vec<PathBuf>, out: &Path, columns: Columns) -> String {
    let err = prepare(&opts(inputs, out, columns)).expect_err("must fail");
    let leftovers: Vec<_> = std::fs::read_dir(out)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    err.to_string()
}

#[test]
fn parquet_column_errors_name_the_file_row_and_columns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let path = d.join("p.parquet");
    let mut docs = rows(20);
    docs[13].0 = None;
    write_parquet(&path, &docs, 8, Compression::SNAPPY);
    let p = path.display();

    let msg = fails_cleanly(vec![path.clone()], &d.join("o1"), Columns::default());
    assert_eq!(
        msg,
        format!(
            "{p}: no column \"text\"; the file has columns [\"content\", \"origin\", \"id\"] \
             (choose one with --text-column / --source-column)"
        )
    );
    let msg = fails_cleanly(vec![path.clone()], &d.join("o2"), parquet_columns());
    assert_eq!(
        msg,
        format!("{p}: row 13: the text column \"content\" is null")
    );
    let ids = Columns {
        text: "id".to_string(),
        source: None,
    };
    let msg = fails_cleanly(vec![path.clone()], &d.join("o3"), ids);
    assert_eq!(
        msg,
        format!("{p}: column \"id\" holds INT64 values, not strings")
    );
}

#[test]
fn a_corrupt_parquet_shard_fails_naming_it_and_keeps_the_old_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let good = d.join("shard-0.parquet");
    write_parquet(&good, &rows(40), 40, Compression::UNCOMPRESSED);
    let bad = d.join("shard-1.parquet");
    write_parquet(&bad, &rows(40), 10, Compression::SNAPPY);
    let mut bytes = std::fs::read(&bad).expect("read");
    let (start, len) = column_chunk_range(&bad, 2, 0);

    // Cut off the footer: not a parquet file at all.
    std::fs::write(&bad, &bytes[..bytes.len() - 20]).expect("write");
    let msg = fails_cleanly(
        vec![good.clone(), bad.clone()],
        &d.join("o1"),
        parquet_columns(),
    );
    assert!(msg.starts_with(&format!("{}: ", bad.display())), "{msg}");

    // Garble the text pages of the third row group: the first two are read and tokenized.
    bytes[start..start + len].iter_mut().for_each(|b| *b = 0xA5);
    std::fs::write(&bad, &bytes).expect("write");
    let out = d.join("o2");
    let msg = fails_cleanly(vec![good.clone(), bad.clone()], &out, parquet_columns());
    let expected = format!("{}: row 20: cannot decode", bad.display());
    assert!(msg.starts_with(&expected), "{msg}");

    // Over existing prepared data with --overwrite: the old files stay as they were.
    prepare(&opts(vec![good.clone()], &out, parquet_columns())).expect("good shard");
    let before = data_files(&out);
    let mut again = opts(vec![good, bad.clone()], &out, parquet_columns());
    again.overwrite = true;
    let err = prepare(&again).expect_err("corrupt shard");
    assert!(err.to_string().contains(&bad.display().to_string()));
    assert_eq!(data_files(&out), before);
    load_prepared(&out).expect("old data still complete");
}

#[test]
fn a_truncated_zstd_shard_fails_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // Several zstd blocks (128 KiB each), so the first lines decode before the error.
    let text = jsonl(&rows(4000));
    let whole = zstd::encode_all(&text[..], 3).expect("zstd");
    let path = d.join("c.jsonl.zst");
    std::fs::write(&path, &whole[..whole.len() / 2]).expect("write");
    let msg = fails_cleanly(vec![path.clone()], &d.join("out"), Columns::default());
    let (file_line, rest) = msg.split_once(": ").unwrap_or_default();
    let line = file_line
        .rsplit(':')
        .next()
        .and_then(|l| l.parse::<u64>().ok());
    assert!(
        file_line.starts_with(&path.display().to_string()) && line.is_some_and(|l| l > 1),
        "{msg}"
    );
    assert!(
        rest.starts_with("zstd stream is corrupt or truncated"),
        "{msg}"
    );
}

#[test]
fn glob_patterns_expand_in_sorted_order_and_empty_ones_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let docs = rows(40);
    // Shards in name order hold the corpus in order; written in another order on purpose.
    for (i, chunk) in docs.chunks(10).enumerate().rev() {
        write_parquet(
            &d.join(format!("shard-{i}.parquet")),
            chunk,
            10,
            Compression::SNAPPY,
        );
    }
    std::fs::write(d.join("all.jsonl"), jsonl(&docs)).expect("write");
    let pattern = d.join("shard-*.parquet");
    let m = prepare(&opts(vec![pattern], &d.join("g"), parquet_columns())).expect("glob");
    assert_eq!(m.source_files.len(), 4);
    prepare(&opts(
        vec![d.join("all.jsonl")],
        &d.join("j"),
        Columns::default(),
    ))
    .expect("jsonl");
    assert_eq!(data_files(&d.join("g")), data_files(&d.join("j")));

    let none = d.join("part-*.parquet");
    let err = prepare(&opts(vec![none.clone()], &d.join("n"), parquet_columns()));
    assert!(matches!(&err, Err(DataError::NoMatches { pattern }) if pattern.contains("part-*")));
    assert!(!d.join("n").exists());
}

#[test]
fn cli_reads_quoted_globs_with_column_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for i in 0..3 {
        let chunk: Vec<Row> = rows(30).into_iter().skip(i * 10).take(10).collect();
        write_parquet(
            &d.join(format!("s{i}.PARQUET")),
            &chunk,
            10,
            Compression::SNAPPY,
        );
    }
    let args = [
        "prepare",
        "--input",
        "s*.PARQUET",
        "--out",
        "p",
        "--text-column",
        "content",
        "--source-column",
        "origin",
        "--val-fraction",
        "0.3",
    ];
    let o = common::syllabus(&args, d);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    load_prepared(&d.join("p")).expect("prepared");

    let o = common::syllabus(&["prepare", "--input", "x*.parquet", "--out", "q"], d);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains("no input files match the pattern x*.parquet"),
        "{stderr}"
    );
}
