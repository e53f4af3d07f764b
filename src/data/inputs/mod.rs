//! Finding input files and reading documents out of them.
//!
//! Formats, chosen by file name (case-insensitive):
//! - `.txt`: the whole file is one document; its source is the file stem. A leading UTF-8 BOM
//!   is dropped; invalid UTF-8 is an error naming the byte offset (never replaced: silently
//!   altering training text is worse than stopping).
//! - `.jsonl`: one JSON object per line with a string `text` field and an optional string
//!   `source` field (other fields are ignored). Without `source` (or with an empty one) the
//!   source is `"default"`, not the file stem, so shards of one unlabeled corpus share a
//!   source. Malformed JSON, invalid UTF-8 or a missing `text` is an error `file:line: ...`.
//!   Blank lines are skipped and counted.
//! - `.txt.gz` / `.jsonl.gz`: the same, gzip-compressed (multi-member streams are read whole).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use serde::Deserialize;

use super::DataError;

/// Source name for JSONL documents without a `source` field.
pub const DEFAULT_SOURCE: &str = "default";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Txt,
    Jsonl,
}

#[derive(Clone, Debug)]
pub(crate) struct InputFile {
    pub path: PathBuf,
    pub format: Format,
    pub gz: bool,
}

/// One document as read, before tokenization. `text` may be empty (the caller skips it).
pub(crate) struct RawDoc {
    pub text: String,
    pub source: String,
}

/// Counts that the reader, not the caller, can see.
#[derive(Default)]
pub(crate) struct ReadStats {
    pub blank_lines: u64,
}

/// Expands files and directories (recursively, sorted by path; hidden entries skipped) into
/// input files, keeping the order of `inputs`. Unsupported extensions are errors.
pub(crate) fn discover(inputs: &[PathBuf]) -> Result<Vec<InputFile>, DataError> {
    let mut files = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => DataError::MissingInput {
                path: input.clone(),
            },
            _ => DataError::io(input, e),
        })?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(input, &mut found)?;
            found.sort();
            for path in found {
                files.push(classify(path)?);
            }
        } else {
            files.push(classify(input.clone())?);
        }
    }
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let path = entry.path();
        // Dot-files (.DS_Store, .gitkeep, editor swap files) are never corpus data.
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        // metadata() follows symlinks, so linked files and directories are included.
        let meta = std::fs::metadata(&path).map_err(|e| DataError::io(&path, e))?;
        if meta.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn classify(path: PathBuf) -> Result<InputFile, DataError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let (stem, gz) = match name.strip_suffix(".gz") {
        Some(s) => (s.to_string(), true),
        None => (name, false),
    };
    let format = if stem.ends_with(".txt") {
        Format::Txt
    } else if stem.ends_with(".jsonl") {
        Format::Jsonl
    } else {
        return Err(DataError::UnsupportedExtension { path });
    };
    Ok(InputFile { path, format, gz })
}

/// Source name of a `.txt` document: the file name without `.txt` / `.txt.gz`.
fn txt_source(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lower = name.to_lowercase();
    let cut = if lower.ends_with(".txt.gz") {
        7
    } else {
        4 // classify() guaranteed a `.txt` suffix
    };
    name.len()
        .checked_sub(cut)
        .and_then(|end| name.get(..end))
        .unwrap_or(&name)
        .to_string()
}

fn open_reader(file: &InputFile) -> Result<Box<dyn BufRead>, DataError> {
    let f = File::open(&file.path).map_err(|e| DataError::io(&file.path, e))?;
    Ok(if file.gz {
        Box::new(BufReader::with_capacity(1 << 20, MultiGzDecoder::new(f)))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, f))
    })
}

/// Reads `file`, handing documents to `sink` in batches of roughly `batch_bytes` of text so
/// the caller can tokenize a batch in parallel while memory stays bounded.
pub(crate) fn read_docs(
    file: &InputFile,
    batch_bytes: usize,
    mut sink: impl FnMut(Vec<RawDoc>) -> Result<(), DataError>,
) -> Result<ReadStats, DataError> {
    let reader = open_reader(file)?;
    match file.format {
        Format::Txt => {
            sink(vec![read_txt(file, reader)?])?;
            Ok(ReadStats::default())
        }
        Format::Jsonl => read_jsonl(file, reader, batch_bytes, sink),
    }
}

fn read_txt(file: &InputFile, mut reader: Box<dyn BufRead>) -> Result<RawDoc, DataError> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::io(&file.path, e))?;
    let mut text = String::from_utf8(bytes).map_err(|e| DataError::InvalidUtf8 {
        path: file.path.clone(),
        offset: e.utf8_error().valid_up_to() as u64,
        decompressed: file.gz,
    })?;
    if text.starts_with('\u{FEFF}') {
        text.drain(..'\u{FEFF}'.len_utf8());
    }
    Ok(RawDoc {
        text,
        source: txt_source(&file.path),
    })
}

#[derive(Deserialize)]
struct Record {
    // Option so a missing or null `text` gets our message rather than serde's.
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    source: Option<String>,
}

fn read_jsonl(
    file: &InputFile,
    mut reader: Box<dyn BufRead>,
    batch_bytes: usize,
    mut sink: impl FnMut(Vec<RawDoc>) -> Result<(), DataError>,
) -> Result<ReadStats, DataError> {
    let mut stats = ReadStats::default();
    let mut batch = Vec::new();
    let mut batch_len = 0usize;
    let mut line = Vec::new();
    let mut line_no = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| DataError::io(&file.path, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            stats.blank_lines += 1;
            continue;
        }
        let doc = parse_line(&file.path, line_no, &line)?;
        batch_len += doc.text.len();
        batch.push(doc);
        if batch_len >= batch_bytes {
            sink(std::mem::take(&mut batch))?;
            batch_len = 0;
        }
    }
    if !batch.is_empty() {
        sink(batch)?;
    }
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

    #[test]
    fn classify_by_extension() {
        let c = |p: &str| classify(PathBuf::from(p)).map(|f| (f.format, f.gz));
        assert_eq!(c("a/B.TXT").ok(), Some((Format::Txt, false)));
        assert_eq!(c("x.jsonl.gz").ok(), Some((Format::Jsonl, true)));
        assert!(c("x.json").is_err());
        assert!(c("x.gz").is_err());
        assert_eq!(txt_source(Path::new("d/Moby.Dick.txt.gz")), "Moby.Dick");
    }

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
}
