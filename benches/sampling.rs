//! Cost of the sampling policies on synthetic ledgers (a benchmark, not a test):
//!
//! ```sh
//! cargo bench --bench sampling              # 10^6 and 10^7 blocks
//! cargo bench --bench sampling -- 1e6 1e8   # chosen sizes (10^8 needs ~8 GB of memory)
//! ```
//!
//! For each policy: microseconds per optimizer step for `next_batch` + `observe` with B = 16
//! samples per step, averaged over 1000 steps (the simulated training, i.e. writing losses and
//! state updates into the in-memory ledger, is not timed: that is the ledger's cost), and the
//! time of the policy's boundary work (epoch reshuffle, LFR focus re-rank, spaced epoch due
//! list, loss-priority rebuild, curriculum sort), which happens once per epoch or phase; `every
//! steps` is how often it recurs (one pass over the eligible blocks, or the rebuild period) and
//! `amortized` adds its share to the per-step cost.

use std::time::{Duration, Instant};

use syllabus::ledger::{BlockRecord, UpdateRule};
use syllabus::rng::Rng;
use syllabus::sampling::{
    apply_updates, Curriculum, CurriculumParams, Lfr, LfrParams, LossPriority, LossPriorityParams,
    PhaseKind, PhaseSpec, PolicyEnv, SamplingPolicy, Spaced, SpacedParams, Uniform,
};

const B: usize = 16;
const STEPS: usize = 1000;

/// A ledger where every block was trained once or a few times, with losses in [1, 5) nats,
/// Leitner boxes 1..=4 and last steps spread over one epoch.
fn synthetic_ledger(n: usize, seed: u64) -> Vec<BlockRecord> {
    let mut rng = Rng::new(seed);
    let epoch_steps = (n / B).max(1) as u64;
    (0..n)
        .map(|_| {
            let loss = 1.0 + 4.0 * rng.next_f64() as f32;
            let mut r = BlockRecord::unseen(rng.below(4) as u16);
            r.last_loss = loss;
            r.ema_loss = loss * (0.9 + 0.2 * rng.next_f64() as f32);
            r.min_loss = loss;
            r.first_loss = loss * 1.2;
            r.times_trained = 1 + rng.below(3) as u32;
            r.last_step = rng.below(epoch_steps) as u32;
            r.set_leitner_box(1 + rng.below(4) as u8);
            r
        })
        .collect()
}

/// Timings of one policy on one ledger.
struct Timing {
    per_step: Duration,
    boundary: Duration,
    boundary_what: String,
    /// Steps between two boundaries (`None`: the boundary happens once).
    period: Option<f64>,
}

/// Runs `steps` steps like the trainer; returns the time spent inside the policy.
fn run_steps(
    p: &mut dyn SamplingPolicy,
    ledger: &mut Vec<BlockRecord>,
    first: u64,
    steps: usize,
) -> Duration {
    let rule = UpdateRule::default();
    let mut rng = Rng::new(first);
    let mut inside = Duration::ZERO;
    for step in first..first + steps as u64 {
        let t = Instant::now();
        let sel = p.next_batch(B, &*ledger, step);
        inside += t.elapsed();
        apply_updates(ledger, &sel.state_updates);
        let losses: Vec<f32> = sel
            .ids
            .iter()
            .map(|_| 1.0 + 4.0 * rng.next_f64() as f32)
            .collect();
        for (&id, &l) in sel.ids.iter().zip(&losses) {
            rule.apply(&mut ledger[id], l, step);
        }
        let t = Instant::now();
        let updates = p.observe(&sel.ids, &losses, &*ledger, step);
        inside += t.elapsed();
        apply_updates(ledger, &updates);
    }
    inside
}

/// First call (the boundary work) timed alone, then `STEPS` steady steps. The period is one
/// pass over the blocks eligible after the boundary.
fn measure(p: &mut dyn SamplingPolicy, ledger: &mut Vec<BlockRecord>, what: &str) -> Timing {
    let boundary = run_steps(p, ledger, 0, 1);
    let eligible = p.report().active_fraction * ledger.len() as f64;
    let per_step = run_steps(p, ledger, 1, STEPS) / STEPS as u32;
    Timing {
        per_step,
        boundary,
        boundary_what: what.to_string(),
        period: Some(eligible / B as f64),
    }
}

fn env(n: usize) -> PolicyEnv {
    PolicyEnv {
        n_blocks: n,
        seed: 1,
        tokens_per_block: 1025,
    }
}

fn uniform(n: usize, ledger: &mut Vec<BlockRecord>) -> Timing {
    let mut p = Uniform::new(&env(n)).unwrap_or_else(|e| panic!("{e}"));
    measure(&mut p, ledger, "epoch shuffle")
}

