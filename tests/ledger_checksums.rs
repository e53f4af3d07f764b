//! Per-record checksums of `ledger.bin`: a changed byte in any field of a record is reported,
//! naming the file and the block, by every reader (the writer's open, update, snapshot and
//! restore, the read-only reader, the statistics, the report and the `syllabus ledger`
//! command), while records being rewritten by a concurrent writer are not.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use syllabus::ledger::{
    build_report, forgotten_fraction, loss_histogram, Ledger, LedgerError, LedgerRead,
    LedgerReader, LossMetric, ReportOptions, UpdateRule, LEDGER_FILE, LEDGER_HEADER_LEN,
    RECORD_SIZE,
};

const N: usize = 6;
const BLOCK: usize = 3;

/// Offset of a record field (or of the checksum) in the file.
fn at(block: usize, field_offset: usize) -> u64 {
    (LEDGER_HEADER_LEN + RECORD_SIZE * block + field_offset) as u64
}

/// A flushed ledger of `N` blocks at `dir/ledger.bin`, every block trained twice.
fn trained_ledger(dir: &Path) -> PathBuf {
    let path = dir.join(LEDGER_FILE);
    let mut ledger = Ledger::create(&path, N, 129, 7, |i| (i % 2) as u16).expect("create");
    let ids: Vec<usize> = (0..N).collect();
    for step in 0..2u64 {
        let losses: Vec<f32> = ids.iter().map(|&i| 3.0 + i as f32 - step as f32).collect();
        ledger
            .record_losses(&ids, &losses, step, &UpdateRule::default())
            .expect("record");
    }
    ledger.flush(2).expect("flush");
    path
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for patching");
    file.write_at(bytes, offset).expect("patch");
}

/// Asserts `err` is the checksum failure of `block` in the file at `path`, and says so.
fn assert_names(err: &LedgerError, path: &Path, block: u64) {
    assert!(
        matches!(err, LedgerError::RecordChecksum { path: p, block: b } if p == path && *b == block),
        "{err:?}"
    );
    let msg = err.to_string();
    let want = format!(
        "{}: record of block {block} fails its checksum: the file is corrupted",
        path.display()
    );
    assert_eq!(msg, want);
}

/// Every byte of block `BLOCK`'s fields and checksum, changed on its own, is reported by the
/// writer's open, the read-only open, the report and resume; resume leaves the live ledger as
/// it was. The seqlock counter (bytes 30..32) is not content and not covered.
#[test]
fn a_changed_byte_in_any_field_is_detected_with_the_file_and_block_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = trained_ledger(dir.path());
    let good = std::fs::read(&path).expect("read");
    let live = dir.path().join("live").join(LEDGER_FILE);
    std::fs::create_dir_all(live.parent().expect("parent")).expect("mkdir");
    std::fs::write(&live, &good).expect("write live");
    let offsets = (0..RECORD_SIZE).filter(|o| !(30..32).contains(o));
    for offset in offsets {
        let mut bytes = good.clone();
        bytes[at(BLOCK, offset) as usize] ^= 0x41;
        std::fs::write(&path, &bytes).expect("write");
        let block = BLOCK as u64;
        assert_names(&Ledger::open_rw(&path).expect_err("rw"), &path, block);
        assert_names(&LedgerReader::open(&path).expect_err("ro"), &path, block);
        let report = build_report(dir.path(), &ReportOptions::default()).expect_err("report");
        assert_names(&report, &path, block);
        let restore = Ledger::restore_from(&path, &live).expect_err("restore");
        assert_names(&restore, &path, block);
        assert_eq!(std::fs::read(&live).expect("read"), good, "live untouched");
    }
    // The hostile examples: plausible-looking values, no structural damage.
    for (offset, value) in [
        (0, 12345f32.to_le_bytes()),
        (16, 4_000_000_000u32.to_le_bytes()),
    ] {
        let mut bytes = good.clone();
        let o = at(BLOCK, offset) as usize;
        bytes[o..o + 4].copy_from_slice(&value);
        std::fs::write(&path, &bytes).expect("write");
        assert_names(
            &LedgerReader::open(&path).expect_err("ro"),
            &path,
            BLOCK as u64,
        );
    }
}

