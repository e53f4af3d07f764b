//! The loss-vs-compute run: one power law per group, held-out ARE, pairwise crossovers and
//! their bootstrap intervals.

use rayon::prelude::*;
use serde::Serialize;

use super::{input_summary, BootstrapSummary, FitOptions, FitReport, FitResult};
use crate::scaling::bootstrap::{self, percentile_ci, Resampler, Unit, CI_LEVEL};
use crate::scaling::compute::{crossover, fit_power_law, PowerLaw};
use crate::scaling::input::{Dataset, Observation};
use crate::scaling::protocol::{self, Selection};
use crate::scaling::ScalingError;

#[derive(Clone, Debug, Serialize)]
pub struct ComputeResult {
    /// The compute axis.
    pub x: String,
    pub group_by: Option<String>,
    pub groups: Vec<GroupReport>,
    pub crossovers: Vec<CrossoverReport>,
}

/// L = beta · x^alpha for one group.
#[derive(Clone, Debug, Serialize)]
pub struct GroupReport {
    pub group: String,
    pub points: usize,
    pub held_out: usize,
    /// Range of x the curve was fitted on.
    pub x_min: f64,
    pub x_max: f64,
    pub alpha: f64,
    pub beta: f64,
    pub are_fit: Option<f64>,
    pub are_holdout: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci: Option<PowerLawCi>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PowerLawCi {
    pub alpha: Option<[f64; 2]>,
    pub beta: Option<[f64; 2]>,
    pub resamples_ok: usize,
    pub resamples_failed: usize,
}

/// Where the curves of two groups cross.
#[derive(Clone, Debug, Serialize)]
pub struct CrossoverReport {
    pub groups: [String; 2],
    pub crosses: bool,
    /// C* = (beta1/beta2)^(1/(alpha2 - alpha1)).
    pub x: Option<f64>,
    /// Whether C* lies where both curves were fitted; otherwise it is an extrapolation.
    pub within_fitted_range: Option<bool>,
    pub lower_before: Option<String>,
    pub lower_after: Option<String>,
    pub note: String,
    /// Interval of C* over the resamples in which the curves cross.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci: Option<[f64; 2]>,
    /// Share of the successful resamples in which the curves cross at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap_cross_share: Option<f64>,
}

/// One fitted row: its group, compute, loss.
struct Item<'a> {
    group: usize,
    x: f64,
    loss: f64,
    row: &'a Observation,
}

pub(super) fn run(
    ds: &Dataset,
    sel: &Selection,
    opts: &FitOptions,
) -> Result<FitReport, ScalingError> {
    if !ds.has_value_column(&opts.x) {
        return Err(ScalingError::UnknownColumn {
            option: "--x".into(),
            column: opts.x.clone(),
            found: ds.all_columns(),
        });
    }
    let (names, members) = group_rows(ds, sel, opts.group_by.as_deref())?;
    let mut train: Vec<Item> = Vec::new();
    let mut groups = Vec::new();
    let mut held_out_total = 0;
    for (g, rows) in members.iter().enumerate() {
        let xs = rows
            .iter()
            .map(|&r| ds.value(&ds.rows[r], &opts.x))
            .collect::<Result<Vec<f64>, _>>()?;
        let (fit_pos, test_pos) = protocol::holdout_by_x(&xs, opts.holdout);
        let pts: Vec<(f64, f64)> = fit_pos
            .iter()
            .map(|&i| (xs[i], ds.rows[rows[i]].loss))
            .collect();
        let law = fit_power_law(&names[g], &pts)?;
        let score = |pos: &[usize]| {
            protocol::are(pos.iter().map(|&i| {
                let row = &ds.rows[rows[i]];
                (row.loss, law.predict(xs[i]))
            }))
        };
        groups.push(GroupReport {
            group: names[g].clone(),
            points: fit_pos.len(),
            held_out: test_pos.len(),
            x_min: pts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min),
            x_max: pts.iter().map(|p| p.0).fold(0.0, f64::max),
            alpha: law.alpha,
            beta: law.beta,
            are_fit: score(&fit_pos),
            are_holdout: score(&test_pos),
            ci: None,
        });
        held_out_total += test_pos.len();
        train.extend(fit_pos.iter().map(|&i| Item {
            group: g,
            x: xs[i],
            loss: ds.rows[rows[i]].loss,
            row: &ds.rows[rows[i]],
        }));
    }
    let mut crossovers = pairwise_crossovers(&groups);
    let summary = if opts.bootstrap > 0 {
        Some(bootstrap_groups(
            &train,
            &mut groups,
            &mut crossovers,
            opts,
        )?)
    } else {
        None
    };
    let rule = (opts.holdout > 0.0).then(|| {
        format!(
            "per group: points with {} >= {:.2} x the group's largest",
            opts.x,
            1.0 - opts.holdout
        )
    });
    Ok(FitReport {
        input: input_summary(ds, sel, train.len(), held_out_total, rule),
        result: FitResult::Compute(ComputeResult {
            x: opts.x.clone(),
            group_by: opts.group_by.clone(),
            groups,
            crossovers,
        }),
        bootstrap: summary,
    })
}

