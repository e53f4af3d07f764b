//! `MetricsLogger`: the production sink, writing TensorBoard + JSONL on a
//! background thread so that disk latency never stalls a training step.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::histogram::Histogram;
use super::hparams::{self, HParams, SessionStatus};
use super::jsonl::{truncate_after, JsonlWriter};
use super::sink::MetricsSink;
use super::tensorboard::{unix_time, TensorBoardWriter};
use super::worker::{panic_message, writer_thread, Metric, MetricValue, Record, Shared, Writers};
use super::LoggingError;

/// Queue capacity. Far above any sane logging rate (a few dozen records per
/// step); when full, records are dropped rather than blocking training.
const QUEUE_CAPACITY: usize = 1 << 16;

/// Which backends a [`MetricsLogger`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggerOptions {
    pub tensorboard: bool,
    pub jsonl: bool,
    /// A resumed run's checkpoint step: lines logged after it are dropped from
    /// `metrics.jsonl`, and the new TensorBoard file tells TensorBoard to drop them too.
    pub resumed_at: Option<u64>,
}

impl Default for LoggerOptions {
    fn default() -> Self {
        Self {
            tensorboard: true,
            jsonl: true,
            resumed_at: None,
        }
    }
}

/// Writes metrics to TensorBoard event files and/or `metrics.jsonl` in a run
/// directory, from one background thread.
///
/// Never panics and never blocks on I/O in the calling thread: the first I/O
/// error (or panic) in the writer thread is recorded, the thread stops, and
/// later records are silently discarded. Poll [`health`](Self::health) to
/// warn the user once.
pub struct MetricsLogger {
    tx: Option<SyncSender<Record>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl MetricsLogger {
    /// Creates `run_dir` if needed, opens the enabled outputs synchronously
    /// (so a bad path is reported here, not later) and starts the writer.
    pub fn open(run_dir: &Path, opts: LoggerOptions) -> Result<Self, LoggingError> {
        let io_err = |source| LoggingError::Io {
            path: run_dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(run_dir).map_err(io_err)?;
        let mut tb = opts.tensorboard.then(|| TensorBoardWriter::create(run_dir));
        if let (Some(Ok(tb)), Some(step)) = (&mut tb, opts.resumed_at) {
            tb.restart_at(step + 1, unix_time()).map_err(io_err)?;
        }
        let tb = tb.transpose().map_err(io_err)?;
        if let (true, Some(step)) = (opts.jsonl, opts.resumed_at) {
            truncate_after(run_dir, step).map_err(io_err)?;
        }
        let jsonl = opts.jsonl.then(|| JsonlWriter::open(run_dir));
        let jsonl = jsonl.transpose().map_err(io_err)?;

        let (tx, rx) = mpsc::sync_channel(QUEUE_CAPACITY);
        let shared = Arc::new(Shared::default());
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("syllabus-metrics".into())
            .spawn(move || writer_thread(rx, Writers { tb, jsonl }, &thread_shared))
            .map_err(LoggingError::Spawn)?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            shared,
        })
    }

    /// The first failure of the writer thread, if any. Once `Some`, nothing
    /// more is being written.
    pub fn health(&self) -> Option<String> {
        if self.shared.failed.load(Ordering::Acquire) {
            self.shared.failure()
        } else {
            None
        }
    }

    /// The run's hyperparameters for TensorBoard's HParams dashboard (TensorBoard only).
    pub fn hparams(&mut self, h: HParams, step: u64) {
        self.send_metric(
            hparams::SESSION_START_TAG,
            step,
            MetricValue::HParams(Box::new(h)),
        );
    }

    /// How the run's session ended, for the HParams dashboard (TensorBoard only; write it
    /// once per run, see [`hparams`](super::hparams)).
    pub fn session_end(&mut self, status: SessionStatus, step: u64) {
        let value = MetricValue::SessionEnd(status);
        self.send_metric(hparams::SESSION_END_TAG, step, value);
    }

    /// Records discarded because the queue was full (writer too slow).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Flushes and waits up to `timeout` until everything queued so far is
    /// handed to the OS. Returns false on timeout or if the writer has failed.
    /// Useful before a checkpoint or when a test reads the files mid-run.
    pub fn flush_and_wait(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (ack_tx, ack_rx) = mpsc::channel();
        self.send(Record::Barrier(ack_tx));
        match ack_rx.recv_timeout(timeout) {
            Ok(()) => self.health().is_none(),
            Err(RecvTimeoutError::Timeout) => false,
            // The writer dropped our barrier: it failed (or we never sent).
            // Wait for it to finish recording why, so health() is accurate
            // as soon as we return.
            Err(RecvTimeoutError::Disconnected) => {
                self.wait_for_writer_exit(deadline);
                false
            }
        }
    }

    fn wait_for_writer_exit(&self, deadline: Instant) {
        let Some(thread) = &self.thread else { return };
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Flushes everything, stops the writer thread and reports the first
    /// failure it hit, if any.
    pub fn close(mut self) -> Result<(), LoggingError> {
        self.shutdown();
        match self.shared.failure() {
            Some(message) => Err(LoggingError::Writer(message)),
            None => Ok(()),
        }
    }

    /// Closing the channel makes the thread drain the queue, flush and exit.
    /// Idempotent, so both `close` and `Drop` can call it.
    fn shutdown(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            if let Err(payload) = thread.join() {
                // Only reachable if a panic escaped catch_unwind (e.g. while
                // recording a failure); still must not propagate.
                self.shared.record_failure(panic_message(&*payload));
            }
        }
    }

    fn send(&self, record: Record) {
        if self.shared.failed.load(Ordering::Acquire) {
            return;
        }
        let Some(tx) = &self.tx else { return };
        match tx.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The writer has stopped, which only happens after a recorded
            // failure; health() already reports it.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

impl MetricsLogger {
    fn send_metric(&self, tag: &str, step: u64, value: MetricValue) {
        // Checked here too so a failed logger skips the clock read and copies.
        if self.shared.failed.load(Ordering::Acquire) {
            return;
        }
        let metric = Metric {
            tag: tag.to_string(),
            step,
            wall_time: unix_time(),
            value,
        };
        self.send(Record::Metric(metric));
    }
}

impl MetricsSink for MetricsLogger {
    fn scalar(&mut self, tag: &str, value: f64, step: u64) {
        self.send_metric(tag, step, MetricValue::Scalar(value));
    }

    fn text(&mut self, tag: &str, text: &str, step: u64) {
        self.send_metric(tag, step, MetricValue::Text(text.to_string()));
    }

    fn histogram(&mut self, tag: &str, hist: &Histogram, step: u64) {
        let hist = Box::new(hist.clone());
        self.send_metric(tag, step, MetricValue::Histogram(hist));
    }

    fn flush(&mut self) {
        self.send(Record::Flush);
    }
}

impl Drop for MetricsLogger {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_outputs_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let opts = LoggerOptions {
            tensorboard: false,
            jsonl: false,
            ..Default::default()
        };
        let mut logger = MetricsLogger::open(dir.path(), opts).unwrap();
        logger.scalar("x", 1.0, 0);
        assert!(logger.flush_and_wait(Duration::from_secs(10)));
        logger.close().unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
