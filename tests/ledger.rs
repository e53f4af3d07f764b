//! The memory-mapped ledger: updates, forgetting, file validation, snapshots, concurrent
//! readers, and the `syllabus ledger` report.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use syllabus::ledger::{
    build_report, BlockRecord, Ledger, LedgerError, LedgerRead, LedgerReader, LossMetric,
    ReportOptions, UpdateRule, LEDGER_FILE, NEVER, RECORD_SIZE,
};

fn rule() -> UpdateRule {
    UpdateRule::default()
}

fn new_ledger(dir: &Path, n: usize) -> (PathBuf, Ledger) {
    let path = dir.join(LEDGER_FILE);
    let ledger = Ledger::create(&path, n, 129, 0xABCD, |i| (i % 3) as u16).expect("create");
    (path, ledger)
}

#[test]
fn recorded_losses_read_back_through_a_reader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, mut ledger) = new_ledger(dir.path(), 5);
    let skipped = ledger
        .record_losses(&[0, 1, 2, 2], &[3.0, f32::NAN, 2.0, 1.0], 7, &rule())
        .expect("record");
    assert_eq!(skipped, 1, "the NaN is skipped");
    let skipped = ledger
        .record_losses(
            &[0, 3, 4],
            &[2.0, f32::INFINITY, f32::NEG_INFINITY],
            8,
            &rule(),
        )
        .expect("record");
    assert_eq!(skipped, 2);

    let reader = LedgerReader::open(&path).expect("open read-only");
    assert_eq!(reader.len(), 5);
    assert_eq!(reader.header().run_id, 0xABCD);
    assert_eq!(reader.header().block_len, 129);
    let b0 = reader.record(0);
    assert_eq!((b0.first_loss, b0.last_loss, b0.min_loss), (3.0, 2.0, 2.0));
    assert_eq!(b0.ema_loss, 2.5);
    assert_eq!((b0.times_trained, b0.last_step, b0.source), (2, 8, 0));
    let b2 = reader.record(2);
    assert_eq!(
        (b2.first_loss, b2.last_loss, b2.times_trained),
        (2.0, 1.0, 2)
    );
    assert_eq!(b2.min_loss, 1.0, "fell by more than the tolerance");
    assert_eq!(b2.source, 2);
    for id in [1, 3, 4] {
        let r = reader.record(id);
        assert!(
            !r.seen(),
            "block {id}: non-finite losses never reach the ledger"
        );
        assert_eq!(r.last_step, NEVER);
        assert!(r.last_loss.is_nan() && r.ema_loss.is_nan());
        assert_eq!(
            r.to_bytes(),
            BlockRecord::unseen((id % 3) as u16)
                .with_checksum(id as u64)
                .to_bytes()
        );
    }
    for id in 0..5 {
        assert_eq!(reader.record(id).to_bytes(), ledger.record(id).to_bytes());
        assert_eq!(reader.record(id).seq % 2, 0);
    }
    assert!(reader.get(5).expect("no record to check").is_none());
    // The mapped records are the file's bytes: what `to_bytes` says, at 64 + 36 id, each
    // carrying its checksum.
    assert_eq!(RECORD_SIZE, 36);
    let file = std::fs::read(&path).expect("read");
    for id in 0..5 {
        let at = 64 + RECORD_SIZE * id;
        let rec = ledger.record(id);
        assert_eq!(&file[at..at + RECORD_SIZE], &rec.to_bytes());
        assert!(rec.checksum_ok(id as u64), "block {id}");
        let got = reader.get(id).expect("checked").expect("in range");
        assert_eq!(got.to_bytes(), rec.to_bytes());
    }
}

#[test]
fn policy_state_and_leitner_box() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, mut ledger) = new_ledger(dir.path(), 3);
    ledger
        .record_losses(&[1], &[4.0], 1, &rule())
        .expect("record");
    ledger.set_policy_state(1, 1, Some(3)).expect("set");
    ledger.set_policy_state(2, 2, None).expect("set");
    assert!(ledger.set_policy_state(3, 0, None).is_err());
    let reader = LedgerReader::open(&path).expect("open");
    let r = reader.record(1);
    assert_eq!((r.policy_state, r.leitner_box(), r.last_loss), (1, 3, 4.0));
    assert_eq!(
        (
            reader.record(2).policy_state,
            reader.record(2).leitner_box()
        ),
        (2, 0)
    );
}

