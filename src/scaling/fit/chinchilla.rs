//! The Chinchilla-form run: holdout split, Huber and/or least-squares fits, ARE, bootstrap.

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::{input_summary, BootstrapSummary, FitOptions, FitReport, FitResult, Method};
use crate::rng::Rng;
use crate::scaling::bootstrap::{self, percentile_ci, Resampler, CI_LEVEL};
use crate::scaling::chinchilla::{self, huber, lsq, LawParams, Point};
use crate::scaling::input::{Dataset, Observation};
use crate::scaling::protocol::{self, Selection};
use crate::scaling::ScalingError;

#[derive(Clone, Debug, Serialize)]
pub struct ChinchillaResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub huber: Option<LawReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lsq: Option<LawReport>,
}

/// One fitted law, under the paper's plain names plus the fitted logs.
#[derive(Clone, Debug, Serialize)]
pub struct LawReport {
    #[serde(rename = "E")]
    pub e_plain: f64,
    #[serde(rename = "A")]
    pub a_plain: f64,
    #[serde(rename = "B")]
    pub b_plain: f64,
    pub alpha: f64,
    pub beta: f64,
    /// ln A, ln B, ln E as fitted.
    pub a: f64,
    pub b: f64,
    pub e: f64,
    pub objective: f64,
    pub objective_kind: String,
    /// ARE on the fitted rows (in-sample).
    pub are_fit: Option<f64>,
    /// ARE on the held-out rows.
    pub are_holdout: Option<f64>,
    pub optimizer: String,
    /// Why some parameters may not be identified even though the fit converged.
    pub warnings: Vec<String>,
    /// Wall time of the fit itself (without the bootstrap).
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci: Option<LawCi>,
}

/// 95% percentile intervals over the successful resamples.
#[derive(Clone, Debug, Serialize)]
pub struct LawCi {
    #[serde(rename = "E")]
    pub e_plain: Option<[f64; 2]>,
    #[serde(rename = "A")]
    pub a_plain: Option<[f64; 2]>,
    #[serde(rename = "B")]
    pub b_plain: Option<[f64; 2]>,
    pub alpha: Option<[f64; 2]>,
    pub beta: Option<[f64; 2]>,
    pub resamples_ok: usize,
    /// Resamples that could not identify the law (e.g. one model size drawn) or whose
    /// refit failed; they are left out of the intervals.
    pub resamples_failed: usize,
    pub seconds: f64,
}

pub(super) fn run(
    ds: &Dataset,
    sel: &Selection,
    opts: &FitOptions,
) -> Result<FitReport, ScalingError> {
    let split = protocol::holdout_largest_n(ds, &sel.rows, opts.holdout);
    let train: Vec<Point> = split.train.iter().map(|&r| point(&ds.rows[r])).collect();
    let test: Vec<Point> = split.test.iter().map(|&r| point(&ds.rows[r])).collect();
    chinchilla::check_identifiable(&train)?;
    let (draws, summary) = match opts.bootstrap {
        0 => (Vec::new(), None),
        count => {
            let rows: Vec<&Observation> = split.train.iter().map(|&r| &ds.rows[r]).collect();
            let (unit, note) = bootstrap::resolve_unit(opts.bootstrap_unit, &rows)?;
            let labels: Vec<String> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| bootstrap::unit_label(r, i, unit))
                .collect();
            let draws = Resampler::new(&labels, &vec![0; labels.len()]).draws(count, opts.seed);
            let summary = BootstrapSummary {
                resamples: count,
                unit,
                note,
                seed: opts.seed,
                level: CI_LEVEL,
                refit: refit_description(opts),
            };
            (draws, Some(summary))
        }
    };
    let mut result = ChinchillaResult {
        huber: None,
        lsq: None,
    };
    if matches!(opts.method, Method::Huber | Method::Both) {
        let starts = random_grid_starts(draws.len(), opts.bootstrap_starts, opts.seed);
        result.huber = Some(huber_report(&train, &test, &draws, &starts)?);
    }
    if matches!(opts.method, Method::Lsq | Method::Both) {
        result.lsq = Some(lsq_report(&train, &test, &draws)?);
    }
    Ok(FitReport {
        input: input_summary(ds, sel, split.train.len(), split.test.len(), split.rule),
        result: FitResult::Chinchilla(Box::new(result)),
        bootstrap: summary,
    })
}

/// How the bootstrap refits each resample, for the methods that run.
fn refit_description(opts: &FitOptions) -> String {
    let huber = format!(
        "huber: L-BFGS warm-started at the full-data optimum plus {} random grid start(s), \
         best kept (not the 1,024-start grid)",
        opts.bootstrap_starts
    );
    let lsq = "lsq: Levenberg-Marquardt from p0, as the point fit".to_string();
    match opts.method {
        Method::Huber => huber,
        Method::Lsq => lsq,
        Method::Both => format!("{huber}; {lsq}"),
    }
}

fn point(row: &Observation) -> Point {
    Point::new(row.num_params, row.tokens, row.loss)
}

