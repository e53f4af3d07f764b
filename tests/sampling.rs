//! Sampling policies through their public API, driven like the trainer drives them: choose a
//! batch, write the state updates, record the losses in the ledger, observe, write the updates.

use syllabus::ledger::{BlockRecord, Ledger, LedgerRead, UpdateRule};
use syllabus::sampling::{
    apply_updates, leitner_interval, PolicyEnv, Registry, SamplingError, SamplingPolicy, Selection,
    SpacedParams, DROPPED,
};

#[path = "../examples/custom_policy.rs"]
#[allow(dead_code)] // its `main`
mod custom_policy;

fn env(n: usize, seed: u64) -> PolicyEnv {
    PolicyEnv {
        n_blocks: n,
        seed,
        tokens_per_block: 129,
    }
}

fn table(s: &str) -> toml::Table {
    toml::from_str(s).unwrap_or_else(|e| panic!("bad test TOML {s:?}: {e}"))
}

fn create(name: &str, params: &str, n: usize, seed: u64) -> Box<dyn SamplingPolicy> {
    Registry::builtin()
        .create(name, &table(params), &env(n, seed))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A deterministic pseudo-random number in [0, 1) from a key (for losses and noise).
fn hash01(a: u64, b: u64) -> f32 {
    let mut x = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_add(0xD1B5_4A32_D192_ED03);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x >> 40) as f32 / (1u64 << 24) as f32
}

/// Loss model: each block has a difficulty in [1, 5) that decays as it is trained, plus noise
/// (so losses sometimes rise, which `spaced` needs).
fn noisy_loss(id: usize, r: &BlockRecord, step: u64) -> f32 {
    let base = 1.0 + 4.0 * hash01(id as u64, 0);
    base * 0.9f32.powi(r.times_trained as i32) + 0.2 * (hash01(id as u64, step + 1) - 0.5)
}

/// The trainer's side of the protocol over an in-memory ledger.
#[derive(Clone)]
struct Sim {
    ledger: Vec<BlockRecord>,
    step: u64,
    n: usize,
}

impl Sim {
    fn new(blocks: usize, n: usize) -> Self {
        let ledger = (0..blocks)
            .map(|i| BlockRecord::unseen((i % 3) as u16))
            .collect();
        Self { ledger, step: 0, n }
    }

    fn run(
        &mut self,
        p: &mut dyn SamplingPolicy,
        loss: impl Fn(usize, &BlockRecord, u64) -> f32,
    ) -> Vec<usize> {
        let sel = p.next_batch(self.n, &self.ledger, self.step);
        assert_eq!(sel.ids.len(), self.n, "{}: batch size", p.name());
        apply_updates(&mut self.ledger, &sel.state_updates);
        let losses: Vec<f32> = sel
            .ids
            .iter()
            .map(|&id| loss(id, &self.ledger[id], self.step))
            .collect();
        let rule = UpdateRule::default();
        for (&id, &l) in sel.ids.iter().zip(&losses) {
            rule.apply(&mut self.ledger[id], l, self.step);
        }
        let updates = p.observe(&sel.ids, &losses, &self.ledger, self.step);
        apply_updates(&mut self.ledger, &updates);
        self.step += 1;
        sel.ids
    }

    fn steps(&mut self, p: &mut dyn SamplingPolicy, k: usize) -> Vec<Vec<usize>> {
        (0..k).map(|_| self.run(p, noisy_loss)).collect()
    }
}

/// Every built-in policy with small-run parameters: (name, params).
fn all_policies(curriculum_ledger: &str) -> Vec<(&'static str, String)> {
    vec![
        ("uniform", String::new()),
        ("lfr", String::new()),
        ("lfr", "drop = \"random\"\nreview = false".into()),
        ("loss-priority", "rebuild_fraction = 0.1".into()),
        ("spaced", String::new()),
        (
            "curriculum",
            format!("ledger = {curriculum_ledger:?}\nthen = \"uniform\""),
        ),
    ]
}

