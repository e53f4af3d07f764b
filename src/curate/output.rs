//! Curated shards: JSONL lines `{"text": ..., "source": ...}`, zstd-compressed or plain. Each
//! shard is written under a `.tmp` name, synced, and renamed when complete, so a final name
//! never holds a half-written file. Shards are named `part-FFFFF-SSSSS.<ext>` (input file F,
//! shard S within it): one input file's output never shares a shard with another's, which is
//! what lets `--resume` discard and redo exactly the unfinished files.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::OutputFormat;
use super::CurateError;

/// One output (or spooled) line.
#[derive(Serialize, Deserialize)]
pub struct Line<'a> {
    pub text: std::borrow::Cow<'a, str>,
    pub source: std::borrow::Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

pub fn extension(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::JsonlZst => "jsonl.zst",
        OutputFormat::Jsonl => "jsonl",
    }
}

enum Sink {
    Plain(BufWriter<File>),
    Zst(zstd::Encoder<'static, BufWriter<File>>),
}

impl Sink {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Plain(w) => w,
            Sink::Zst(w) => w,
        }
    }

    fn finish(self) -> std::io::Result<()> {
        let mut inner = match self {
            Sink::Plain(w) => w,
            Sink::Zst(w) => w.finish()?,
        };
        inner.flush()?;
        inner.get_ref().sync_all()
    }
}

/// Opens `path` for writing in `format`.
fn open_sink(path: &Path, format: OutputFormat, level: i32) -> std::io::Result<Sink> {
    let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
    Ok(match format {
        OutputFormat::Jsonl => Sink::Plain(file),
        OutputFormat::JsonlZst => Sink::Zst(zstd::Encoder::new(file, level)?),
    })
}

/// Writes one file's worth of shards (or the spool: one shard with no size cap).
pub struct ShardWriter {
    dir: PathBuf,
    prefix: String,
    format: OutputFormat,
    level: i32,
    shard_bytes: u64,
    open: Option<(PathBuf, Sink, u64)>,
    next: usize,
    /// Names of the shards completed so far.
    pub finished: Vec<String>,
}

impl ShardWriter {
    pub fn new(
        dir: &Path,
        prefix: String,
        format: OutputFormat,
        level: i32,
        shard_bytes: u64,
    ) -> Self {
        ShardWriter {
            dir: dir.to_path_buf(),
            prefix,
            format,
            level,
            shard_bytes,
            open: None,
            next: 0,
            finished: Vec::new(),
        }
    }

    fn name(&self, index: usize) -> String {
        format!("{}-{index:05}.{}", self.prefix, extension(self.format))
    }

    pub fn write(&mut self, line: &Line) -> Result<(), CurateError> {
        if self.open.is_none() {
            let tmp = self.dir.join(format!("{}.tmp", self.name(self.next)));
            let sink =
                open_sink(&tmp, self.format, self.level).map_err(|e| CurateError::io(&tmp, e))?;
            self.open = Some((tmp, sink, 0));
        }
        let Some((tmp, sink, bytes)) = self.open.as_mut() else {
            unreachable!("opened above")
        };
        let mut buf = serde_json::to_vec(line).map_err(|e| CurateError::io(tmp, e.into()))?;
        buf.push(b'\n');
        sink.writer()
            .write_all(&buf)
            .map_err(|e| CurateError::io(tmp, e))?;
        *bytes += line.text.len() as u64;
        if *bytes >= self.shard_bytes {
            self.close()?;
        }
        Ok(())
    }

    /// Completes the open shard (if any): finish, sync, rename to its final name.
    pub fn close(&mut self) -> Result<(), CurateError> {
        if let Some((tmp, sink, _)) = self.open.take() {
            sink.finish().map_err(|e| CurateError::io(&tmp, e))?;
            let name = self.name(self.next);
            let dest = self.dir.join(&name);
            crate::fsutil::commit_rename(&tmp, &dest).map_err(|e| CurateError::io(&dest, e))?;
            self.finished.push(name);
            self.next += 1;
        }
        Ok(())
    }
}

/// Reads every line of a shard written by [`ShardWriter`] (either format, by extension).
pub fn read_shard(
    path: &Path,
    mut each: impl FnMut(Line) -> Result<(), CurateError>,
) -> Result<(), CurateError> {
    let io = |e| CurateError::io(path, e);
    let file = File::open(path).map_err(io)?;
    let reader: Box<dyn BufRead> = if path.extension().is_some_and(|e| e == "zst") {
        Box::new(BufReader::new(zstd::Decoder::new(file).map_err(io)?))
    } else {
        Box::new(BufReader::new(file))
    };
    for line in reader.lines() {
        let line = line.map_err(io)?;
        let parsed: Line =
            serde_json::from_str(&line).map_err(|e| CurateError::io(path, e.into()))?;
        each(parsed)?;
    }
    Ok(())
}
