//! TensorBoard event-file writer built on tensorboard-rs's low-level pieces.
//!
//! We deliberately avoid `tensorboard_rs::SummaryWriter`/`EventFileWriter`:
//! they panic on every I/O error, leave text/histogram unimplemented, and name
//! files `...{pid}.0`, so two writers opened in one directory within the same
//! second overwrite each other. Only the TFRecord framing (`RecordWriter`) and
//! the proto types are reused; file handling and naming are ours.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use protobuf::{Message, RepeatedField};
use tensorboard_proto::event::{Event, SessionLog, SessionLog_SessionStatus};
use tensorboard_proto::summary::{Summary, SummaryMetadata, Summary_Value};
use tensorboard_proto::tensor::TensorProto;
use tensorboard_proto::tensor_shape::TensorShapeProto;
use tensorboard_proto::types::DataType;
use tensorboard_rs::record_writer::RecordWriter;
use tensorboard_rs::summary::{histogram_raw, scalar};

use super::histogram::Histogram;
use super::hparams::{self, HParams, SessionStatus};

/// Version string TensorBoard expects in the first record of every file.
const FILE_VERSION: &str = "brain.Event:2";

/// Plugin that renders `DT_STRING` tensors as markdown.
const TEXT_PLUGIN: &str = "text";

/// Process-wide file counter: combined with the pid it makes names unique even
/// for many writers opened in the same second.
static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Appends `Event` records to one `events.out.tfevents.*` file.
pub struct TensorBoardWriter {
    path: PathBuf,
    records: RecordWriter<BufWriter<File>>,
}

impl TensorBoardWriter {
    /// Creates a fresh event file in `dir` (which must exist) and writes the
    /// file-version header event.
    pub fn create(dir: &Path) -> io::Result<Self> {
        let now = unix_time();
        let (path, file) = create_unique_file(dir, now.trunc() as u64)?;
        let mut writer = Self {
            path,
            records: RecordWriter::new(BufWriter::new(file)),
        };
        let mut header = Event::new();
        header.set_wall_time(now);
        header.set_file_version(FILE_VERSION.to_string());
        writer.write_event(&header)?;
        // Make the file recognisable to a running TensorBoard immediately.
        writer.flush()?;
        Ok(writer)
    }

    /// Marks a restart at `step` (a resumed run): TensorBoard then discards the events of
    /// earlier files at steps >= `step`, logged past the checkpoint by the interrupted run,
    /// instead of drawing them twice.
    pub fn restart_at(&mut self, step: u64, wall_time: f64) -> io::Result<()> {
        let mut log = SessionLog::new();
        log.set_status(SessionLog_SessionStatus::START);
        let mut event = Event::new();
        event.set_wall_time(wall_time);
        event.set_step(step as i64);
        event.set_session_log(log);
        self.write_event(&event)
    }

    /// Path of the event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a scalar. TensorBoard stores scalars as f32; NaN/inf pass
    /// through unchanged (TensorBoard displays them).
    pub fn scalar(&mut self, tag: &str, value: f64, step: u64, wall_time: f64) -> io::Result<()> {
        self.write_summary(scalar(tag, value as f32), step, wall_time)
    }

    /// Writes a text summary readable by TensorBoard's text plugin.
    pub fn text(&mut self, tag: &str, text: &str, step: u64, wall_time: f64) -> io::Result<()> {
        self.write_summary(text_summary(tag, text), step, wall_time)
    }

    /// Writes a histogram in the classic `HistogramProto` form.
    pub fn histogram(
        &mut self,
        tag: &str,
        h: &Histogram,
        step: u64,
        wall_time: f64,
    ) -> io::Result<()> {
        let summary = histogram_raw(
            tag,
            h.min,
            h.max,
            h.num,
            h.sum,
            h.sum_squares,
            &h.bucket_limits,
            &h.bucket_counts,
        );
        self.write_summary(summary, step, wall_time)
    }

    /// Writes the HParams plugin's experiment and session-start summaries.
    pub fn hparams(&mut self, h: &HParams, step: u64, wall_time: f64) -> io::Result<()> {
        let summaries = h
            .summaries(wall_time)
            .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
        for summary in summaries {
            self.write_summary(summary, step, wall_time)?;
        }
        Ok(())
    }