/// A ledger file with scores, for `curriculum`: block i has ema (and last) loss `score(i)`.
fn score_ledger(dir: &tempfile::TempDir, n: usize, score: impl Fn(usize) -> f32) -> String {
    let path = dir.path().join("ledger.bin");
    let mut ledger =
        Ledger::create(&path, n, 129, 1, |i| (i % 3) as u16).unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<usize> = (0..n).collect();
    let losses: Vec<f32> = ids.iter().map(|&i| score(i)).collect();
    ledger
        .record_losses(&ids, &losses, 0, &UpdateRule::default())
        .unwrap_or_else(|e| panic!("{e}"));
    ledger.flush(1).unwrap_or_else(|e| panic!("{e}"));
    path.to_string_lossy().into_owned()
}

#[test]
fn every_policy_is_deterministic_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = score_ledger(&dir, 60, |i| hash01(i as u64, 9) * 4.0);
    for (name, params) in all_policies(&path) {
        let mut a = create(name, &params, 60, 5);
        let mut b = create(name, &params, 60, 5);
        let (mut sa, mut sb) = (Sim::new(60, 4), Sim::new(60, 4));
        assert_eq!(
            sa.steps(a.as_mut(), 90),
            sb.steps(b.as_mut(), 90),
            "{name} {params}"
        );
        for cut in [0, 1, 7, 15, 16, 20, 31, 47, 64] {
            let mut live = create(name, &params, 60, 5);
            let mut sim = Sim::new(60, 4);
            sim.steps(live.as_mut(), cut);
            let (saved, mut sim2) = (live.save_state(), sim.clone());
            let expected = sim.steps(live.as_mut(), 40);
            let mut resumed = create(name, &params, 60, 5);
            resumed
                .restore_state(&saved, &sim2.ledger)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let got = sim2.steps(resumed.as_mut(), 40);
            assert_eq!(got, expected, "{name} {params}: resume after {cut} steps");
            assert_eq!(sim2.ledger, sim.ledger, "{name}: ledger after resume");
            let (mut r, mut l) = (resumed.report(), live.report());
            if name == "loss-priority" {
                // Queue sizes describe the data structure, which a restore rebuilds.
                (r.extra, l.extra) = (Vec::new(), Vec::new());
            }
            assert_eq!(r, l, "{name}: report after resume");
        }
    }
}

#[test]
fn a_different_seed_gives_a_different_order() {
    let (mut a, mut b) = (create("uniform", "", 50, 1), create("uniform", "", 50, 2));
    let (mut sa, mut sb) = (Sim::new(50, 5), Sim::new(50, 5));
    assert_ne!(sa.steps(a.as_mut(), 10), sb.steps(b.as_mut(), 10));
}

#[test]
fn uniform_epochs_are_permutations() {
    let mut p = create("uniform", "", 10, 3);
    let ids: Vec<usize> = Sim::new(10, 3).steps(p.as_mut(), 10).concat();
    for epoch in ids.chunks(10) {
        let mut e = epoch.to_vec();
        e.sort_unstable();
        assert_eq!(e, (0..10).collect::<Vec<_>>());
    }
    assert_eq!(p.report().epoch, 2);
}

/// Phase index after each of `steps` steps.
fn phases(p: &mut dyn SamplingPolicy, sim: &mut Sim, steps: usize) -> Vec<u32> {
    (0..steps)
        .map(|_| {
            sim.run(p, noisy_loss);
            p.report().phase
        })
        .collect()
}

/// Run lengths of equal consecutive values.
fn run_lengths(xs: &[u32]) -> Vec<(u32, usize)> {
    let mut out: Vec<(u32, usize)> = Vec::new();
    for &x in xs {
        match out.last_mut() {
            Some((v, k)) if *v == x => *k += 1,
            _ => out.push((x, 1)),
        }
    }
    out
}