/// Forgetting events after feeding `losses` to one block, one step each.
fn events(losses: &[f32]) -> u16 {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, mut ledger) = new_ledger(dir.path(), 2);
    for (step, &l) in losses.iter().enumerate() {
        ledger
            .record_losses(&[1], &[l], step as u64, &rule())
            .expect("record");
    }
    ledger.record(1).forget_events
}

#[test]
fn forgetting_rule_on_hand_made_sequences() {
    assert_eq!(
        events(&[6.0, 5.0, 4.0, 3.5, 3.0]),
        0,
        "monotone fall: learned"
    );
    assert_eq!(events(&[6.0, 5.0, 5.6]), 1, "fall-rise: forgotten once");
    assert_eq!(events(&[6.0, 5.0, 5.6, 4.0, 4.9]), 2, "fall-rise-fall-rise");
    assert_eq!(
        events(&[6.0, 6.5, 7.0, 8.0]),
        0,
        "rise without a fall: unlearned"
    );
    assert_eq!(
        events(&[6.0, 5.0, 5.03, 5.01, 5.04]),
        0,
        "rises within tolerance"
    );
    assert_eq!(
        events(&[6.0, 6.03, 5.98, 6.04]),
        0,
        "wiggles within tolerance"
    );
}

fn open_err(path: &Path) -> String {
    let rw = Ledger::open_rw(path)
        .expect_err("invalid ledger")
        .to_string();
    let ro = LedgerReader::open(path)
        .expect_err("invalid ledger")
        .to_string();
    assert_eq!(rw, ro);
    assert!(
        rw.contains(&path.display().to_string()),
        "names the file: {rw}"
    );
    rw
}

/// Rewrites header bytes `range` with `bytes` and recomputes the CRC, so only that field is
/// wrong.
fn patch_header(path: &Path, offset: usize, bytes: &[u8]) {
    let mut data = std::fs::read(path).expect("read");
    data[offset..offset + bytes.len()].copy_from_slice(bytes);
    let crc = crc32fast::hash(&data[..60]);
    data[60..64].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(path, data).expect("write");
}

#[test]
fn damaged_files_are_rejected_with_messages_naming_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, ledger) = new_ledger(dir.path(), 4);
    drop(ledger);
    let good = std::fs::read(&path).expect("read");
    let reset = || std::fs::write(&path, &good).expect("write");

    let mut bytes = good.clone();
    bytes[..8].copy_from_slice(b"NOTLEDGR");
    std::fs::write(&path, &bytes).expect("write");
    assert!(open_err(&path).contains("not a syllabus ledger"));

    let mut bytes = good.clone();
    bytes[20] ^= 1; // block count
    std::fs::write(&path, &bytes).expect("write");
    assert!(open_err(&path).contains("checksum"));

    reset();
    patch_header(&path, 12, &48u32.to_le_bytes());
    assert!(open_err(&path).contains("record size is 48"));

    reset();
    patch_header(&path, 8, &3u32.to_le_bytes());
    assert!(open_err(&path).contains("unsupported ledger format version 3"));

    std::fs::write(&path, &good[..good.len() - 1]).expect("write");
    assert!(open_err(&path).contains("wrong length"));
    std::fs::write(&path, &good[..40]).expect("write");
    assert!(open_err(&path).contains("truncated"));
    std::fs::write(&path, b"").expect("write");
    assert!(open_err(&path).contains("not a syllabus ledger"));

    let missing = dir.path().join("missing.bin");
    assert!(open_err(&missing).contains("missing.bin"));
}

