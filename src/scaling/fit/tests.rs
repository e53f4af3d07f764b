//! End-to-end runs on synthetic tables in our `results.csv` layout.

use std::path::Path;

use super::*;
use crate::rng::Rng;
use crate::scaling::input::parse_table;

/// Rows `num_params,tokens_seen,loss,seed,run` for `seeds` seeds of a Chinchilla law
/// (Hoffmann et al. 2022 estimates) on a `grid` x `grid` (N, D) grid spanning N in
/// [1e7, 1e10] and D in [1e9, 1e12], with 0.5% multiplicative noise per row.
fn chinchilla_table(seeds: u64, grid: usize, data_seed: u64) -> Dataset {
    let truth = crate::scaling::chinchilla::LawParams::from_plain(1.69, 406.4, 410.7, 0.34, 0.28);
    let mut rng = Rng::new(data_seed);
    let step = 3.0 / (grid - 1) as f64;
    let mut text = String::from("num_params,tokens_seen,loss,seed,run\n");
    for seed in 0..seeds {
        for i in 0..grid {
            for j in 0..grid {
                let n = 10f64.powf(7.0 + step * i as f64);
                let d = 10f64.powf(9.0 + step * j as f64);
                let loss = truth.predict(n, d) * (0.005 * rng.normal()).exp();
                text.push_str(&format!("{n},{d},{loss},{seed},n{i}-s{seed}\n"));
            }
        }
    }
    parse_table(Path::new("synthetic.csv"), text.as_bytes(), None).unwrap()
}

/// Two policies with L = beta·H^alpha over 5 compute classes and `seeds` seeds, 0.3% noise:
/// "base" (alpha -0.05, beta 4) and "steep" (alpha -0.08, beta 5).
fn compute_table(seeds: u64, data_seed: u64) -> Dataset {
    let mut rng = Rng::new(data_seed);
    let mut text = String::from("num_params,tokens_seen,loss,seed,policy,theoretical_hours\n");
    for (policy, alpha, beta) in [("base", -0.05, 4.0), ("steep", -0.08, 5.0)] {
        for seed in 0..seeds {
            for hours in [6.0, 12.0, 24.0, 48.0, 96.0] {
                let loss: f64 = beta * f64::powf(hours, alpha) * (0.003 * rng.normal()).exp();
                text.push_str(&format!(
                    "1e8,{},{loss},{seed},{policy},{hours}\n",
                    hours * 1e9
                ));
            }
        }
    }
    parse_table(Path::new("sweep.csv"), text.as_bytes(), None).unwrap()
}

fn inside(ci: Option<[f64; 2]>, truth: f64) -> bool {
    ci.is_some_and(|[lo, hi]| lo <= truth && truth <= hi)
}

/// A 95% interval should contain the truth in most independent data sets. With 6 data
/// sets, 4 or more hits is what a coverage near 95% gives with probability > 99.9%, so a
/// failure means the intervals are far too narrow (or biased), not bad luck.
#[test]
fn chinchilla_bootstrap_intervals_over_seeds_cover_the_truth() {
    let opts = FitOptions {
        bootstrap: 50,
        seed: 3,
        ..FitOptions::default()
    };
    let mut hits = [[0usize; 3]; 2];
    for data_seed in 1..=6 {
        let report = fit_dataset(&chinchilla_table(8, 4, data_seed), &opts).unwrap();
        assert_eq!(report.bootstrap.as_ref().unwrap().unit, Unit::Seed);
        let FitResult::Chinchilla(res) = &report.result else {
            panic!("chinchilla form expected");
        };
        for (m, law) in [res.huber.as_ref(), res.lsq.as_ref()]
            .into_iter()
            .enumerate()
        {
            let ci = law.unwrap().ci.as_ref().unwrap();
            assert_eq!(ci.resamples_ok + ci.resamples_failed, 50);
            hits[m][0] += inside(ci.alpha, 0.34) as usize;
            hits[m][1] += inside(ci.beta, 0.28) as usize;
            hits[m][2] += inside(ci.e_plain, 1.69) as usize;
        }
    }
    assert!(
        hits.iter().flatten().all(|&h| h >= 4),
        "hits (alpha, beta, E) per method: {hits:?}"
    );
}