#[test]
fn lfr_phase_lengths_follow_the_schedule() {
    // N = 100, 10 per step: learn 10 steps; focus (50 active) 5; review 10; focus (30 active)
    // 3 steps x 5 repetitions; then the last phase continues.
    let mut p = create("lfr", "", 100, 1);
    let got = run_lengths(&phases(p.as_mut(), &mut Sim::new(100, 10), 50));
    let want = vec![
        (0, 10),
        (1, 5),
        (2, 10),
        (3, 3),
        (4, 3),
        (5, 3),
        (6, 3),
        (7, 13),
    ];
    assert_eq!(got, want);
    let r = p.report();
    assert_eq!((r.phase_name.as_str(), r.active_fraction), ("focus", 0.3));

    let steps = "phases = [{ kind = \"learn\", steps = 4 }, \
                 { kind = \"focus\", epochs = 2.0, drop_fraction = 0.25 }]\nrepeat_last = 2";
    let mut p = create("lfr", steps, 100, 1);
    let got = run_lengths(&phases(p.as_mut(), &mut Sim::new(100, 10), 30));
    assert_eq!(got, vec![(0, 4), (1, 15), (2, 11)]);
}

#[test]
fn lfr_says_how_its_schedule_fits_the_budget() {
    // The simulated lengths above: 10 + 5 + 10 + 5 x 3 = 40 steps.
    let p = create("lfr", "", 100, 1);
    let long = p
        .plan_note(50, 10)
        .expect("a schedule shorter than the budget is noted");
    assert!(long.contains("about 40 of the 50 planned steps"), "{long}");
    assert!(long.contains("(focus, 30 of 100 blocks active)"), "{long}");
    assert!(
        long.contains("remaining 10 steps, about 3.3 more passes"),
        "{long}"
    );
    let short = p
        .plan_note(12, 10)
        .expect("a budget that cuts the schedule is noted");
    assert!(short.contains("ends in phase 2 of 8 (focus)"), "{short}");
    assert_eq!(
        p.plan_note(40, 10),
        None,
        "a budget the schedule fills needs no note"
    );
    assert_eq!(
        p.plan_note(38, 10),
        None,
        "one ending in the last phase neither"
    );
    assert_eq!(create("uniform", "", 100, 1).plan_note(50, 10), None);
}

/// Runs `lfr` with `params` on 100 blocks until the first focus batch; returns the ledger
/// before that batch and the ids it dropped.
fn first_focus(params: &str, seed: u64) -> (Vec<BlockRecord>, Vec<usize>) {
    let mut p = create("lfr", params, 100, seed);
    let mut sim = Sim::new(100, 10);
    sim.steps(p.as_mut(), 10);
    let before = sim.ledger.clone();
    let sel = p.next_batch(10, &sim.ledger, 10);
    assert!(sel.state_updates.iter().all(|u| u.policy_state == DROPPED));
    let dropped: Vec<usize> = sel.state_updates.iter().map(|u| u.id).collect();
    assert!(
        sel.ids.iter().all(|id| !dropped.contains(id)),
        "trains a dropped block"
    );
    (before, dropped)
}

fn sorted_by_last_loss(ledger: &[BlockRecord]) -> Vec<usize> {
    let mut ids: Vec<usize> = (0..ledger.len()).collect();
    ids.sort_by(|&a, &b| ledger[a].last_loss.total_cmp(&ledger[b].last_loss));
    ids
}

#[test]
fn lfr_focus_drops_by_the_chosen_rule() {
    let (ledger, mut low) = first_focus("", 1);
    assert_eq!(low.len(), 50);
    let order = sorted_by_last_loss(&ledger);
    let mut want = order[..50].to_vec();
    want.sort_unstable();
    low.sort_unstable();
    assert_eq!(low, want, "drop = lowest");

    let (_, mut high) = first_focus("drop = \"highest\"", 1);
    let mut want = order[50..].to_vec();
    want.sort_unstable();
    high.sort_unstable();
    assert_eq!(high, want, "drop = highest");

    let (_, random) = first_focus("drop = \"random\"", 1);
    let (_, again) = first_focus("drop = \"random\"", 1);
    let (_, other) = first_focus("drop = \"random\"", 2);
    assert_eq!(random.len(), 50);
    assert_eq!(random, again, "seeded");
    assert_ne!(random, other);
    assert!(random.iter().any(|id| !low.contains(id)) && random.iter().any(|id| low.contains(id)));
}