#[test]
fn run_id_is_checked_on_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, ledger) = new_ledger(dir.path(), 1);
    drop(ledger);
    assert_eq!(Ledger::open_rw(&path).expect("open").run_id(), 0xABCD);
    assert!(Ledger::open_for_run(&path, 0xABCD).is_ok());
    let err = Ledger::open_for_run(&path, 1).expect_err("other run");
    assert!(matches!(
        err,
        LedgerError::RunMismatch {
            found: 0xABCD,
            expected: 1,
            ..
        }
    ));
}

/// Step `step` of a deterministic fake training run over `n` blocks.
fn fake_step(ledger: &mut Ledger, n: usize, step: u64) {
    let ids: Vec<usize> = (0..4).map(|j| (step as usize * 3 + j * 5) % n).collect();
    let losses: Vec<f32> = ids
        .iter()
        .map(|&id| 5.0 - 0.1 * step as f32 + ((id + step as usize) % 4) as f32 * 0.3)
        .collect();
    ledger
        .record_losses(&ids, &losses, step, &rule())
        .expect("record");
}

#[test]
fn snapshot_and_restore_give_byte_identical_ledgers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 11;
    // Run A: 6 steps, checkpoint, 3 more steps that a crash loses, resume, 4 steps.
    let live = dir.path().join("a").join(LEDGER_FILE);
    std::fs::create_dir_all(live.parent().expect("parent")).expect("mkdir");
    let mut a = Ledger::create(&live, n, 9, 1, |i| (i % 2) as u16).expect("create");
    (0..6).for_each(|s| fake_step(&mut a, n, s));
    let ckpt = dir.path().join("ckpt");
    std::fs::create_dir_all(&ckpt).expect("mkdir");
    let snap = ckpt.join(LEDGER_FILE);
    a.snapshot_to(&snap, 6).expect("snapshot");
    assert_eq!(
        std::fs::read(&snap).expect("r"),
        std::fs::read(&live).expect("r")
    );
    (6..9).for_each(|s| fake_step(&mut a, n, s + 100));
    drop(a);
    assert_ne!(
        std::fs::read(&snap).expect("r"),
        std::fs::read(&live).expect("r")
    );
    let mut a = Ledger::restore_from(&snap, &live).expect("restore");
    assert_eq!(
        std::fs::read(&snap).expect("r"),
        std::fs::read(&live).expect("r")
    );
    assert_eq!(a.generation(), 6);
    (6..10).for_each(|s| fake_step(&mut a, n, s));
    a.flush(10).expect("flush");

    // Run B: the same 10 steps without interruption, flushed at the same steps.
    let other = dir.path().join("b.bin");
    let mut b = Ledger::create(&other, n, 9, 1, |i| (i % 2) as u16).expect("create");
    (0..6).for_each(|s| fake_step(&mut b, n, s));
    b.flush(6).expect("flush");
    (6..10).for_each(|s| fake_step(&mut b, n, s));
    b.flush(10).expect("flush");
    assert_eq!(
        std::fs::read(&live).expect("r"),
        std::fs::read(&other).expect("r")
    );
    assert!(!dir.path().join("ckpt").join("ledger.bin.tmp").exists());
}

#[test]
fn restore_refuses_a_damaged_snapshot_and_keeps_the_live_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (live, mut ledger) = new_ledger(dir.path(), 3);
    let snap = dir.path().join("snap.bin");
    ledger.snapshot_to(&snap, 1).expect("snapshot");
    std::fs::write(&snap, b"garbage").expect("write");
    let before = std::fs::read(&live).expect("read");
    assert!(Ledger::restore_from(&snap, &live).is_err());
    assert_eq!(std::fs::read(&live).expect("read"), before);
}