/// For each resample, `per_resample` grid starts drawn uniformly (a stream forked from the
/// bootstrap seed, so the resamples themselves do not change with this option).
fn random_grid_starts(resamples: usize, per_resample: usize, seed: u64) -> Vec<Vec<LawParams>> {
    let grid = huber::grid_starts();
    let mut rng = Rng::new(seed).fork();
    (0..resamples)
        .map(|_| {
            (0..per_resample)
                .map(|_| grid[rng.below(grid.len() as u64) as usize])
                .collect()
        })
        .collect()
}

fn huber_report(
    train: &[Point],
    test: &[Point],
    draws: &[Vec<usize>],
    extra_starts: &[Vec<LawParams>],
) -> Result<LawReport, ScalingError> {
    let clock = Instant::now();
    let fit = chinchilla::fit_huber(train)?;
    let seconds = clock.elapsed().as_secs_f64();
    let optimizer = format!(
        "L-BFGS (More-Thuente) from {} grid starts: {} converged, {} stopped by the line \
         search, {} at the {}-iteration limit, {} non-finite",
        fit.starts,
        fit.converged,
        fit.line_search_stopped,
        fit.iteration_limit,
        huber::LbfgsSettings::default().max_iters,
        fit.failed
    );
    let ci = bootstrap_ci(train, draws, |i, pts| {
        let settings = huber::LbfgsSettings::default();
        std::iter::once(fit.law)
            .chain(extra_starts[i].iter().copied())
            .map(|s| huber::minimize_from(pts, s.coords(), settings))
            .filter(|r| r.outcome != huber::Outcome::Failed)
            .min_by(|x, y| x.objective.total_cmp(&y.objective))
            .map(|r| LawParams::from_coords(&r.coords))
    });
    Ok(law_report(
        &fit.law,
        fit.objective,
        "sum of Huber(delta = 1e-3) of log residuals",
        optimizer,
        seconds,
        train,
        test,
        ci,
    ))
}

fn lsq_report(
    train: &[Point],
    test: &[Point],
    draws: &[Vec<usize>],
) -> Result<LawReport, ScalingError> {
    let clock = Instant::now();
    let fit = chinchilla::fit_lsq(train)?;
    let seconds = clock.elapsed().as_secs_f64();
    let optimizer = format!(
        "Levenberg-Marquardt from p0: {} after {} iterations",
        if fit.converged {
            "converged"
        } else {
            "iteration limit"
        },
        fit.iterations
    );
    let ci = bootstrap_ci(train, draws, |_, pts| {
        lsq::fit(pts, &lsq::p0()).ok().map(|f| f.law)
    });
    Ok(law_report(
        &fit.law,
        fit.objective,
        "sum of squared loss residuals",
        optimizer,
        seconds,
        train,
        test,
        ci,
    ))
}

/// Refits every resample (in parallel; the draws are fixed beforehand, so the result does
/// not depend on scheduling) and turns the parameter samples into intervals.
fn bootstrap_ci<F>(train: &[Point], draws: &[Vec<usize>], refit: F) -> Option<LawCi>
where
    F: Fn(usize, &[Point]) -> Option<LawParams> + Sync,
{
    if draws.is_empty() {
        return None;
    }
    let clock = Instant::now();
    let laws: Vec<Option<LawParams>> = draws
        .par_iter()
        .enumerate()
        .map(|(i, d)| {
            let pts: Vec<Point> = d.iter().map(|&r| train[r]).collect();
            chinchilla::check_identifiable(&pts).ok()?;
            refit(i, &pts)
        })
        .collect();
    let ok: Vec<LawParams> = laws.iter().flatten().copied().collect();
    let ci = |f: fn(&LawParams) -> f64| percentile_ci(&ok.iter().map(f).collect::<Vec<_>>());
    Some(LawCi {
        e_plain: ci(LawParams::big_e),
        a_plain: ci(LawParams::big_a),
        b_plain: ci(LawParams::big_b),
        alpha: ci(|l| l.alpha),
        beta: ci(|l| l.beta),
        resamples_ok: ok.len(),
        resamples_failed: draws.len() - ok.len(),
        seconds: clock.elapsed().as_secs_f64(),
    })
}

#[allow(clippy::too_many_arguments)]
fn law_report(
    law: &LawParams,
    objective: f64,
    objective_kind: &str,
    optimizer: String,
    seconds: f64,
    train: &[Point],
    test: &[Point],
    ci: Option<LawCi>,
) -> LawReport {
    let score = |pts: &[Point]| protocol::are(pts.iter().map(|p| (p.loss, law.predict_point(p))));
    LawReport {
        e_plain: law.big_e(),
        a_plain: law.big_a(),
        b_plain: law.big_b(),
        alpha: law.alpha,
        beta: law.beta,
        a: law.a,
        b: law.b,
        e: law.e,
        objective,
        objective_kind: objective_kind.into(),
        are_fit: score(train),
        are_holdout: score(test),
        optimizer,
        warnings: chinchilla::fit_warnings(train, law),
        seconds,
        ci,
    }
}