fn dropped_count(ledger: &[BlockRecord]) -> usize {
    ledger.iter().filter(|r| r.policy_state == DROPPED).count()
}

#[test]
fn lfr_review_brings_every_block_back() {
    let mut p = create("lfr", "", 100, 1);
    let mut sim = Sim::new(100, 10);
    sim.steps(p.as_mut(), 15);
    assert_eq!(dropped_count(&sim.ledger), 50);
    let trained_before: Vec<u32> = sim.ledger.iter().map(|r| r.times_trained).collect();
    sim.steps(p.as_mut(), 10); // the review phase
    assert_eq!(dropped_count(&sim.ledger), 0);
    let each_once = sim
        .ledger
        .iter()
        .zip(&trained_before)
        .all(|(r, t)| r.times_trained == t + 1);
    assert!(each_once, "review trains (and re-records) every block once");
    sim.steps(p.as_mut(), 1);
    assert_eq!(dropped_count(&sim.ledger), 70);
}

#[test]
fn lfr_without_review_never_reactivates() {
    let mut p = create("lfr", "review = false", 100, 1);
    let mut sim = Sim::new(100, 10);
    let mut dropped = [false; 100];
    let mut counts = Vec::new();
    let mut names = Vec::new();
    for _ in 0..40 {
        sim.run(p.as_mut(), noisy_loss);
        names.push(p.report().phase_name);
        for (d, r) in dropped.iter_mut().zip(&sim.ledger) {
            assert!(
                !(*d && r.policy_state != DROPPED),
                "a dropped block came back"
            );
            *d = r.policy_state == DROPPED;
        }
        counts.push(dropped_count(&sim.ledger));
    }
    // learn 10 steps, focus 5, review-off (1 epoch of the 50 active) 5, then 70% dropped.
    assert_eq!(
        (counts[9], counts[10], counts[19], counts[20]),
        (0, 50, 50, 70)
    );
    assert!(names[15..20].iter().all(|n| n == "review-off"), "{names:?}");
    assert_eq!(p.report().phase, 7);
}

#[test]
fn lfr_never_drops_unseen_blocks() {
    let params = "phases = [{ kind = \"learn\", steps = 3 }, \
                  { kind = \"focus\", steps = 5, drop_fraction = 0.5 }]";
    let mut p = create("lfr", params, 100, 1);
    let mut sim = Sim::new(100, 10);
    sim.steps(p.as_mut(), 4);
    let dropped: Vec<&BlockRecord> = sim
        .ledger
        .iter()
        .filter(|r| r.policy_state == DROPPED)
        .collect();
    assert_eq!(dropped.len(), 30, "only the 30 seen blocks can be dropped");
    let unseen_trained = sim
        .ledger
        .iter()
        .filter(|r| r.times_trained == 1 && r.last_step == 3);
    assert_eq!(
        unseen_trained.count(),
        10,
        "the focus batch trains never-seen blocks"
    );
}

/// A ledger where every block was seen at step 0 with ema loss `score(id)`.
fn seen_ledger(n: usize, score: impl Fn(usize) -> f32) -> Vec<BlockRecord> {
    (0..n)
        .map(|i| {
            let mut r = BlockRecord::unseen(0);
            UpdateRule::default().apply(&mut r, score(i), 0);
            r
        })
        .collect()
}

#[test]
fn loss_priority_picks_the_highest_loss_blocks_and_unseen_first() {
    let ledger = seen_ledger(100, |i| i as f32 * 0.01);
    let mut p = create("loss-priority", "", 100, 1);
    let ids = p.next_batch(5, &ledger, 1).ids;
    assert_eq!(ids, vec![99, 98, 97, 96, 95]);

    let mut ledger = seen_ledger(100, |i| 10.0 + i as f32);
    ledger[42] = BlockRecord::unseen(0);
    ledger[7] = BlockRecord::unseen(0);
    let mut p = create("loss-priority", "", 100, 1);
    let mut ids = p.next_batch(4, &ledger, 1).ids;
    ids[..2].sort_unstable();
    assert_eq!(ids, vec![7, 42, 99, 98]);
}