#[test]
fn concurrent_reader_never_sees_a_torn_record() {
    const STEPS: u64 = 200_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 8;
    let (path, mut ledger) = new_ledger(dir.path(), n);
    // Loss = step, so a whole record has last_loss = last_step, times_trained = step + 1 and
    // the EMA of 0, 1, ..., step (computed with the same f32 arithmetic as the update).
    let alpha = rule().ema_alpha;
    let ema: Vec<f32> = (0..STEPS)
        .scan(0.0f32, |e, s| {
            *e += alpha * (s as f32 - *e);
            Some(*e)
        })
        .collect();
    let reader = LedgerReader::open(&path).expect("open");
    let done = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let (done_r, started_r) = (Arc::clone(&done), Arc::clone(&started));
    let checker = std::thread::spawn(move || {
        let (mut reads, mut mid_run) = (0u64, 0u64);
        started_r.store(true, Ordering::Release);
        while !done_r.load(Ordering::Acquire) {
            for id in 0..n {
                let r = reader.record(id);
                reads += 1;
                assert_eq!(r.seq % 2, 0, "odd seq returned");
                if !r.seen() {
                    continue;
                }
                let s = r.last_step;
                assert_eq!(r.last_loss, s as f32, "torn: {r:?}");
                assert_eq!(r.times_trained, s + 1, "torn: {r:?}");
                assert_eq!(r.ema_loss, ema[s as usize], "torn: {r:?}");
                assert_eq!((r.first_loss, r.min_loss), (0.0, 0.0), "torn: {r:?}");
                mid_run += u64::from(s + 1 < STEPS as u32);
            }
        }
        (reads, mid_run)
    });
    while !started.load(Ordering::Acquire) {
        std::thread::yield_now(); // overlap the reader with all of the writes
    }
    let ids: Vec<usize> = (0..n).collect();
    for step in 0..STEPS {
        let losses = vec![step as f32; n];
        ledger
            .record_losses(&ids, &losses, step, &rule())
            .expect("record");
    }
    done.store(true, Ordering::Release);
    let (reads, mid_run) = checker.join().expect("reader thread");
    assert!(
        reads > 0 && mid_run > 0,
        "the reader ran while the writer was writing"
    );
}

/// A prepared two-source corpus, a run directory whose `config.toml` points at it, and a
/// ledger over its training blocks filled with deterministic fake losses.
fn synthetic_run(dir: &Path) -> (PathBuf, PathBuf) {
    use syllabus::data::{load_prepared, prepare, Blocks, PrepareOptions};
    let mut jsonl = String::new();
    for i in 0..40 {
        let (source, text) = if i % 2 == 0 {
            (
                "alpha",
                format!("Alpha story {i}: the river crosses the hill.\nThe end {i}."),
            )
        } else {
            (
                "beta",
                format!("def beta_{i}(x):\n    return x * {i} + 7\n"),
            )
        };
        let line = serde_json::json!({ "text": text, "source": source });
        jsonl.push_str(&format!("{line}\n"));
    }
    let input = dir.join("corpus.jsonl");
    std::fs::write(&input, jsonl).expect("write corpus");
    let prepared = dir.join("prepared");
    prepare(&PrepareOptions {
        inputs: vec![input],
        val_inputs: vec![],
        val_fraction: 0.2,
        seed: 3,
        out_dir: prepared.clone(),
        overwrite: false,
        ..PrepareOptions::default()
    })
    .expect("prepare");
    let run = dir.join("run");
    std::fs::create_dir_all(&run).expect("mkdir");
    let config = format!(
        "[data]\nprepared_dir = \"{}\"\n[model]\npreset = \"tiny\"\ncontext_length = 8\n\
         [budget]\nsteps = 1000\n[train]\nbatch_size = 2\n",
        prepared.display()
    );
    std::fs::write(run.join("config.toml"), config).expect("write config");

    let data = load_prepared(&prepared).expect("load");
    let blocks = Blocks::new(data.train.clone(), 9).expect("blocks");
    let path = run.join(LEDGER_FILE);
    let mut ledger =
        Ledger::create_for_blocks(&path, &blocks, &data.train_docs, 42).expect("create");
    let mut step = 0;
    for id in (0..blocks.len()).filter(|i| i % 4 != 0) {
        let last = 2.0 + (id % 17) as f32 * 0.25 + id as f32 * 1e-3;
        let seq: Vec<f32> = match id % 5 {
            1 => vec![6.0, 4.0, 6.0, last],
            2 => vec![6.0, 4.0, 6.0, 3.0, 6.0, last],
            _ => vec![6.0, last],
        };
        for l in seq {
            ledger
                .record_losses(&[id], &[l], step, &rule())
                .expect("record");
            step += 1;
        }
    }
    ledger.flush(step).expect("flush");
    (run, prepared)
}