#[test]
fn a_record_copied_into_another_blocks_slot_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = trained_ledger(dir.path());
    let mut bytes = std::fs::read(&path).expect("read");
    let (from, to) = (at(1, 0) as usize, at(BLOCK, 0) as usize);
    let record = bytes[from..from + RECORD_SIZE].to_vec();
    bytes[to..to + RECORD_SIZE].copy_from_slice(&record);
    std::fs::write(&path, &bytes).expect("write");
    assert_names(
        &Ledger::open_rw(&path).expect_err("rw"),
        &path,
        BLOCK as u64,
    );
}

/// Damage done while the ledger is open: the scans, the updates and the snapshot catch it,
/// and an update never rewrites the damaged record with a valid checksum.
#[test]
fn damage_after_opening_is_caught_by_scans_updates_and_snapshots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = trained_ledger(dir.path());
    let mut ledger = Ledger::open_rw(&path).expect("open rw");
    let reader = LedgerReader::open(&path).expect("open ro");
    write_at(&path, at(BLOCK, 16), &4_000_000_000u32.to_le_bytes());
    let block = BLOCK as u64;

    assert_names(&reader.get(BLOCK).expect_err("get"), &path, block);
    assert_names(&reader.checked_record(BLOCK).expect_err("ro"), &path, block);
    assert_names(&ledger.checked_record(BLOCK).expect_err("rw"), &path, block);
    assert_names(&reader.verify().expect_err("verify ro"), &path, block);
    assert_names(&ledger.verify().expect_err("verify rw"), &path, block);
    assert_names(&forgotten_fraction(&reader).expect_err("ff"), &path, block);
    assert_names(&forgotten_fraction(&ledger).expect_err("ff"), &path, block);
    let hist = loss_histogram(&ledger, LossMetric::LastLoss, 4).expect_err("histogram");
    assert_names(&hist, &path, block);
    let report = build_report(dir.path(), &ReportOptions::default()).expect_err("report");
    assert_names(&report, &path, block);

    let damaged = std::fs::read(&path).expect("read");
    let rule = UpdateRule::default();
    let err = ledger
        .record_losses(&[0, BLOCK], &[1.0, 1.0], 9, &rule)
        .expect_err("update of a damaged record");
    assert_names(&err, &path, block);
    let err = ledger.set_policy_state(BLOCK, 1, None).expect_err("state");
    assert_names(&err, &path, block);
    assert_eq!(
        std::fs::read(&path).expect("read"),
        damaged,
        "nothing written"
    );
    assert_eq!(
        reader.record(BLOCK).times_trained,
        4_000_000_000,
        "not laundered"
    );
    ledger
        .record_losses(&[0], &[1.0], 9, &rule)
        .expect("other records still update");

    let snap = dir.path().join("snapshot.bin");
    let err = ledger.snapshot_to(&snap, 9).expect_err("snapshot");
    assert_names(&err, &path, block);
    assert!(!snap.exists(), "no snapshot of a damaged ledger");
}

/// A record whose writer stopped mid-update (odd seq, fields of two versions) is reported as
/// half-written, not as disk corruption; an odd seq over whole fields is accepted, and the
/// seqlock counter's value is not content.
#[test]
fn half_written_records_and_the_seqlock_counter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = trained_ledger(dir.path());
    let good = std::fs::read(&path).expect("read");

    write_at(&path, at(BLOCK, 30), &7u16.to_le_bytes()); // odd: an update in progress...
    Ledger::open_rw(&path).expect("whole fields, odd seq: accepted by the writer");
    LedgerReader::open(&path).expect("...and by a reader, after waiting for it");
    write_at(&path, at(BLOCK, 0), &9.5f32.to_le_bytes()); // ...that changed a field
    let err = Ledger::open_rw(&path).expect_err("torn");
    assert!(
        matches!(&err, LedgerError::TornRecord { path: p, block: 3 } if *p == path),
        "{err:?}"
    );
    let msg = LedgerReader::open(&path).expect_err("torn").to_string();
    assert!(
        msg.contains("record of block 3 was left half-written"),
        "{msg}"
    );
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");

    std::fs::write(&path, &good).expect("restore");
    write_at(&path, at(BLOCK, 30), &1000u16.to_le_bytes()); // another even value
    LedgerReader::open(&path).expect("seq is not covered by the checksum");
}