#[test]
fn loss_priority_does_not_starve_low_loss_blocks() {
    // Constant losses 1..3 nats (spread 2): with staleness_bonus 1 and E = 50 / 5 = 10 steps,
    // a block waits at most E (1 + 2 / 1) + 1 = 31 steps once every block was seen.
    let loss = |id: usize, _: &BlockRecord, _: u64| 1.0 + 2.0 * id as f32 / 49.0;
    let mut p = create("loss-priority", "rebuild_fraction = 0.2", 50, 3);
    let mut sim = Sim::new(50, 5);
    let mut last = vec![0u64; 50];
    let mut worst = 0;
    let mut count = vec![0u32; 50];
    for _ in 0..400 {
        let step = sim.step;
        for id in sim.run(p.as_mut(), loss) {
            if step >= 10 {
                worst = worst.max(step - last[id]);
            }
            last[id] = step;
            count[id] += 1;
        }
    }
    assert!(worst <= 31, "a block waited {worst} steps");
    assert!(count[0] >= 10, "the easiest block is still trained");
    assert!(
        count[49] > 2 * count[0],
        "harder blocks are trained more often: {count:?}"
    );
}

#[test]
fn spaced_box_transitions() {
    let p = SpacedParams {
        max_box: 3,
        tolerance: 0.1,
    };
    assert_eq!(p.next_box(0, f32::NAN, 5.0), 1, "first sight");
    assert_eq!(p.next_box(1, 5.0, 4.0), 2, "improved");
    assert_eq!(p.next_box(3, 5.0, 4.0), 3, "capped");
    assert_eq!(p.next_box(3, 4.0, 4.05), 3, "within tolerance");
    assert_eq!(p.next_box(3, 4.0, 4.5), 1, "regressed");
    assert_eq!(
        (1..=4).map(leitner_interval).collect::<Vec<_>>(),
        vec![1, 2, 4, 8]
    );
}

#[test]
fn spaced_reviews_box_b_every_2_pow_b_minus_1_epochs() {
    // Blocks 0..10 always improve (their boxes climb); 10..20 always get worse (box 1).
    let loss = |id: usize, r: &BlockRecord, _: u64| {
        let t = r.times_trained as f32 * 0.01;
        if id < 10 {
            5.0 - t
        } else {
            1.0 + t
        }
    };
    let mut p = create("spaced", "", 20, 1);
    let mut sim = Sim::new(20, 5);
    let mut seen_in: Vec<Vec<u64>> = vec![Vec::new(); 20];
    for _ in 0..120 {
        let ids = sim.run(p.as_mut(), loss);
        let epoch = p.report().epoch;
        for id in ids {
            if seen_in[id].last() != Some(&epoch) {
                seen_in[id].push(epoch);
            }
        }
    }
    for (id, epochs) in seen_in.iter().enumerate() {
        if id < 10 {
            assert_eq!(epochs[..5], [0, 1, 3, 7, 15], "improving block {id}");
        } else {
            assert_eq!(
                epochs[..16],
                (0..16).collect::<Vec<u64>>()[..],
                "regressing block {id}"
            );
        }
    }
    assert!(sim.ledger[..10].iter().all(|r| r.leitner_box() >= 5));
    assert!(sim.ledger[10..].iter().all(|r| r.leitner_box() == 1));
}