    /// Writes the HParams plugin's session-end summary.
    pub fn session_end(
        &mut self,
        status: SessionStatus,
        step: u64,
        wall_time: f64,
    ) -> io::Result<()> {
        let summary = hparams::session_end(status, wall_time)
            .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
        self.write_summary(summary, step, wall_time)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.records.flush()
    }

    fn write_summary(&mut self, summary: Summary, step: u64, wall_time: f64) -> io::Result<()> {
        let mut event = Event::new();
        event.set_wall_time(wall_time);
        // Steps beyond i64::MAX cannot occur in practice; saturate rather than wrap.
        event.set_step(i64::try_from(step).unwrap_or(i64::MAX));
        event.set_summary(summary);
        self.write_event(&event)
    }

    fn write_event(&mut self, event: &Event) -> io::Result<()> {
        let bytes = event
            .write_to_bytes()
            .map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
        self.records.write(&bytes)
    }
}

/// Builds the same proto as TensorBoard's `text_pb`: a scalar `DT_STRING`
/// tensor tagged with the `text` plugin (empty plugin content == version 0).
pub fn text_summary(tag: &str, text: &str) -> Summary {
    let mut tensor = TensorProto::new();
    tensor.set_dtype(DataType::DT_STRING);
    // No dims == a rank-0 (scalar) tensor, as text_pb produces for one string.
    tensor.set_tensor_shape(TensorShapeProto::new());
    tensor.set_string_val(RepeatedField::from(vec![text.as_bytes().to_vec()]));

    let mut metadata = SummaryMetadata::new();
    metadata
        .mut_plugin_data()
        .set_plugin_name(TEXT_PLUGIN.to_string());

    let mut value = Summary_Value::new();
    value.set_tag(tag.to_string());
    value.set_metadata(metadata);
    value.set_tensor(tensor);

    let mut summary = Summary::new();
    summary.set_value(RepeatedField::from(vec![value]));
    summary
}

/// Opens `events.out.tfevents.{secs:010}.{host}.{pid}.{n}` with `create_new`,
/// bumping `n` if the name is somehow taken, so we never clobber a file.
fn create_unique_file(dir: &Path, secs: u64) -> io::Result<(PathBuf, File)> {
    let host = hostname();
    let pid = std::process::id();
    const ATTEMPTS: usize = 64;
    for _ in 0..ATTEMPTS {
        let n = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("events.out.tfevents.{secs:010}.{host}.{pid}.{n}"));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        ErrorKind::AlreadyExists,
        format!("no free event-file name in {}", dir.display()),
    ))
}

/// Host name for the event-file name; TensorBoard only uses it for display,
/// so any stable, filename-safe string will do.
fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let safe: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if safe.is_empty() {
        "localhost".to_string()
    } else {
        safe
    }
}

/// Seconds since the Unix epoch; a clock before 1970 is reported as 0.
pub(crate) fn unix_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_unique_and_well_formed() {
        let dir = tempfile::tempdir().unwrap();
        let a = TensorBoardWriter::create(dir.path()).unwrap();
        let b = TensorBoardWriter::create(dir.path()).unwrap();
        assert_ne!(a.path(), b.path());
        let name = a.path().file_name().unwrap().to_str().unwrap().to_string();
        let parts: Vec<&str> = name.split('.').collect();
        assert!(name.starts_with("events.out.tfevents."));
        assert_eq!(parts[3].len(), 10, "seconds are zero-padded: {name}");
        assert!(parts.last().unwrap().parse::<u64>().is_ok());
    }

    #[test]
    fn hostname_is_filename_safe() {
        let h = hostname();
        assert!(!h.is_empty());
        assert!(!h.contains('/') && !h.contains(' '));
    }

    #[test]
    fn text_summary_shape() {
        let s = text_summary("notes", "héllo");
        let v = &s.get_value()[0];
        assert_eq!(v.get_tag(), "notes");
        assert_eq!(v.get_metadata().get_plugin_data().get_plugin_name(), "text");
        let t = v.get_tensor();
        assert_eq!(t.get_dtype(), DataType::DT_STRING);
        assert!(t.get_tensor_shape().get_dim().is_empty());
        assert_eq!(t.get_string_val()[0], "héllo".as_bytes());
    }
}
