//! Human-readable rendering of a [`LedgerReport`].

use std::fmt::Write;

use super::report::{BlockSummary, HistogramBin, LedgerReport, LossSummary};

/// Width of the longest histogram bar, in characters.
const BAR_WIDTH: usize = 50;

impl LedgerReport {
    /// The report as text for a terminal: counts, loss quantiles and histogram, hardest and
    /// easiest blocks, per-source table, forgetting next to the LFR paper's numbers.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        self.render_counts(&mut s);
        let metric = self.metric.name();
        match &self.loss {
            Some(loss) => render_loss(&mut s, loss, metric),
            None => s.push_str("\nno block has been trained yet\n"),
        }
        if !self.hardest.is_empty() {
            let title = format!(
                "hardest {} seen blocks (highest {metric})",
                self.hardest.len()
            );
            render_blocks(&mut s, &title, &self.hardest);
            let title = format!(
                "easiest {} seen blocks (lowest {metric})",
                self.easiest.len()
            );
            render_blocks(&mut s, &title, &self.easiest);
        }
        self.render_sources(&mut s);
        self.render_forgetting(&mut s);
        if let Some(note) = &self.data_note {
            let _ = writeln!(s, "\nnote: {note}");
        }
        s
    }

    fn render_counts(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "ledger {} (run id {:#018x}, flushed at step {}, {} tokens per block)",
            self.ledger_path, self.run_id, self.generation, self.block_len
        );
        let _ = writeln!(
            s,
            "blocks: {} total, {} seen ({}), {} never seen; {} training samples recorded",
            group(self.blocks_total),
            group(self.blocks_seen),
            pct(self.share_seen),
            group(self.blocks_never_seen),
            group(self.samples_total)
        );
    }

    fn render_sources(&self, s: &mut String) {
        let metric = self.metric.name();
        let _ = writeln!(
            s,
            "\nper source (mean {metric} over seen blocks; share of samples)"
        );
        let _ = writeln!(
            s,
            "  {:<24} {:>12} {:>12} {:>10} {:>13}",
            "source", "blocks", "seen", "mean loss", "sample share"
        );
        for src in &self.sources {
            let mean = src.mean_loss.map_or("-".into(), |m| format!("{m:.4}"));
            let _ = writeln!(
                s,
                "  {:<24} {:>12} {:>12} {:>10} {:>13}",
                src.name,
                group(src.blocks),
                group(src.seen),
                mean,
                pct(src.sample_share)
            );
        }
    }

    fn render_forgetting(&self, s: &mut String) {
        let f = &self.forgetting;
        s.push_str("\nforgetting (a fall then a rise of the loss by more than the tolerance)\n");
        let _ = writeln!(
            s,
            "  forgotten at least once:  {:>7} of seen blocks ({} of {})   LFR paper: {} \
             (GPT-2, OpenWebText, 8 epochs)",
            pct(f.share_forgotten),
            group(f.forgotten_at_least_once),
            group(self.blocks_seen),
            pct(Some(f.paper_share_forgotten))
        );
        let _ = writeln!(
            s,
            "  of those, more than once: {:>7} ({} of {})   LFR paper: {}",
            pct(f.share_more_than_once_of_forgotten),
            group(f.forgotten_more_than_once),
            group(f.forgotten_at_least_once),
            pct(Some(f.paper_share_more_than_once_of_forgotten))
        );
        let mean = f.mean_events.map_or("-".into(), |m| format!("{m:.3}"));
        let _ = writeln!(s, "  mean forgetting events per seen block: {mean}");
        let _ = writeln!(
            s,
            "  blocks trained 3+ times (the minimum for one event): {}",
            group(f.blocks_trained_3_plus)
        );
    }
}

fn render_loss(s: &mut String, l: &LossSummary, metric: &str) {
    let _ = writeln!(s, "\n{metric} over seen blocks (nats)");
    let _ = writeln!(
        s,
        "  min {:.4}  p10 {:.4}  p25 {:.4}  p50 {:.4}  p75 {:.4}  p90 {:.4}  max {:.4}  \
         mean {:.4}",
        l.min, l.p10, l.p25, l.p50, l.p75, l.p90, l.max, l.mean
    );
    s.push_str(&histogram_rows(&l.histogram));
}

/// One row per bin: range, count, and a bar scaled so the largest count is `BAR_WIDTH` wide
/// (a non-empty bin always gets at least one character).
pub(super) fn histogram_rows(bins: &[HistogramBin]) -> String {
    let max = bins.iter().map(|b| b.count).max().unwrap_or(0);
    let mut s = String::new();
    for (i, b) in bins.iter().enumerate() {
        let width = if max == 0 {
            0
        } else {
            ((b.count as f64 / max as f64) * BAR_WIDTH as f64).round() as usize
        };
        let width = if b.count > 0 { width.max(1) } else { 0 };
        let close = if i + 1 == bins.len() { ']' } else { ')' };
        let _ = writeln!(
            s,
            "  [{:>8.4}, {:>8.4}{close} {:>10} {}",
            b.lo,
            b.hi,
            group(b.count),
            "█".repeat(width)
        );
    }
    s
}

fn render_blocks(s: &mut String, title: &str, blocks: &[BlockSummary]) {
    let _ = writeln!(s, "\n{title}");
    let _ = writeln!(
        s,
        "  {:>12} {:>8} {:>7} {:>7} {:<16} text",
        "block", "loss", "trained", "forgot", "source"
    );
    for b in blocks {
        let _ = writeln!(
            s,
            "  {:>12} {:>8.4} {:>7} {:>7} {:<16} {}",
            b.id,
            b.loss,
            b.times_trained,
            b.forget_events,
            b.source,
            b.preview.as_deref().unwrap_or("-")
        );
    }
}

/// `0.253` -> `25.3%`; `None` -> `-`.
fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

/// `1234567` -> `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_and_pct() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(pct(Some(0.253)), "25.3%");
        assert_eq!(pct(None), "-");
    }

    #[test]
    fn bars_scale_to_the_largest_count() {
        let bins = [(0.0, 1.0, 10), (1.0, 2.0, 5), (2.0, 3.0, 0), (3.0, 4.0, 1)]
            .map(|(lo, hi, count)| HistogramBin { lo, hi, count });
        let rows = histogram_rows(&bins);
        let bars: Vec<usize> = rows.lines().map(|l| l.matches('█').count()).collect();
        assert_eq!(bars, vec![BAR_WIDTH, BAR_WIDTH / 2, 0, 5]);
        assert!(rows.lines().last().is_some_and(|l| l.contains("4.0000]")));
    }
}