/// Group names in order of first appearance, and their rows.
fn group_rows(
    ds: &Dataset,
    sel: &Selection,
    group_by: Option<&str>,
) -> Result<(Vec<String>, Vec<Vec<usize>>), ScalingError> {
    let Some(column) = group_by else {
        return Ok((vec!["all".into()], vec![sel.rows.clone()]));
    };
    let i = ds
        .column(column)
        .ok_or_else(|| ScalingError::UnknownColumn {
            option: "--group-by".into(),
            column: column.into(),
            found: ds.columns.clone(),
        })?;
    let (mut names, mut members): (Vec<String>, Vec<Vec<usize>>) = (Vec::new(), Vec::new());
    for &r in &sel.rows {
        let name = ds.rows[r].fields.get(i).map_or("", |s| s.trim());
        match names.iter().position(|n| n == name) {
            Some(g) => members[g].push(r),
            None => {
                names.push(name.to_string());
                members.push(vec![r]);
            }
        }
    }
    Ok((names, members))
}

fn pairwise_crossovers(groups: &[GroupReport]) -> Vec<CrossoverReport> {
    let mut out = Vec::new();
    for i in 0..groups.len() {
        for j in i + 1..groups.len() {
            out.push(crossover_report(&groups[i], &groups[j]));
        }
    }
    out
}

fn law_of(g: &GroupReport) -> PowerLaw {
    PowerLaw {
        alpha: g.alpha,
        beta: g.beta,
    }
}

fn crossover_report(g1: &GroupReport, g2: &GroupReport) -> CrossoverReport {
    let names = [g1.group.clone(), g2.group.clone()];
    let Some(c) = crossover(&law_of(g1), &law_of(g2)) else {
        return CrossoverReport {
            groups: names,
            crosses: false,
            x: None,
            within_fitted_range: None,
            lower_before: None,
            lower_after: None,
            note: "the curves do not cross (equal exponents: parallel in log-log)".into(),
            ci: None,
            bootstrap_cross_share: None,
        };
    };
    let (lo, hi) = (g1.x_min.max(g2.x_min), g1.x_max.min(g2.x_max));
    let within = c.x >= lo && c.x <= hi;
    let note = if within {
        "the curves cross inside the range both were fitted on".to_string()
    } else {
        format!(
            "the crossing is outside the range both curves were fitted on ([{lo:.4e}, {hi:.4e}]): \
             an extrapolation"
        )
    };
    CrossoverReport {
        lower_before: Some(names[c.lower_before].clone()),
        lower_after: Some(names[1 - c.lower_before].clone()),
        groups: names,
        crosses: true,
        x: Some(c.x),
        within_fitted_range: Some(within),
        note,
        ci: None,
        bootstrap_cross_share: None,
    }
}

/// Seeds are resampled jointly across groups (paired: a drawn seed brings its rows in every
/// group); runs and rows are resampled within each group so that group sizes stay fixed.
fn bootstrap_groups(
    train: &[Item],
    groups: &mut [GroupReport],
    crossovers: &mut [CrossoverReport],
    opts: &FitOptions,
) -> Result<BootstrapSummary, ScalingError> {
    let rows: Vec<&Observation> = train.iter().map(|t| t.row).collect();
    let (unit, note) = bootstrap::resolve_unit(opts.bootstrap_unit, &rows)?;
    let labels: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| bootstrap::unit_label(r, i, unit))
        .collect();
    let strata: Vec<usize> = match unit {
        Unit::Seed => vec![0; train.len()],
        Unit::Run | Unit::Row => train.iter().map(|t| t.group).collect(),
    };
    let draws = Resampler::new(&labels, &strata).draws(opts.bootstrap, opts.seed);
    let fits: Vec<Vec<Option<PowerLaw>>> = draws
        .par_iter()
        .map(|d| {
            (0..groups.len())
                .map(|g| {
                    let pts: Vec<(f64, f64)> = d
                        .iter()
                        .filter(|&&i| train[i].group == g)
                        .map(|&i| (train[i].x, train[i].loss))
                        .collect();
                    fit_power_law("", &pts).ok()
                })
                .collect()
        })
        .collect();
    for (g, report) in groups.iter_mut().enumerate() {
        let ok: Vec<PowerLaw> = fits.iter().filter_map(|f| f[g]).collect();
        report.ci = Some(PowerLawCi {
            alpha: percentile_ci(&ok.iter().map(|l| l.alpha).collect::<Vec<_>>()),
            beta: percentile_ci(&ok.iter().map(|l| l.beta).collect::<Vec<_>>()),
            resamples_ok: ok.len(),
            resamples_failed: fits.len() - ok.len(),
        });
    }
    let index = |name: &str| groups.iter().position(|g| g.group == name);
    for c in crossovers.iter_mut() {
        let (Some(i), Some(j)) = (index(&c.groups[0]), index(&c.groups[1])) else {
            continue;
        };
        let pairs: Vec<(PowerLaw, PowerLaw)> =
            fits.iter().filter_map(|f| Some((f[i]?, f[j]?))).collect();
        let xs: Vec<f64> = pairs
            .iter()
            .filter_map(|(a, b)| crossover(a, b).map(|c| c.x))
            .collect();
        c.ci = percentile_ci(&xs);
        c.bootstrap_cross_share = (!pairs.is_empty()).then(|| xs.len() as f64 / pairs.len() as f64);
    }
    Ok(BootstrapSummary {
        resamples: opts.bootstrap,
        unit,
        note,
        seed: opts.seed,
        level: CI_LEVEL,
        refit: "closed-form least-squares line in log-log per group".into(),
    })
}
