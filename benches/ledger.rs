//! Cost of the memory-mapped ledger on a large file (a benchmark, not a test):
//!
//! ```sh
//! cargo bench --bench ledger            # 10^7 blocks
//! cargo bench --bench ledger -- 1e6     # chosen size
//! ```
//!
//! Creates a ledger of N blocks in a temporary directory, then times: opening it for writing
//! and read-only (both verify every record's checksum), `record_losses` per optimizer step
//! (B = 16 and B = 512 random block ids, averaged over many steps), a flush, the TensorBoard
//! statistics (one scan each), the `syllabus ledger` report (no previews), a checkpoint
//! snapshot and a restore. Page cache warm: every phase runs once before it is timed, except
//! creation. Needs about 3 × 36·N bytes of disk (file, snapshot, restored copy).

use std::time::{Duration, Instant};

use syllabus::ledger::{
    build_report, forgotten_fraction, loss_histogram, Ledger, LedgerReader, LossMetric,
    ReportOptions, UpdateRule, LEDGER_FILE, RECORD_SIZE,
};
use syllabus::rng::Rng;

fn parse_count(arg: &str) -> Option<usize> {
    let v: f64 = arg.parse().ok()?;
    (v >= 1.0 && v.fract() == 0.0).then_some(v as usize)
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// Runs `f` once untimed (warms the page cache), then returns its time on a second run.
fn warm<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    drop(f());
    let t = Instant::now();
    let out = f();
    (t.elapsed(), out)
}

/// Mean time of one `record_losses` call with `b` random ids, over `steps` steps.
fn per_step(ledger: &mut Ledger, n: usize, b: usize, steps: usize, rng: &mut Rng) -> Duration {
    let rule = UpdateRule::default();
    let batches: Vec<(Vec<usize>, Vec<f32>)> = (0..steps)
        .map(|_| {
            let ids = (0..b).map(|_| rng.below(n as u64) as usize).collect();
            let losses = (0..b).map(|_| 1.0 + 4.0 * rng.next_f64() as f32).collect();
            (ids, losses)
        })
        .collect();
    let t = Instant::now();
    for (step, (ids, losses)) in batches.iter().enumerate() {
        ledger
            .record_losses(ids, losses, step as u64, &rule)
            .expect("record_losses");
    }
    t.elapsed() / steps as u32
}

fn main() {
    let n = std::env::args()
        .skip(1)
        .find_map(|a| parse_count(&a))
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(LEDGER_FILE);
    let mb = (64 + RECORD_SIZE * n) as f64 / 1e6;
    println!("ledger of {n} blocks ({RECORD_SIZE}-byte records, {mb:.0} MB)");

    let t = Instant::now();
    let ledger = Ledger::create(&path, n, 129, 1, |i| (i % 4) as u16).expect("create");
    println!("create                      {}", secs(t.elapsed()));
    drop(ledger);

    let (d, ledger) = warm(|| Ledger::open_rw(&path).expect("open_rw"));
    println!("open_rw (verifies)          {}", secs(d));
    let mut ledger = ledger;
    let (d, _) = warm(|| LedgerReader::open(&path).expect("open read-only"));
    println!("LedgerReader::open          {}", secs(d));

    let mut rng = Rng::new(7);
    // Train every block once first so updates take the "seen" path, as in a long run.
    let all: Vec<usize> = (0..n).collect();
    let losses: Vec<f32> = (0..n).map(|i| 2.0 + (i % 97) as f32 * 0.03).collect();
    let rule = UpdateRule::default();
    ledger
        .record_losses(&all, &losses, 0, &rule)
        .expect("train once");
    for (b, steps) in [(16, 20_000), (512, 2_000)] {
        per_step(&mut ledger, n, b, steps / 4, &mut rng); // warm the touched pages
        let d = per_step(&mut ledger, n, b, steps, &mut rng);
        println!(
            "record_losses B={b:<4}          {:.2} us/step",
            d.as_secs_f64() * 1e6
        );
    }
    let (d, _) = warm(|| ledger.flush(1).expect("flush"));
    println!("flush                       {}", secs(d));

    let (d, _) = warm(|| loss_histogram(&ledger, LossMetric::LastLoss, 30).expect("histogram"));
    println!("loss_histogram              {}", secs(d));
    let (d, _) = warm(|| forgotten_fraction(&ledger).expect("forgotten_fraction"));
    println!("forgotten_fraction          {}", secs(d));
    let opts = ReportOptions {
        preview_chars: 0,
        ..ReportOptions::default()
    };
    let (d, _) = warm(|| build_report(dir.path(), &opts).expect("report"));
    println!("report (no previews)        {}", secs(d));

    let snap = dir.path().join("snapshot.bin");
    let (d, _) = warm(|| ledger.snapshot_to(&snap, 2).expect("snapshot"));
    println!("snapshot_to                 {}", secs(d));
    drop(ledger);
    let live = dir.path().join("restored.bin");
    let (d, _) = warm(|| Ledger::restore_from(&snap, &live).expect("restore"));
    println!("restore_from                {}", secs(d));
}
