//! The sweep's loss-vs-compute analysis: one power law L = beta * C^alpha per policy, fitted to
//! each run's final loss against its charged compute (Languini's per-class comparison,
//! Languini Kitchen, arXiv 2309.11197), with bootstrap intervals over seeds and the crossover, and the compute
//! ratio at which each policy reaches the baseline's measured final loss.

use std::collections::BTreeMap;
use std::path::Path;

use super::{final_rows, mean_std, FittedLine, ResultRow};
use crate::scaling::fit::{ComputeResult, GroupReport};
use crate::scaling::{fit_file, Cut, FitOptions, FitReport, FitResult, Form, ScalingError};

/// Bootstrap resamples of the sweep's fits (seeds resampled when there are two or more).
pub const BOOTSTRAP: usize = 1000;

/// The compute axis of the fits: reference hours when every row has them, else FLOPs.
pub fn compute_axis(rows: &[ResultRow]) -> &'static str {
    match rows.iter().all(|r| r.theoretical_hours.is_some()) {
        true => "theoretical_hours",
        false => "flops",
    }
}

/// Fits the final evaluations in `results_csv` per policy.
pub fn fit_policies(results_csv: &Path, rows: &[ResultRow]) -> Result<FitReport, ScalingError> {
    let opts = FitOptions {
        form: Form::Compute,
        x: compute_axis(rows).into(),
        group_by: Some("policy".into()),
        cut: Cut {
            min_tokens: None,
            min_frac: Some(1.0),
        },
        bootstrap: BOOTSTRAP,
        ..FitOptions::default()
    };
    fit_file(results_csv, &opts)
}

/// The fitted lines, for the plot.
pub fn fitted_lines(report: &FitReport) -> Vec<FittedLine> {
    groups(report)
        .iter()
        .map(|g| FittedLine {
            policy: g.group.clone(),
            alpha: g.alpha,
            beta: g.beta,
        })
        .collect()
}

fn groups(report: &FitReport) -> &[GroupReport] {
    match &report.result {
        FitResult::Compute(ComputeResult { groups, .. }) => groups,
        FitResult::Chinchilla(_) => &[],
    }
}

/// Markdown: the fit report, and per compute class the compute each policy's law needs to
/// reach the `baseline` policy's mean final loss, as a multiple of the baseline's compute.
pub fn render(
    report: &FitReport,
    rows: &[ResultRow],
    baseline: &str,
    classes: &[String],
) -> String {
    let mut out = format!(
        "\n## Loss vs compute (L = beta * C^alpha per policy, final evaluations, C = {})\n\n\
         ```\n{}```\n",
        compute_axis(rows),
        report.render_text()
    );
    let laws: BTreeMap<&str, &GroupReport> = groups(report)
        .iter()
        .map(|g| (g.group.as_str(), g))
        .collect();
    if !laws.contains_key(baseline) || laws.len() < 2 {
        return out;
    }
    out += &format!(
        "\n### Compute to reach `{baseline}`'s final loss\n\nC_p(L) = (L / beta_p)^(1 / alpha_p) \
         for the baseline's mean final loss L at each class, divided by the baseline's compute \
         there: < 1 means the policy needs less compute. Extrapolated where C_p lies outside \
         the policy's fitted range.\n\n| class | {baseline} loss | compute | {} |\n|---|---|---|{}\n",
        laws.keys().filter(|p| **p != baseline).copied().collect::<Vec<_>>().join(" | "),
        "---|".repeat(laws.len() - 1)
    );
    let finals = final_rows(rows);
    let axis = compute_axis(rows);
    for class in classes {
        let base: Vec<&&ResultRow> = finals
            .iter()
            .filter(|r| &r.compute_class == class && r.policy == baseline)
            .collect();
        if base.is_empty() {
            continue;
        }
        let (loss, _) = mean_std(&base.iter().map(|r| r.loss).collect::<Vec<_>>());
        let compute = mean_std(&base.iter().map(|r| x_of(r, axis)).collect::<Vec<_>>()).0;
        let ratios: Vec<String> = laws
            .iter()
            .filter(|(p, _)| **p != baseline)
            .map(|(_, g)| {
                let needed = (loss / g.beta).powf(1.0 / g.alpha);
                let outside = needed < g.x_min || needed > g.x_max;
                format!(
                    "{:.3}{}",
                    needed / compute,
                    if outside { " (extrapolated)" } else { "" }
                )
            })
            .collect();
        out += &format!(
            "| {class} | {loss:.4} | {compute:.4e} | {} |\n",
            ratios.join(" | ")
        );
    }
    out
}

/// A row's value on `axis` (`compute_axis`).
pub fn x_of(r: &ResultRow, axis: &str) -> f64 {
    match axis {
        "theoretical_hours" => r.theoretical_hours.unwrap_or(f64::NAN),
        _ => r.flops,
    }
}
