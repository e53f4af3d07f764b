//! Speed of the CPU passes' kernels at the shapes of the benchmarked models (a benchmark, not
//! a test), for tuning them one at a time without the rest of a training step:
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo bench --bench cpu_kernels
//! ```
//!
//! Each line: the best of `REPEATS` runs (the minimum is the least disturbed by other work on
//! the machine), in milliseconds, and the rate of the kernel's matrix products in GFLOP/s.

use std::time::Instant;

use syllabus::model::cpu::attention::{backward_rows, forward_rows, RowsDims};
use syllabus::model::cpu::lm_head::{backward, forward, HeadDims, LogitsStore};

const REPEATS: usize = 7;

/// Best of `REPEATS` calls of `f`, which returns the milliseconds it timed.
fn best_of(mut f: impl FnMut() -> f64) -> f64 {
    f(); // warm-up: first-touch page faults, thread start-up
    (0..REPEATS).map(|_| f()).fold(f64::INFINITY, f64::min)
}

/// Best wall time of `REPEATS` calls of `f`, milliseconds.
fn best_ms(mut f: impl FnMut()) -> f64 {
    best_of(|| {
        let t0 = Instant::now();
        f();
        t0.elapsed().as_secs_f64() * 1e3
    })
}

fn data(len: usize, seed: usize, scale: f32) -> Vec<f32> {
    (0..len)
        .map(|i| (((i * 7919 + seed * 104_729) % 2001) as f32 / 1000.0 - 1.0) * scale)
        .collect()
}

fn lm_head(n: usize, d: usize, v: usize) {
    let dims = HeadDims { n, d, v };
    let (h, wte) = (data(n * d, 1, 1.0), data(v * d, 2, 0.1));
    let targets: Vec<u32> = (0..n).map(|i| ((i * 7919) % v) as u32).collect();
    let mut logits = vec![0f32; n * v];
    let mut stats = Default::default();
    let fwd = best_ms(|| {
        stats = forward(&h, &wte, &targets, dims, LogitsStore::Keep(&mut logits)).1;
    });
    let discard = best_ms(|| {
        forward(&h, &wte, &targets, dims, LogitsStore::Discard);
    });
    let grad = vec![1.0 / n as f32; n];
    let (mut dh, mut dwte) = (vec![0f32; n * d], vec![0f32; v * d]);
    let inputs = (&h[..], &wte[..], &targets[..]);
    let bwd = best_ms(|| backward(inputs, dims, &logits, &stats, &grad, &mut dh, &mut dwte));
    let gflop = 2.0 * (n * d * v) as f64 / 1e9;
    println!(
        "lm_head N {n} D {d} V {v}: forward {fwd:.1} ms ({:.0} GFLOP/s; without keeping the logits {discard:.1} ms), backward {bwd:.1} ms ({:.0} GFLOP/s)",
        gflop / (fwd / 1e3),
        2.0 * gflop / (bwd / 1e3)
    );
}

fn attention(b: usize, t: usize, heads: usize, hd: usize) {
    let dims = RowsDims { b, t, heads, hd };
    let (n, d) = (b * t, heads * hd);
    let qkv = data(3 * n * d, 3, 1.0);
    let (mut y, mut lse, mut scratch) = (vec![0f32; n * d], vec![0f32; n * heads], Vec::new());
    let fwd = best_ms(|| forward_rows(&qkv, dims, &mut y, &mut lse, &mut scratch));
    let dy = data(n * d, 4, 1.0);
    let mut dqkv = vec![0f32; 3 * n * d];
    let bwd = best_ms(|| backward_rows((&qkv, &y, &dy, &lse), dims, &mut dqkv, &mut scratch));
    // Causal: about half of the T x T scores; 2 products forward, 5 backward (one recomputes S).
    let gflop = 2.0 * (b * heads * t * t * hd) as f64 / 1e9;
    println!(
        "attention B {b} T {t} H {heads} hd {hd}: forward {fwd:.1} ms ({:.0} GFLOP/s), backward {bwd:.1} ms ({:.0} GFLOP/s)",
        gflop / (fwd / 1e3),
        2.5 * gflop / (bwd / 1e3)
    );
}

fn main() {
    lm_head(2048, 128, 50257);
    lm_head(2048, 128, 8192);
    lm_head(2048, 384, 50257);
    attention(16, 128, 4, 32);
    attention(16, 128, 6, 64);
    attention(2, 1024, 12, 64);
}
