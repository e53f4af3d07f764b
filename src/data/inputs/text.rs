//! `.txt` and `.jsonl` inputs, plain or gzip/zstd-compressed.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use flate2::read::MultiGzDecoder;
use serde::Deserialize;

use super::discover::txt_source;
use super::{Batch, Batcher, Compression, InputFile, RawDoc, ReadStats, DEFAULT_SOURCE};
use crate::data::DataError;

/// Counts the bytes read from the file on disk, before decompression: progress and ETA for
/// compressed inputs compare these with the file size.
struct CountingReader<R> {
    inner: R,
    count: DiskBytes,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Bytes read from disk so far, shared between a [`CountingReader`] and its caller.
type DiskBytes = Rc<Cell<u64>>;

/// A buffered reader of the decompressed content and the counter of bytes read from disk.
fn open_reader(file: &InputFile) -> Result<(Box<dyn BufRead>, DiskBytes), DataError> {
    let f = File::open(&file.path).map_err(|e| DataError::io(&file.path, e))?;
    let count = Rc::new(Cell::new(0));
    let raw = CountingReader {
        inner: f,
        count: Rc::clone(&count),
    };
    let reader: Box<dyn BufRead> = match file.compression {
        Compression::None => Box::new(BufReader::with_capacity(1 << 20, raw)),
        Compression::Gzip => Box::new(BufReader::with_capacity(1 << 20, MultiGzDecoder::new(raw))),
        Compression::Zstd => {
            // The decoder reads every frame of the stream (not just the first), like zstd -d.
            let decoder =
                zstd::stream::read::Decoder::new(raw).map_err(|e| DataError::io(&file.path, e))?;
            Box::new(BufReader::with_capacity(1 << 20, decoder))
        }
    };
    Ok((reader, count))
}

/// What a read error means for this file: I/O errors of compressed inputs are almost always a
/// corrupt or truncated stream, which the bare decoder message does not say.
fn read_error(file: &InputFile, e: &std::io::Error) -> String {
    match file.compression {
        Compression::None => format!("read error: {e}"),
        Compression::Gzip => format!("gzip stream is corrupt or truncated: {e}"),
        Compression::Zstd => format!("zstd stream is corrupt or truncated: {e}"),
    }
}

pub(super) fn read_txt(
    file: &InputFile,
    mut sink: impl FnMut(Batch) -> Result<(), DataError>,
) -> Result<ReadStats, DataError> {
    let (mut reader, count) = open_reader(file)?;
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::invalid(&file.path, read_error(file, &e)))?;
    let mut text = String::from_utf8(bytes).map_err(|e| DataError::InvalidUtf8 {
        path: file.path.clone(),
        offset: e.utf8_error().valid_up_to() as u64,
        decompressed: file.compression != Compression::None,
    })?;
    if text.starts_with('\u{FEFF}') {
        text.drain(..'\u{FEFF}'.len_utf8());
    }
    let doc = RawDoc {
        text,
        source: txt_source(&file.path),
    };
    sink(Batch {
        docs: vec![doc],
        disk_pos: count.get(),
    })?;
    Ok(ReadStats::default())
}

#[derive(Deserialize)]
struct Record {
    // Option so a missing or null `text` gets our message rather than serde's.
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    source: Option<String>,
}

pub(super) fn read_jsonl(
    file: &InputFile,
    batch_bytes: usize,
    sink: impl FnMut(Batch) -> Result<(), DataError>,
) -> Result<ReadStats, DataError> {
    let (mut reader, count) = open_reader(file)?;
    let mut stats = ReadStats::default();
    let mut batcher = Batcher::new(batch_bytes, sink);
    let mut line = Vec::new();
    let mut line_no = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| DataError::Jsonl {
                path: file.path.clone(),
                line: line_no + 1,
                message: read_error(file, &e),
            })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            stats.blank_lines += 1;
            continue;
        }
        let doc = parse_line(&file.path, line_no, &line)?;
        batcher.push(doc, || count.get())?;
    }
    batcher.finish(count.get())?;
    Ok(stats)
}

fn parse_line(path: &Path, line_no: u64, line: &[u8]) -> Result<RawDoc, DataError> {
    let jsonl_err = |message: String| DataError::Jsonl {
        path: path.to_path_buf(),
        line: line_no,
        message,
    };
    let record: Record = serde_json::from_slice(line).map_err(|e| {
        // serde's own "at line 1 column N" refers to the single line parsed; keep the column.
        let msg = e.to_string();
        let msg = msg.rfind(" at line ").map_or(msg.as_str(), |i| &msg[..i]);
        jsonl_err(format!("invalid JSON at column {}: {msg}", e.column()))
    })?;
    let text = record
        .text
        .ok_or_else(|| jsonl_err("missing string field \"text\"".to_string()))?;
    let source = record
        .source
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SOURCE.to_string());
    Ok(RawDoc { text, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::inputs::{read_docs, Columns, Format};

    #[test]
    fn parse_line_errors_name_the_line() {
        let p = Path::new("f.jsonl");
        let e = parse_line(p, 7, b"{\"text\": 5}")
            .err()
            .map(|e| e.to_string());
        assert!(e
            .as_deref()
            .is_some_and(|m| m.starts_with("f.jsonl:7: invalid JSON")));
        let e = parse_line(p, 3, b"{\"id\": 1}")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("f.jsonl:3: missing string field \"text\"")
        );
        let d = parse_line(p, 1, b"{\"text\":\"hi\",\"extra\":[1]}").ok();
        assert_eq!(d.map(|d| d.source).as_deref(), Some(DEFAULT_SOURCE));
    }

    fn jsonl_lines(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                format!("{{\"text\":\"doc {i}\",\"source\":\"s{}\"}}\n", i % 2).into_bytes()
            })
            .collect()
    }

    fn read_all(path: &Path, compression: Compression) -> Result<Vec<RawDoc>, DataError> {
        let file = InputFile {
            path: path.to_path_buf(),
            format: Format::Jsonl,
            compression,
            disk_bytes: 0,
        };
        let mut docs = Vec::new();
        read_docs(&file, &Columns::default(), 64, |b| {
            docs.extend(b.docs);
            Ok(())
        })?;
        Ok(docs)
    }

    #[test]
    fn multi_frame_zstd_reads_whole_and_truncated_zstd_names_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = jsonl_lines(200);
        let (a, b) = plain.split_at(plain.len() / 2);
        let mut two_frames = zstd::encode_all(a, 3).expect("encode");
        two_frames.extend(zstd::encode_all(b, 3).expect("encode"));
        let path = dir.path().join("c.jsonl.zst");
        std::fs::write(&path, &two_frames).expect("write");
        let docs = read_all(&path, Compression::Zstd).expect("reads both frames");
        assert_eq!(docs.len(), 200);
        assert_eq!(docs[199].text, "doc 199");
        assert_eq!(docs[1].source, "s1");

        let whole = zstd::encode_all(&plain[..], 3).expect("encode");
        std::fs::write(&path, &whole[..whole.len() * 2 / 3]).expect("write");
        let err = read_all(&path, Compression::Zstd)
            .err()
            .map(|e| e.to_string());
        let msg = err.unwrap_or_default();
        assert!(
            msg.starts_with(&format!("{}:", path.display()))
                && msg.contains("zstd stream is corrupt or truncated"),
            "{msg}"
        );
    }
}
