//! `metrics.jsonl`: one JSON object per line, easy to load with pandas/jq.
//!
//! Line shapes (a reader tells them apart by which key is present):
//! - scalar:    `{"step":N,"tag":"train/loss","value":x,"wall_time":t}`;
//!   a non-finite value becomes `"value":null,"nonfinite":"nan"|"inf"|"-inf"`
//!   because JSON has no NaN/inf literals.
//! - text:      `{"step":N,"tag":"config","text":"...","wall_time":t}`
//! - histogram: `{"step":N,"tag":"w","histogram":{"min":..,"max":..,"mean":..,
//!   "std":..,"num":..},"wall_time":t}` (summary statistics only; buckets
//!   live in the TensorBoard file).
//!
//! `wall_time` is Unix seconds as a float. The file is opened in append mode so
//! a resumed run continues the same file, after [`truncate_after`] has dropped what the
//! interrupted run logged past its checkpoint (and a half-written last line).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::histogram::Histogram;

/// File name inside the run directory.
pub const JSONL_FILE_NAME: &str = "metrics.jsonl";

#[derive(Serialize)]
struct Line<'a> {
    step: u64,
    tag: &'a str,
    #[serde(flatten)]
    payload: Payload<'a>,
    wall_time: f64,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Payload<'a> {
    Scalar {
        value: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        nonfinite: Option<&'static str>,
    },
    Text {
        text: &'a str,
    },
    Histogram {
        histogram: HistogramSummary,
    },
}

#[derive(Serialize)]
struct HistogramSummary {
    min: f64,
    max: f64,
    mean: f64,
    std: f64,
    num: f64,
}

/// Keeps the lines of `dir/metrics.jsonl` up to and including `step`, dropping later steps
/// (logged by a run that died after its last checkpoint and will log them again when resumed)
/// and a last line cut short by the crash. Rewritten through a temp file; a missing file is
/// fine.
pub fn truncate_after(dir: &Path, step: u64) -> io::Result<()> {
    let path = dir.join(JSONL_FILE_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let keep = |line: &str| {
        serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
            .is_some_and(|s| s <= step)
    };
    let mut kept = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if line.ends_with('\n') && keep(line.trim_end()) {
            kept.push_str(line);
        }
    }
    if kept.len() == text.len() {
        return Ok(());
    }
    crate::fsutil::write_atomic(&path, kept.as_bytes())
}

/// Appends metric lines to `metrics.jsonl` through a buffer.
pub struct JsonlWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl JsonlWriter {
    /// Opens (creating or appending to) `dir/metrics.jsonl`.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let path = dir.join(JSONL_FILE_NAME);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Self {
            path,
            out: BufWriter::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn scalar(&mut self, tag: &str, value: f64, step: u64, wall_time: f64) -> io::Result<()> {
        let payload = Payload::Scalar {
            value: value.is_finite().then_some(value),
            nonfinite: nonfinite_label(value),
        };
        self.write_line(tag, payload, step, wall_time)
    }

    pub fn text(&mut self, tag: &str, text: &str, step: u64, wall_time: f64) -> io::Result<()> {
        self.write_line(tag, Payload::Text { text }, step, wall_time)
    }

    pub fn histogram(
        &mut self,
        tag: &str,
        h: &Histogram,
        step: u64,
        wall_time: f64,
    ) -> io::Result<()> {
        let histogram = HistogramSummary {
            min: h.min,
            max: h.max,
            mean: h.mean(),
            std: h.std(),
            num: h.num,
        };
        self.write_line(tag, Payload::Histogram { histogram }, step, wall_time)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn write_line(
        &mut self,
        tag: &str,
        payload: Payload<'_>,
        step: u64,
        wall_time: f64,
    ) -> io::Result<()> {
        let line = Line {
            step,
            tag,
            payload,
            wall_time,
        };
        serde_json::to_writer(&mut self.out, &line).map_err(io::Error::from)?;
        self.out.write_all(b"\n")
    }
}

fn nonfinite_label(value: f64) -> Option<&'static str> {
    if value.is_nan() {
        Some("nan")
    } else if value == f64::INFINITY {
        Some("inf")
    } else if value == f64::NEG_INFINITY {
        Some("-inf")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn lines(dir: &Path) -> Vec<Value> {
        let text = std::fs::read_to_string(dir.join(JSONL_FILE_NAME)).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn writes_all_line_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = JsonlWriter::open(dir.path()).unwrap();
        w.scalar("train/loss", 2.5, 10, 100.0).unwrap();
        w.scalar("train/loss", f64::NAN, 11, 101.0).unwrap();
        w.scalar("train/loss", f64::NEG_INFINITY, 12, 102.0)
            .unwrap();
        w.text("note", "a \"quoted\"\nline", 0, 103.0).unwrap();
        let h = Histogram::from_values(&[1.0, 3.0], 2).unwrap();
        w.histogram("w", &h, 5, 104.0).unwrap();
        w.flush().unwrap();

        let l = lines(dir.path());
        assert_eq!(l.len(), 5);
        assert_eq!(
            l[0],
            serde_json::json!({"step":10,"tag":"train/loss","value":2.5,"wall_time":100.0})
        );
        assert_eq!(l[1]["value"], Value::Null);
        assert_eq!(l[1]["nonfinite"], "nan");
        assert_eq!(l[2]["nonfinite"], "-inf");
        assert_eq!(l[3]["text"], "a \"quoted\"\nline");
        assert_eq!(l[4]["histogram"]["mean"], 2.0);
        assert_eq!(l[4]["histogram"]["num"], 2.0);
        assert!(l[0].get("nonfinite").is_none());
    }

    #[test]
    fn reopening_appends() {
        let dir = tempfile::tempdir().unwrap();
        for step in 0..2 {
            let mut w = JsonlWriter::open(dir.path()).unwrap();
            w.scalar("x", 1.0, step, 0.0).unwrap();
            w.flush().unwrap();
        }
        assert_eq!(lines(dir.path()).len(), 2);
    }

    #[test]
    fn truncation_keeps_steps_up_to_the_checkpoint_and_drops_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = JsonlWriter::open(dir.path()).unwrap();
        for step in 1..=5 {
            w.scalar("train/loss", step as f64, step, 0.0).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        let path = dir.path().join(JSONL_FILE_NAME);
        // A crash in the middle of a line, as the killed run left it.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"step\":2,\"tag\":\"train/lo");
        std::fs::write(&path, text).unwrap();

        truncate_after(dir.path(), 3).unwrap();
        let steps: Vec<u64> = lines(dir.path())
            .iter()
            .map(|l| l["step"].as_u64().unwrap())
            .collect();
        assert_eq!(steps, [1, 2, 3]);
        truncate_after(tempfile::tempdir().unwrap().path(), 3).expect("no file is fine");
    }
}