/// LFR: a 1-step learn phase, then the focus boundary (rank, drop 50%, sync ledger, shuffle the
/// active half) is timed, then steady focus steps.
fn lfr(n: usize, ledger: &mut Vec<BlockRecord>) -> Timing {
    let phase = |kind, steps, drop_fraction| PhaseSpec {
        kind,
        epochs: None,
        steps: Some(steps),
        drop_fraction,
    };
    let params = LfrParams {
        phases: vec![
            phase(PhaseKind::Learn, 1, None),
            phase(PhaseKind::Focus, 1 << 40, Some(0.5)),
        ],
        repeat_last: 1,
        ..LfrParams::default()
    };
    let mut p = Lfr::new(params, &env(n)).unwrap_or_else(|e| panic!("{e}"));
    run_steps(&mut p, ledger, 0, 1);
    measure(&mut p, ledger, "focus re-rank (drop 50%)")
}

/// Loss-priority: steady steps, then a rebuild forced by a save/restore round trip (it would
/// otherwise happen every `rebuild_fraction * N / B` steps).
fn rebuilds(p: &dyn SamplingPolicy) -> f64 {
    let extra = p.report().extra;
    extra
        .iter()
        .find(|(k, _)| k == "rebuilds")
        .map_or(0.0, |e| e.1)
}

/// Loss-priority: steady steps; then steps until the periodic rebuild (timed: the boundary),
/// then the rebuild that a restore forces, for comparison.
fn loss_priority(n: usize, ledger: &mut Vec<BlockRecord>) -> Timing {
    let mut p =
        LossPriority::new(LossPriorityParams::default(), &env(n)).unwrap_or_else(|e| panic!("{e}"));
    run_steps(&mut p, ledger, 0, 1);
    let per_step = run_steps(&mut p, ledger, 1, STEPS) / STEPS as u32;
    let mut step = 1 + STEPS as u64;
    let before = rebuilds(&p);
    let merge = loop {
        let t = run_steps(&mut p, ledger, step, 1);
        step += 1;
        if rebuilds(&p) > before {
            break t;
        }
    };
    let saved = p.save_state();
    p.restore_state(&saved, &*ledger)
        .unwrap_or_else(|e| panic!("{e}"));
    let full = run_steps(&mut p, ledger, step, 1);
    let params = LossPriorityParams::default();
    Timing {
        per_step,
        boundary: merge,
        boundary_what: format!(
            "rebuild (periodic); after a restore: {:.1} ms",
            full.as_secs_f64() * 1e3
        ),
        period: Some(params.rebuild_fraction * n as f64 / B as f64),
    }
}

fn spaced(n: usize, ledger: &mut Vec<BlockRecord>) -> Timing {
    let mut p = Spaced::new(SpacedParams::default(), &env(n)).unwrap_or_else(|e| panic!("{e}"));
    measure(&mut p, ledger, "epoch due list")
}

fn curriculum(n: usize, ledger: &mut Vec<BlockRecord>) -> Timing {
    let params = CurriculumParams {
        ledger: "synthetic".into(),
        score: Default::default(),
        order: Default::default(),
        then: Default::default(),
    };
    let t = Instant::now();
    let mut p =
        Curriculum::from_ledger(params, &env(n), &*ledger).unwrap_or_else(|e| panic!("{e}"));
    let sort = t.elapsed();
    let timing = measure(&mut p, ledger, "order sort (construction)");
    Timing {
        boundary: sort,
        period: None,
        ..timing
    }
}

/// Peak resident memory of this process so far (Linux), in GB.
fn peak_rss_gb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1e6)
}

fn sizes() -> Vec<usize> {
    let given: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<f64>().ok())
        .map(|x| x as usize)
        .collect();
    if given.is_empty() {
        vec![1_000_000, 10_000_000]
    } else {
        given
    }
}

type Bench = fn(usize, &mut Vec<BlockRecord>) -> Timing;

fn main() {
    let policies: [(&str, Bench); 5] = [
        ("uniform", uniform),
        ("lfr", lfr),
        ("loss-priority", loss_priority),
        ("spaced", spaced),
        ("curriculum", curriculum),
    ];
    println!("B = {B} samples per step, {STEPS} steps; times inside the policy only\n");
    println!(
        "{:>12}  {:<14} {:>9}  {:>12}  {:>11}  {:>9}  boundary",
        "blocks", "policy", "us/step", "boundary ms", "every steps", "amortized"
    );
    for n in sizes() {
        for (name, bench) in policies {
            let mut ledger = synthetic_ledger(n, 7);
            let t = bench(n, &mut ledger);
            let us = t.per_step.as_secs_f64() * 1e6;
            let boundary_us = t.boundary.as_secs_f64() * 1e6;
            let (every, amortized) = match t.period {
                Some(p) => (format!("{p:.0}"), format!("{:.2}", us + boundary_us / p)),
                None => ("once".to_string(), format!("{us:.2}")),
            };
            println!(
                "{:>12}  {:<14} {:>9.2}  {:>12.1}  {:>11}  {:>9}  {}",
                n,
                name,
                us,
                boundary_us / 1e3,
                every,
                amortized,
                t.boundary_what
            );
        }
        if let Some(gb) = peak_rss_gb() {
            println!("{:>12}  peak resident memory so far: {gb:.2} GB", "");
        }
    }
}
