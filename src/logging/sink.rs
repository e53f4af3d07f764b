//! The metrics interface the trainer talks to, plus two trivial sinks.

use std::sync::{Arc, Mutex, MutexGuard};

use super::histogram::Histogram;

/// Destination for training metrics.
///
/// Implementations must never block training for long nor panic on I/O
/// problems: metrics are valuable but not worth losing a run over. All methods
/// are therefore infallible; a sink that can fail reports it out of band
/// (see [`super::MetricsLogger::health`]).
pub trait MetricsSink: Send {
    /// Records one scalar (`train/loss`, `train/lr`, ...) at a global step.
    fn scalar(&mut self, tag: &str, value: f64, step: u64);
    /// Records free text (TensorBoard renders it as markdown).
    fn text(&mut self, tag: &str, text: &str, step: u64);
    /// Records a histogram of values (weights, gradients, ...).
    fn histogram(&mut self, tag: &str, hist: &Histogram, step: u64);
    /// Asks the sink to push buffered data towards storage. May be
    /// asynchronous: it does not guarantee the data is on disk on return.
    fn flush(&mut self);
}

/// Lets the trainer hold a `Box<dyn MetricsSink>` chosen at runtime.
impl<S: MetricsSink + ?Sized> MetricsSink for Box<S> {
    fn scalar(&mut self, tag: &str, value: f64, step: u64) {
        (**self).scalar(tag, value, step);
    }
    fn text(&mut self, tag: &str, text: &str, step: u64) {
        (**self).text(tag, text, step);
    }
    fn histogram(&mut self, tag: &str, hist: &Histogram, step: u64) {
        (**self).histogram(tag, hist, step);
    }
    fn flush(&mut self) {
        (**self).flush();
    }
}

/// Discards everything (benchmarks, dry runs, tests that do not care).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl MetricsSink for NullSink {
    fn scalar(&mut self, _tag: &str, _value: f64, _step: u64) {}
    fn text(&mut self, _tag: &str, _text: &str, _step: u64) {}
    fn histogram(&mut self, _tag: &str, _hist: &Histogram, _step: u64) {}
    fn flush(&mut self) {}
}

/// One recorded scalar.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarRecord {
    pub tag: String,
    pub step: u64,
    pub value: f64,
}

/// Everything a [`MemorySink`] has seen, in call order per kind.
#[derive(Debug, Default, Clone)]
pub struct MemoryRecords {
    pub scalars: Vec<ScalarRecord>,
    /// (tag, step, text)
    pub texts: Vec<(String, u64, String)>,
    /// (tag, step, histogram)
    pub histograms: Vec<(String, u64, Histogram)>,
    pub flushes: usize,
}

/// Keeps every metric in memory, for tests of code that emits metrics.
///
/// Clones share the same storage, so a test can hand one clone to the
/// trainer (even boxed as `dyn MetricsSink`) and inspect the other.
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    inner: Arc<Mutex<MemoryRecords>>,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of everything recorded so far.
    pub fn records(&self) -> MemoryRecords {
        self.lock().clone()
    }

    /// All recorded scalars, in call order.
    pub fn scalars(&self) -> Vec<ScalarRecord> {
        self.lock().scalars.clone()
    }

    /// `(step, value)` pairs recorded under `tag`, in call order.
    pub fn series(&self, tag: &str) -> Vec<(u64, f64)> {
        let records = self.lock();
        let matching = records.scalars.iter().filter(|r| r.tag == tag);
        matching.map(|r| (r.step, r.value)).collect()
    }

    /// The most recent value recorded under `tag`.
    pub fn last(&self, tag: &str) -> Option<f64> {
        self.series(tag).last().map(|&(_, v)| v)
    }

    /// Distinct scalar tags, in first-seen order.
    pub fn tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = Vec::new();
        for r in &self.lock().scalars {
            if !tags.contains(&r.tag) {
                tags.push(r.tag.clone());
            }
        }
        tags
    }

    /// A panicking test thread may poison the lock; the records are plain
    /// data and still meaningful, so recover them rather than cascade.
    fn lock(&self) -> MutexGuard<'_, MemoryRecords> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl MetricsSink for MemorySink {
    fn scalar(&mut self, tag: &str, value: f64, step: u64) {
        let record = ScalarRecord {
            tag: tag.to_string(),
            step,
            value,
        };
        self.lock().scalars.push(record);
    }
    fn text(&mut self, tag: &str, text: &str, step: u64) {
        self.lock()
            .texts
            .push((tag.to_string(), step, text.to_string()));
    }
    fn histogram(&mut self, tag: &str, hist: &Histogram, step: u64) {
        self.lock()
            .histograms
            .push((tag.to_string(), step, hist.clone()));
    }
    fn flush(&mut self) {
        self.lock().flushes += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sink_clones_share_records() {
        let probe = MemorySink::new();
        let mut boxed: Box<dyn MetricsSink> = Box::new(probe.clone());
        boxed.scalar("train/loss", 3.0, 1);
        boxed.scalar("train/lr", 1e-3, 1);
        boxed.scalar("train/loss", 2.5, 2);
        boxed.text("config", "hello", 0);
        let hist = Histogram::from_values(&[1.0, 2.0], 2).unwrap();
        boxed.histogram("w", &hist, 2);
        boxed.flush();

        assert_eq!(probe.series("train/loss"), vec![(1, 3.0), (2, 2.5)]);
        assert_eq!(probe.last("train/lr"), Some(1e-3));
        assert_eq!(probe.last("missing"), None);
        assert_eq!(probe.tags(), vec!["train/loss", "train/lr"]);
        let records = probe.records();
        assert_eq!(records.texts, vec![("config".into(), 0, "hello".into())]);
        assert_eq!(records.histograms.len(), 1);
        assert_eq!(records.flushes, 1);
    }

    #[test]
    fn null_sink_accepts_everything() {
        let mut sink: Box<dyn MetricsSink> = Box::new(NullSink);
        sink.scalar("a", f64::NAN, 0);
        sink.text("b", "c", 0);
        sink.flush();
    }
}