#[test]
fn bootstrap_is_reproducible_from_its_seed() {
    let ds = chinchilla_table(4, 4, 7);
    let opts = FitOptions {
        bootstrap: 20,
        seed: 11,
        method: Method::Lsq,
        ..FitOptions::default()
    };
    let ci = |r: &FitReport| match &r.result {
        FitResult::Chinchilla(c) => c.lsq.as_ref().unwrap().ci.as_ref().unwrap().alpha,
        FitResult::Compute(_) => None,
    };
    let first = fit_dataset(&ds, &opts).unwrap();
    assert_eq!(ci(&first), ci(&fit_dataset(&ds, &opts).unwrap()));
    let other = FitOptions { seed: 12, ..opts };
    assert_ne!(ci(&first), ci(&fit_dataset(&ds, &other).unwrap()));

    // Huber refits with extra random grid starts are reproducible too.
    let huber = FitOptions {
        method: Method::Huber,
        bootstrap_starts: 2,
        ..other
    };
    let huber_ci = |r: &FitReport| match &r.result {
        FitResult::Chinchilla(c) => c.huber.as_ref().unwrap().ci.as_ref().unwrap().beta,
        FitResult::Compute(_) => None,
    };
    let a = fit_dataset(&ds, &huber).unwrap();
    assert!(inside(huber_ci(&a), 0.28), "{:?}", huber_ci(&a));
    assert_eq!(huber_ci(&a), huber_ci(&fit_dataset(&ds, &huber).unwrap()));
}

#[test]
fn chinchilla_holdout_scores_the_largest_model_end() {
    let ds = chinchilla_table(1, 6, 1);
    let opts = FitOptions {
        holdout: 0.3,
        method: Method::Lsq,
        ..FitOptions::default()
    };
    let report = fit_dataset(&ds, &opts).unwrap();
    // Largest N has D in {1e9 .. 1e12}; >= 0.7 x 1e12 keeps only D = 1e12.
    assert_eq!(report.input.rows_held_out, 1);
    assert_eq!(report.input.rows_fitted, 35);
    let FitResult::Chinchilla(res) = &report.result else {
        unreachable!()
    };
    let law = res.lsq.as_ref().unwrap();
    assert!(law.are_holdout.unwrap() < 0.02, "{:?}", law.are_holdout);
    assert!(res.huber.is_none());
}

#[test]
fn compute_fit_recovers_exponents_and_the_crossover() {
    let opts = FitOptions {
        form: Form::Compute,
        x: "theoretical_hours".into(),
        group_by: Some("policy".into()),
        bootstrap: 200,
        ..FitOptions::default()
    };
    let report = fit_dataset(&compute_table(8, 5), &opts).unwrap();
    let FitResult::Compute(res) = &report.result else {
        panic!("compute form expected");
    };
    let (base, steep) = (&res.groups[0], &res.groups[1]);
    assert_eq!(
        (base.group.as_str(), steep.group.as_str()),
        ("base", "steep")
    );
    assert!((base.alpha + 0.05).abs() < 0.005, "{base:?}");
    assert!((steep.alpha + 0.08).abs() < 0.005, "{steep:?}");
    assert!((base.beta / 4.0 - 1.0).abs() < 0.02 && (steep.beta / 5.0 - 1.0).abs() < 0.02);
    let c = &res.crossovers[0];
    assert!(c.crosses && c.within_fitted_range == Some(false), "{c:?}");
    assert_eq!(c.lower_before.as_deref(), Some("base"));
    let fitted = (base.beta / steep.beta).powf(1.0 / (steep.alpha - base.alpha));
    assert!((c.x.unwrap() / fitted - 1.0).abs() < 1e-9);
}

