//! The `prepare` progress bar: bytes of input read (on disk, so compressed bytes for
//! compressed inputs) against their total, which gives the ETA, plus the rates that matter
//! for a tokenizer: MB/s of text, tokens/s, documents.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub(super) struct Progress {
    bar: ProgressBar,
    start: Instant,
    /// Bytes on disk of the files read completely.
    files_done: u64,
    text_bytes: u64,
    tokens: u64,
    documents: u64,
}

impl Progress {
    /// A bar over `disk_bytes`; hidden unless `enabled` and stderr is a terminal (as the
    /// training bar: no redraw floods in CI logs).
    pub(super) fn new(enabled: bool, disk_bytes: u64) -> Self {
        let bar = if enabled && std::io::stderr().is_terminal() {
            let template = "{bar:30.cyan/blue} {binary_bytes}/{binary_total_bytes} \
                            [{elapsed_precise}<{eta_precise}] {msg}";
            // The template is a constant; falling back keeps a typo from being fatal.
            let style = ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            let bar = ProgressBar::new(disk_bytes).with_style(style);
            bar.enable_steady_tick(Duration::from_millis(500));
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress {
            bar,
            start: Instant::now(),
            files_done: 0,
            text_bytes: 0,
            tokens: 0,
            documents: 0,
        }
    }

    /// A batch was written: `text_bytes` of text as `tokens` tokens in `documents` documents.
    pub(super) fn batch(&mut self, text_bytes: u64, tokens: u64, documents: u64) {
        self.text_bytes += text_bytes;
        self.tokens += tokens;
        self.documents += documents;
        if self.bar.is_hidden() {
            return;
        }
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{:.1} MB/s text, {:.2}M tokens/s, {} docs",
            self.text_bytes as f64 / 1e6 / secs,
            self.tokens as f64 / 1e6 / secs,
            self.documents
        ));
    }

    /// Reading the current file had got `disk_pos` bytes into it.
    pub(super) fn at(&self, disk_pos: u64) {
        self.bar.set_position(self.files_done + disk_pos);
    }

    pub(super) fn file_done(&mut self, disk_bytes: u64) {
        self.files_done += disk_bytes;
        self.bar.set_position(self.files_done);
    }

    /// Leaves the last state (with its rates) on screen.
    pub(super) fn finish(&self) {
        self.bar.finish();
    }
}