fn nearest_rank(sorted: &[f32], q: f64) -> f64 {
    f64::from(sorted[((sorted.len() - 1) as f64 * q).round() as usize])
}

#[test]
fn report_on_a_synthetic_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (run, prepared) = synthetic_run(dir.path());
    let opts = ReportOptions {
        top_k: 3,
        bins: 6,
        preview_chars: 24,
        metric: LossMetric::LastLoss,
    };
    let report = build_report(&run, &opts).expect("report");
    let reader = LedgerReader::open(&run.join(LEDGER_FILE)).expect("open");
    let recs: Vec<BlockRecord> = (0..reader.len()).map(|i| reader.record(i)).collect();
    let seen: Vec<(usize, &BlockRecord)> =
        recs.iter().enumerate().filter(|(_, r)| r.seen()).collect();

    assert_eq!(report.run_id, 42);
    assert_eq!(report.block_len, 9);
    assert_eq!(report.blocks_total, recs.len() as u64);
    assert_eq!(report.blocks_seen, seen.len() as u64);
    assert_eq!(report.blocks_never_seen, (recs.len() - seen.len()) as u64);
    assert!(report.data_note.is_none(), "{:?}", report.data_note);

    // Quantiles and histogram.
    let mut sorted: Vec<f32> = seen.iter().map(|(_, r)| r.last_loss).collect();
    sorted.sort_by(f32::total_cmp);
    let loss = report.loss.as_ref().expect("seen blocks");
    assert_eq!(loss.min, f64::from(sorted[0]));
    assert_eq!(loss.max, f64::from(sorted[sorted.len() - 1]));
    assert_eq!(loss.p10, nearest_rank(&sorted, 0.1));
    assert_eq!(loss.p50, nearest_rank(&sorted, 0.5));
    assert_eq!(loss.p90, nearest_rank(&sorted, 0.9));
    let mean = sorted.iter().map(|&l| f64::from(l)).sum::<f64>() / sorted.len() as f64;
    assert!((loss.mean - mean).abs() < 1e-9);
    assert_eq!(loss.histogram.len(), 6);
    assert_eq!(
        loss.histogram.iter().map(|b| b.count).sum::<u64>(),
        report.blocks_seen
    );

    // Hardest and easiest, in order.
    let mut by_loss: Vec<(usize, f32)> = seen.iter().map(|(i, r)| (*i, r.last_loss)).collect();
    by_loss.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let hardest: Vec<u64> = report.hardest.iter().map(|b| b.id).collect();
    let want: Vec<u64> = by_loss.iter().take(3).map(|(i, _)| *i as u64).collect();
    assert_eq!(hardest, want);
    by_loss.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let easiest: Vec<u64> = report.easiest.iter().map(|b| b.id).collect();
    let want: Vec<u64> = by_loss.iter().take(3).map(|(i, _)| *i as u64).collect();
    assert_eq!(easiest, want);
    for b in report.hardest.iter().chain(&report.easiest) {
        let p = b.preview.as_deref().expect("data available");
        assert!(!p.is_empty() && !p.contains('\n'), "{p:?}");
        assert!(p.chars().count() <= 25, "{p:?}");
        assert!(b.source == "alpha" || b.source == "beta", "{}", b.source);
    }
    assert!(report
        .hardest
        .iter()
        .chain(&report.easiest)
        .any(|b| b.preview.as_deref().is_some_and(|p| p.contains('⏎'))));

    // Per source.
    let total: u64 = recs.iter().map(|r| u64::from(r.times_trained)).sum();
    assert_eq!(report.samples_total, total);
    let names: Vec<&str> = report.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"alpha") && names.contains(&"beta"));
    for s in &report.sources {
        let mine: Vec<&BlockRecord> = recs.iter().filter(|r| r.source == s.id).collect();
        let samples: u64 = mine.iter().map(|r| u64::from(r.times_trained)).sum();
        assert_eq!(s.blocks, mine.len() as u64);
        assert_eq!(s.samples, samples);
        assert_eq!(s.sample_share, Some(samples as f64 / total as f64));
        let seen_losses: Vec<f64> = mine
            .iter()
            .filter(|r| r.seen())
            .map(|r| f64::from(r.last_loss))
            .collect();
        let m = seen_losses.iter().sum::<f64>() / seen_losses.len() as f64;
        assert!((s.mean_loss.expect("seen") - m).abs() < 1e-9);
    }
    let share_sum: f64 = report.sources.iter().filter_map(|s| s.sample_share).sum();
    assert!((share_sum - 1.0).abs() < 1e-12);

    // Forgetting.
    let f = &report.forgetting;
    let once = seen.iter().filter(|(_, r)| r.forget_events >= 1).count() as u64;
    let more = seen.iter().filter(|(_, r)| r.forget_events >= 2).count() as u64;
    assert!(
        once > more && more > 0,
        "the fixture forgets: {once} {more}"
    );
    assert_eq!(
        (f.forgotten_at_least_once, f.forgotten_more_than_once),
        (once, more)
    );
    assert_eq!(f.share_forgotten, Some(once as f64 / seen.len() as f64));
    assert_eq!(
        f.share_more_than_once_of_forgotten,
        Some(more as f64 / once as f64)
    );
    assert_eq!(
        (
            f.paper_share_forgotten,
            f.paper_share_more_than_once_of_forgotten
        ),
        (0.25, 0.82)
    );
    let events: u64 = seen.iter().map(|(_, r)| u64::from(r.forget_events)).sum();
    assert_eq!(f.mean_events, Some(events as f64 / seen.len() as f64));
    assert_eq!(
        syllabus::ledger::forgotten_fraction(&reader).expect("checked"),
        once as f64 / seen.len() as f64
    );

    // JSON round trip and text.
    let json = serde_json::to_string(&report).expect("json");
    let back: syllabus::ledger::LedgerReport = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, report);
    let text = report.render_text();
    for needle in [
        "█",
        "p50",
        "hardest 3",
        "easiest 3",
        "alpha",
        "beta",
        "LFR paper: 25.0%",
        "LFR paper: 82.0%",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }

    // The same report on EMA losses, and without the data.
    let ema = build_report(
        &run,
        &ReportOptions {
            metric: LossMetric::EmaLoss,
            ..opts.clone()
        },
    )
    .expect("report");
    assert_eq!(ema.metric, LossMetric::EmaLoss);
    assert_ne!(ema.loss, report.loss);
    std::fs::remove_dir_all(&prepared).expect("rm");
    let bare = build_report(&run, &opts).expect("report without data");
    assert!(bare
        .data_note
        .as_deref()
        .is_some_and(|n| n.contains("not available")));
    assert!(bare
        .hardest
        .iter()
        .all(|b| b.preview.is_none() && b.source.starts_with("source ")));
    assert_eq!(bare.blocks_seen, report.blocks_seen);
    assert!(bare.render_text().contains("note: "));
}

#[test]
fn report_on_a_fresh_ledger_and_a_missing_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, ledger) = new_ledger(dir.path(), 4);
    drop(ledger);
    let report = build_report(dir.path(), &ReportOptions::default()).expect("report");
    assert_eq!((report.blocks_total, report.blocks_seen), (4, 0));
    assert!(report.loss.is_none() && report.hardest.is_empty());
    assert_eq!(report.forgetting.share_forgotten, None);
    assert!(report.data_note.is_some(), "no config.toml here");
    assert!(report
        .render_text()
        .contains("no block has been trained yet"));
    let err =
        build_report(&dir.path().join("nope"), &ReportOptions::default()).expect_err("missing");
    assert!(err.to_string().contains("ledger.bin"), "{err}");
}