/// Version 1 files (32-byte records without checksums, from earlier builds) are refused by
/// every opener with a message saying what they are and what to do.
#[test]
fn format_one_files_are_refused_with_a_way_forward() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(LEDGER_FILE);
    let blocks = 2u64;
    let mut bytes = vec![0u8; 64 + 32 * blocks as usize];
    bytes[..8].copy_from_slice(b"SYLLEDGR");
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    bytes[12..16].copy_from_slice(&32u32.to_le_bytes());
    bytes[16..24].copy_from_slice(&blocks.to_le_bytes());
    bytes[24..28].copy_from_slice(&129u32.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &bytes).expect("write");
    let live = dir.path().join("live.bin");
    std::fs::write(&live, b"live").expect("write");

    let errors = [
        Ledger::open_rw(&path).expect_err("rw"),
        LedgerReader::open(&path).expect_err("ro"),
        Ledger::restore_from(&path, &live).expect_err("restore"),
        build_report(dir.path(), &ReportOptions::default()).expect_err("report"),
    ];
    for err in errors {
        assert!(matches!(err, LedgerError::FormatOne { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        assert!(
            msg.contains("format version 1") && msg.contains("new run"),
            "{msg}"
        );
    }
    assert_eq!(std::fs::read(&live).expect("read"), b"live");
}

/// The hostile-user scenario end to end: `syllabus ledger RUN_DIR` on a damaged ledger exits
/// non-zero with the message instead of printing a report.
#[test]
fn the_ledger_command_fails_on_a_damaged_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = trained_ledger(dir.path());
    write_at(&path, at(BLOCK, 0), &12345f32.to_le_bytes());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_syllabus"))
        .args(["ledger", "."])
        .current_dir(dir.path())
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .expect("binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("record of block 3 fails its checksum: the file is corrupted"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("12345"));
}

/// A reader checking records (point reads, full verification, opening, statistics) while the
/// writer rewrites them never reports a record as corrupt: the checksum is written inside the
/// seqlock bracket, and checked only on copies the seqlock vouches for.
#[test]
fn records_being_rewritten_are_not_reported_as_corrupt() {
    const STEPS: u64 = 200_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(LEDGER_FILE);
    let n = 8;
    let mut ledger = Ledger::create(&path, n, 129, 1, |_| 0).expect("create");
    let reader = LedgerReader::open(&path).expect("open");
    let done = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let (done_r, started_r) = (Arc::clone(&done), Arc::clone(&started));
    let reader_path = path.clone();
    let checker = std::thread::spawn(move || {
        let (mut rounds, mut mid_run) = (0u64, 0u64);
        started_r.store(true, Ordering::Release);
        while !done_r.load(Ordering::Acquire) {
            for id in 0..n {
                let r = reader.get(id).expect("whole record").expect("in range");
                mid_run += u64::from(r.seen() && u64::from(r.last_step) + 1 < STEPS);
            }
            // Mostly point reads, the tightest loop around the writer's bracket; now and then
            // the whole-ledger checks.
            if rounds % 16 == 0 {
                reader.verify().expect("verify while written");
                forgotten_fraction(&reader).expect("statistics while written");
            }
            if rounds % 1024 == 0 {
                LedgerReader::open(&reader_path).expect("open while written");
            }
            rounds += 1;
        }
        (rounds, mid_run)
    });
    while !started.load(Ordering::Acquire) {
        std::thread::yield_now(); // overlap the reader with all of the writes
    }
    let ids: Vec<usize> = (0..n).collect();
    let rule = UpdateRule::default();
    for step in 0..STEPS {
        let losses: Vec<f32> = ids.iter().map(|&i| (step + i as u64) as f32).collect();
        ledger
            .record_losses(&ids, &losses, step, &rule)
            .expect("record");
        if step % 1000 == 0 {
            ledger
                .set_policy_state(step as usize % n, 1, Some(2))
                .expect("state");
        }
    }
    done.store(true, Ordering::Release);
    let (rounds, mid_run) = checker.join().expect("reader thread");
    assert!(
        rounds > 0 && mid_run > 0,
        "the reader ran while the writer was writing"
    );
    ledger.verify().expect("whole at the end");
}