#[test]
fn curriculum_orders_by_the_previous_ledger() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let score = |i: usize| {
        if i == 3 {
            f32::NAN
        } else {
            (i * 7 % 10) as f32
        }
    };
    let path = score_ledger(&dir, 10, score);
    let mut easy = create("curriculum", &format!("ledger = {path:?}"), 10, 1);
    let first: Vec<usize> = Sim::new(10, 5).steps(easy.as_mut(), 4).concat();
    // Scores by id: 0, 7, 4, NaN, 8, 5, 2, 9, 6, 3; NaN (never trained) is the hardest.
    let want = vec![0, 6, 9, 2, 5, 8, 1, 4, 7, 3];
    assert_eq!(first[..10], want[..]);
    assert_eq!(first[10..], want[..], "then = repeat");

    let params = format!("ledger = {path:?}\norder = \"hard_first\"\nthen = \"uniform\"");
    let mut hard = create("curriculum", &params, 10, 1);
    let ids: Vec<usize> = Sim::new(10, 5).steps(hard.as_mut(), 4).concat();
    let reversed: Vec<usize> = want.iter().rev().copied().collect();
    assert_eq!(ids[..10], reversed[..], "hard first: NaN first");
    assert_ne!(ids[10..], reversed[..], "then = uniform shuffles");
    let mut second = ids[10..].to_vec();
    second.sort_unstable();
    assert_eq!(second, (0..10).collect::<Vec<_>>());
}

