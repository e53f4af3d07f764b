//! Cost of opening a token store, which verifies it: content checksum and token range in one
//! parallel pass (a benchmark, not a test).
//!
//! ```sh
//! cargo bench --bench store_open -- PATH.bin... [--dir D]   # copies of existing stores
//! cargo bench --bench store_open -- --tokens 2e9 [--dir D]  # a synthetic store
//! ```
//!
//! Works on files of its own in `--dir` (default: the temp dir), deleted at the end: a copy of
//! each given store, or a synthetic one written with `TokenStoreWriter`. For each: the best of
//! three opens with the file in the page cache (format 2: checksum and range; then the same
//! file rewritten as format 1: range only, so the difference is the checksum's cost), and one
//! open after evicting the file from the page cache (`posix_fadvise` DONTNEED), which adds
//! reading it from disk. Prints GB/s and the projection to 10^10 tokens.

use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use syllabus::data::{TokenStore, TokenStoreWriter, GPT2_VOCAB_SIZE};

const PROJECT_TO: f64 = 1e10;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut paths = Vec::new();
    let mut synthetic: Option<u64> = None;
    let mut dir = std::env::temp_dir();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--tokens" => {
                let n: f64 = it.next().and_then(|v| v.parse().ok()).expect("--tokens N");
                synthetic = Some(n as u64);
            }
            "--dir" => dir = PathBuf::from(it.next().expect("--dir D")),
            _ => paths.push(PathBuf::from(a)),
        }
    }
    let threads = rayon::current_num_threads();
    println!("rayon threads: {threads}");
    let own = dir.join(format!("store_open_bench_{}.bin", std::process::id()));
    if let Some(n) = synthetic {
        write_synthetic(&own, n);
        bench(&own, &format!("synthetic, {n} tokens"));
        std::fs::remove_file(&own).expect("remove the synthetic store");
    }
    for p in &paths {
        std::fs::copy(p, &own).expect("copy the store");
        bench(&own, &format!("copy of {}", p.display()));
        std::fs::remove_file(&own).expect("remove the copy");
    }
}

/// `n` pseudo-random GPT-2 ids (an LCG; the content does not matter to the checks' speed).
fn write_synthetic(path: &Path, n: u64) {
    let t = Instant::now();
    let mut w = TokenStoreWriter::create(path, GPT2_VOCAB_SIZE as u32).expect("writer");
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut buf = vec![0u32; 1 << 20];
    let mut left = n;
    while left > 0 {
        let k = left.min(buf.len() as u64) as usize;
        for t in &mut buf[..k] {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            *t = ((state >> 33) % GPT2_VOCAB_SIZE as u64) as u32;
        }
        w.push(&buf[..k]).expect("push");
        left -= k as u64;
    }
    w.finish().expect("finish");
    let s = t.elapsed().as_secs_f64();
    println!(
        "wrote {n} tokens ({:.2} GB) in {s:.1} s ({:.2} GB/s, checksum computed while streaming)",
        bytes(path) as f64 / 1e9,
        bytes(path) as f64 / 1e9 / s
    );
}

fn bytes(path: &Path) -> u64 {
    std::fs::metadata(path).expect("stat").len()
}

/// Best of three warm opens, in seconds.
fn warm_open(path: &Path) -> (f64, usize) {
    let mut best = f64::INFINITY;
    let mut len = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let store = TokenStore::open(path).expect("open");
        best = best.min(t.elapsed().as_secs_f64());
        len = store.len();
    }
    (best, len)
}

fn evict(path: &Path) {
    let f = std::fs::File::open(path).expect("open for fadvise");
    // Only clean pages can be dropped: write back a fresh copy first.
    f.sync_all().expect("fsync");
    // SAFETY: a plain syscall on a descriptor we own; it only drops clean cached pages.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise");
}

/// Rewrites the header in place as format `version` (1: no content checksum).
fn set_format(path: &Path, version: u32, crc: u32) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open rw");
    let mut h = [0u8; 64];
    f.read_exact(&mut h).expect("read header");
    h[8..12].copy_from_slice(&version.to_le_bytes());
    h[40..44].copy_from_slice(&crc.to_le_bytes());
    let sum = crc32fast::hash(&h[..60]);
    h[60..64].copy_from_slice(&sum.to_le_bytes());
    f.seek(SeekFrom::Start(0)).expect("seek");
    f.write_all(&h).expect("write header");
}

fn bench(path: &Path, what: &str) {
    let size = bytes(path) as f64;
    let (warm, len) = warm_open(path);
    let store = TokenStore::open(path).expect("open");
    let (format, crc) = (store.format_version(), store.content_crc());
    drop(store);
    let per_token = |s: f64| s / len.max(1) as f64;
    println!(
        "{what}: {len} tokens, {:.3} GB, format {format}",
        size / 1e9
    );
    println!(
        "  open, cached:    {:9.1} ms  {:6.2} GB/s  -> {:7.1} s per 1e10 tokens",
        warm * 1e3,
        size / 1e9 / warm,
        per_token(warm) * PROJECT_TO
    );
    if let Some(crc) = crc {
        set_format(path, 1, 0);
        let (range_only, _) = warm_open(path);
        set_format(path, 2, crc);
        println!(
            "  range only (as format 1), cached: {:.1} ms: the checksum adds {:.1} ms",
            range_only * 1e3,
            (warm - range_only) * 1e3
        );
    }
    evict(path);
    let t = Instant::now();
    TokenStore::open(path).expect("open");
    let cold = t.elapsed().as_secs_f64();
    println!(
        "  open, from disk: {:9.1} ms  {:6.2} GB/s  -> {:7.1} s per 1e10 tokens",
        cold * 1e3,
        size / 1e9 / cold,
        per_token(cold) * PROJECT_TO
    );
}
