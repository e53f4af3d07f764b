//! The metrics writer thread: owns the output files, drains the queue and
//! turns every I/O error or panic into a recorded failure.

use std::any::Any;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::histogram::Histogram;
use super::hparams::{HParams, SessionStatus};
use super::jsonl::JsonlWriter;
use super::tensorboard::TensorBoardWriter;

/// Longest time a record may sit in a buffer before a live `tensorboard
/// --logdir` can see it.
const FLUSH_INTERVAL: Duration = Duration::from_secs(2);
/// Also flush after this many records, bounding what a crash can lose.
const FLUSH_EVERY_RECORDS: usize = 512;

pub(super) enum Record {
    Metric(Metric),
    Flush,
    /// Flush, then acknowledge on the enclosed channel.
    Barrier(mpsc::Sender<()>),
}

/// One metric, timestamped by the caller so `wall_time` reflects when it was
/// produced rather than when the writer got round to it.
pub(super) struct Metric {
    pub(super) tag: String,
    pub(super) step: u64,
    pub(super) wall_time: f64,
    pub(super) value: MetricValue,
}

pub(super) enum MetricValue {
    Scalar(f64),
    Text(String),
    Histogram(Box<Histogram>),
    /// TensorBoard's HParams summaries (not written to `metrics.jsonl`).
    HParams(Box<HParams>),
    /// TensorBoard's HParams session end (not written to `metrics.jsonl`).
    SessionEnd(SessionStatus),
}

/// State shared between the caller and the writer thread.
#[derive(Default)]
pub(super) struct Shared {
    /// Fast-path check so callers stop building records after a failure.
    pub(super) failed: AtomicBool,
    failure: Mutex<Option<String>>,
    pub(super) dropped: AtomicU64,
}

impl Shared {
    /// Keeps the first failure only: later ones are usually consequences.
    pub(super) fn record_failure(&self, message: String) {
        let mut slot = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(message);
        self.failed.store(true, Ordering::Release);
    }

    pub(super) fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The enabled backends, owned by the writer thread.
pub(super) struct Writers {
    pub(super) tb: Option<TensorBoardWriter>,
    pub(super) jsonl: Option<JsonlWriter>,
}

impl Writers {
    fn write(&mut self, metric: &Metric) -> io::Result<()> {
        let Metric {
            tag,
            step,
            wall_time,
            value,
        } = metric;
        let (step, wall_time) = (*step, *wall_time);
        if let Some(tb) = &mut self.tb {
            match value {
                MetricValue::Scalar(v) => tb.scalar(tag, *v, step, wall_time),
                MetricValue::Text(t) => tb.text(tag, t, step, wall_time),
                MetricValue::Histogram(h) => tb.histogram(tag, h, step, wall_time),
                MetricValue::HParams(h) => tb.hparams(h, step, wall_time),
                MetricValue::SessionEnd(s) => tb.session_end(*s, step, wall_time),
            }?;
        }
        if let Some(jsonl) = &mut self.jsonl {
            match value {
                MetricValue::Scalar(v) => jsonl.scalar(tag, *v, step, wall_time),
                MetricValue::Text(t) => jsonl.text(tag, t, step, wall_time),
                MetricValue::Histogram(h) => jsonl.histogram(tag, h, step, wall_time),
                MetricValue::HParams(_) | MetricValue::SessionEnd(_) => Ok(()),
            }?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(tb) = &mut self.tb {
            tb.flush()?;
        }
        if let Some(jsonl) = &mut self.jsonl {
            jsonl.flush()?;
        }
        Ok(())
    }
}

/// Thread entry: runs the loop under `catch_unwind` so neither an I/O error
/// nor a panic (e.g. in a dependency) can reach the training thread.
pub(super) fn writer_thread(rx: Receiver<Record>, writers: Writers, shared: &Shared) {
    let outcome = catch_unwind(AssertUnwindSafe(|| write_loop(&rx, writers)));
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => shared.record_failure(format!("metrics writer I/O error: {e}")),
        Err(payload) => shared.record_failure(panic_message(&*payload)),
    }
    // Dropping `rx` here disconnects the channel, so callers' try_send fails
    // fast instead of filling a queue nobody reads.
}

/// Writes records until the sender side is closed; flushes on request, every
/// `FLUSH_INTERVAL` and every `FLUSH_EVERY_RECORDS` records.
fn write_loop(rx: &Receiver<Record>, mut writers: Writers) -> io::Result<()> {
    let mut unflushed = 0usize;
    let mut last_flush = Instant::now();
    loop {
        let wait = FLUSH_INTERVAL.saturating_sub(last_flush.elapsed());
        let record = match rx.recv_timeout(wait) {
            Ok(record) => Some(record),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut flush_now = last_flush.elapsed() >= FLUSH_INTERVAL;
        match &record {
            Some(Record::Metric(metric)) => {
                writers.write(metric)?;
                unflushed += 1;
                flush_now |= unflushed >= FLUSH_EVERY_RECORDS;
            }
            Some(Record::Flush | Record::Barrier(_)) => flush_now = true,
            None => {}
        }
        if flush_now {
            writers.flush()?;
            unflushed = 0;
            last_flush = Instant::now();
        }
        if let Some(Record::Barrier(ack)) = record {
            // The waiter may have timed out and gone; that is fine.
            let _ = ack.send(());
        }
    }
    writers.flush()
}

pub(super) fn panic_message(payload: &(dyn Any + Send)) -> String {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_string());
    format!("metrics writer panicked: {detail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_failure_wins() {
        let shared = Shared::default();
        assert!(shared.failure().is_none());
        shared.record_failure("first".into());
        shared.record_failure("second".into());
        assert_eq!(shared.failure().as_deref(), Some("first"));
        assert!(shared.failed.load(Ordering::Acquire));
    }

    #[test]
    fn panic_payloads_become_messages() {
        let payload = catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(&*payload), "metrics writer panicked: boom 1");
        let payload = catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
        assert!(panic_message(&*payload).contains("non-string"));
    }
}