fn error_of(name: &str, params: &str) -> String {
    match Registry::builtin().create(name, &table(params), &env(100, 1)) {
        Ok(_) => panic!("{name} accepted {params:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn registry_rejects_bad_names_keys_and_values() {
    let e = error_of("lrf", "");
    assert!(
        e.contains("`lrf`")
            && e.contains("curriculum, lfr, loss-priority, online-batch, spaced, uniform"),
        "{e}"
    );

    let e = error_of("lfr", "dropp = \"lowest\"");
    assert!(
        e.starts_with("sampling.lfr: ") && e.contains("dropp"),
        "{e}"
    );
    let e = error_of(
        "lfr",
        "phases = [{ kind = \"focus\", drop_fraction = 0.5, rescore = true }]",
    );
    assert!(e.contains("rescore"), "{e}");
    let e = error_of("lfr", "drop = \"middle\"");
    assert!(e.contains("middle"), "{e}");
    let e = error_of("uniform", "seed = 3");
    assert!(
        e.starts_with("sampling.uniform: ") && e.contains("seed"),
        "{e}"
    );
    let e = error_of("spaced", "max_box = 9\ntolerance = -1.0");
    assert!(e.contains("max_box") && e.contains("tolerance"), "{e}");

    let bad = "repeat_last = 0\nphases = [{ kind = \"learn\", drop_fraction = 0.1 }, \
               { kind = \"focus\", epochs = 1, drop_fraction = 1.5 }, \
               { kind = \"review\", epochs = 0.0, steps = 3 }]";
    match Registry::builtin().create("lfr", &table(bad), &env(100, 1)) {
        Err(SamplingError::Invalid { policy, problems }) => {
            assert_eq!(policy, "lfr");
            assert_eq!(problems.len(), 4, "{problems:?}");
        }
        other => panic!("expected Invalid, got {:?}", other.err()),
    }
    let e = error_of(
        "loss-priority",
        "staleness_bonus = 0.0\nrebuild_fraction = 2.0",
    );
    assert!(
        e.contains("staleness_bonus") && e.contains("rebuild_fraction"),
        "{e}"
    );
    let e = error_of("curriculum", "ledger = \"/nonexistent/ledger.bin\"");
    assert!(
        e.contains("sampling.curriculum") && e.contains("/nonexistent/ledger.bin"),
        "{e}"
    );
    let e = error_of("curriculum", "");
    assert!(e.contains("ledger"), "{e}");
}

#[test]
fn registry_register_and_names() {
    let mut r = Registry::builtin();
    assert_eq!(
        r.names(),
        [
            "curriculum",
            "lfr",
            "loss-priority",
            "online-batch",
            "spaced",
            "uniform"
        ]
    );
    let dup = r.register("uniform", custom_policy::construct);
    assert!(matches!(dup, Err(SamplingError::DuplicatePolicy(ref n)) if n == "uniform"));
    r.register(custom_policy::NAME, custom_policy::construct)
        .unwrap_or_else(|e| panic!("{e}"));
    // A constructor may capture configuration of its own.
    let batch_of_ones = vec![1usize; 4];
    r.register("fixed", move |_: &toml::Table, _: &PolicyEnv| {
        Ok(Box::new(Fixed(batch_of_ones.clone())) as Box<dyn SamplingPolicy>)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.contains(custom_policy::NAME) && r.contains("fixed"));
    let mut fixed = r.create("fixed", &table(""), &env(10, 1)).unwrap();
    let sel = fixed.next_batch(4, &Sim::new(10, 4).ledger, 0);
    assert_eq!(sel.ids, [1, 1, 1, 1]);
    // The trait's defaults: no state, every block active, the type's name.
    assert!(fixed.save_state().is_null());
    assert_eq!(fixed.report().active_fraction, 1.0);
    assert!(fixed.name().ends_with("Fixed"), "{}", fixed.name());
    let e = error_of(custom_policy::NAME, "");
    assert!(
        e.contains(custom_policy::NAME),
        "not in the builtin registry: {e}"
    );
}

/// A stateless policy: only `next_batch` is written.
struct Fixed(Vec<usize>);

impl SamplingPolicy for Fixed {
    fn next_batch(&mut self, _n: usize, _: &dyn LedgerRead, _: u64) -> Selection {
        Selection::ids(self.0.clone())
    }
}

#[test]
fn restoring_another_policys_state_fails() {
    let saved = create("uniform", "", 10, 1).save_state();
    let mut lfr = create("lfr", "", 10, 1);
    let e = lfr.restore_state(&saved, &Sim::new(10, 2).ledger);
    assert!(matches!(e, Err(SamplingError::State { .. })));
    let mut uniform = create("uniform", "", 10, 1);
    let short = Sim::new(9, 2).ledger;
    assert!(
        uniform.restore_state(&saved, &short).is_err(),
        "ledger of another size"
    );
}

#[test]
fn the_example_policy_balances_sources_and_resumes_exactly() {
    let mut reg = Registry::builtin();
    reg.register(custom_policy::NAME, custom_policy::construct)
        .unwrap_or_else(|e| panic!("{e}"));
    let make = |params: &str| reg.create(custom_policy::NAME, &table(params), &env(90, 4));
    let e = make("skip = 1").err().expect("unknown key").to_string();
    assert!(e.contains("round-robin") && e.contains("skip"), "{e}");
    // Sources 0, 1, 2 of 60, 20 and 10 blocks: each gets a third of the samples.
    let mut sim = Sim::new(90, 6);
    for (id, r) in sim.ledger.iter_mut().enumerate() {
        r.source = match id {
            0..60 => 0,
            60..80 => 1,
            _ => 2,
        };
    }
    let mut a = make("").unwrap();
    let first = sim.steps(a.as_mut(), 7);
    let per_source = |ids: &[Vec<usize>]| {
        let mut n = [0usize; 3];
        ids.concat()
            .iter()
            .for_each(|&id| n[sim.ledger[id].source as usize] += 1);
        n
    };
    assert_eq!(per_source(&first), [14, 14, 14]);
    let (saved, mut sim2) = (a.save_state(), sim.clone());
    let mut b = make("").unwrap();
    b.restore_state(&saved, &sim2.ledger)
        .unwrap_or_else(|e| panic!("{e}"));
    let ids = sim.steps(a.as_mut(), 20);
    assert_eq!(sim2.steps(b.as_mut(), 20), ids, "resumed exactly");
}

#[test]
fn selections_a_trainer_cannot_use_are_errors_naming_the_policy() {
    let ok = Selection::ids(vec![0, 9]);
    assert!(ok.check("p", 3, 2, 10).is_ok());
    let short = Selection::ids(vec![0])
        .check("p", 3, 2, 10)
        .unwrap_err()
        .to_string();
    assert!(short.contains("`p` at step 3") && short.contains("1 block ids for a batch of 2"));
    let mut far = Selection::ids(vec![0, 1]);
    far.score = vec![10];
    let e = far.check("p", 3, 2, 10).unwrap_err().to_string();
    assert!(e.contains("block id 10 is out of range (0..10)"), "{e}");
}