/// Coverage of the seed bootstrap over 30 independent sweeps: at a true 95% coverage, 24 or
/// more hits out of 30 has probability > 99.9%.
#[test]
fn compute_bootstrap_intervals_cover_exponents_and_crossover() {
    let opts = FitOptions {
        form: Form::Compute,
        x: "theoretical_hours".into(),
        group_by: Some("policy".into()),
        bootstrap: 200,
        ..FitOptions::default()
    };
    let truth_x = (4.0f64 / 5.0).powf(1.0 / (-0.08 + 0.05));
    let mut hits = [0usize; 3];
    for data_seed in 0..30 {
        let report = fit_dataset(&compute_table(8, data_seed), &opts).unwrap();
        let FitResult::Compute(res) = &report.result else {
            unreachable!()
        };
        hits[0] += inside(res.groups[0].ci.as_ref().unwrap().alpha, -0.05) as usize;
        hits[1] += inside(res.groups[1].ci.as_ref().unwrap().alpha, -0.08) as usize;
        hits[2] += inside(res.crossovers[0].ci, truth_x) as usize;
    }
    assert!(
        hits.iter().all(|&h| h >= 24),
        "hits (alpha base, alpha steep, C*): {hits:?}"
    );
}

#[test]
fn compute_holdout_keeps_the_top_class_out_of_the_fit() {
    let ds = compute_table(4, 1);
    let opts = FitOptions {
        form: Form::Compute,
        x: "theoretical_hours".into(),
        group_by: Some("policy".into()),
        holdout: 0.3,
        ..FitOptions::default()
    };
    let report = fit_dataset(&ds, &opts).unwrap();
    let FitResult::Compute(res) = &report.result else {
        unreachable!()
    };
    for g in &res.groups {
        assert_eq!((g.points, g.held_out), (16, 4));
        assert_eq!(g.x_max, 48.0);
        assert!(g.are_holdout.unwrap() < 0.01);
    }
}

#[test]
fn unknown_axis_and_group_columns_are_named() {
    let ds = compute_table(1, 1);
    let mut opts = FitOptions {
        form: Form::Compute,
        x: "hours".into(),
        ..FitOptions::default()
    };
    let msg = fit_dataset(&ds, &opts).unwrap_err().to_string();
    assert!(msg.contains("--x names column `hours`"), "{msg}");
    opts.x = "flops".into();
    opts.group_by = Some("method".into());
    let msg = fit_dataset(&ds, &opts).unwrap_err().to_string();
    assert!(msg.contains("--group-by names column `method`"), "{msg}");
}

#[test]
fn invalid_options_are_reported_together() {
    let opts = FitOptions {
        holdout: 1.0,
        cut: Cut {
            min_tokens: None,
            min_frac: Some(0.0),
        },
        group_by: Some("policy".into()),
        ..FitOptions::default()
    };
    let msg = opts.validate().unwrap_err().to_string();
    assert!(msg.contains("--holdout must be in [0, 1)"), "{msg}");
    assert!(msg.contains("--min-frac must be in (0, 1]"), "{msg}");
    assert!(
        msg.contains("--group-by applies to --form compute only"),
        "{msg}"
    );
}

#[test]
fn explicit_seed_unit_without_seeds_is_an_error() {
    let text = "num_params,tokens_seen,loss\n1e7,1e9,4\n1e8,1e9,3.5\n1e7,1e10,3.4\n1e8,1e10,3\n1e9,1e9,3.2\n1e9,1e10,2.8\n1e9,1e11,2.6\n";
    let ds = parse_table(Path::new("t.csv"), text.as_bytes(), None).unwrap();
    let opts = FitOptions {
        bootstrap: 10,
        bootstrap_unit: UnitChoice::Seed,
        method: Method::Lsq,
        ..FitOptions::default()
    };
    let msg = fit_dataset(&ds, &opts).unwrap_err().to_string();
    assert!(msg.contains("needs at least 2 distinct seeds"), "{msg}");
}
