//! `syllabus fit`: read a loss table, apply the protocol, fit the requested law and collect
//! everything into a serialisable [`FitReport`].

mod chinchilla;
mod compute;

use std::path::Path;
use std::str::FromStr;

use serde::Serialize;

pub use chinchilla::{ChinchillaResult, LawCi, LawReport};
pub use compute::{ComputeResult, CrossoverReport, GroupReport, PowerLawCi};

use super::bootstrap::{Unit, UnitChoice};
use super::input::{read_table, Dataset, Format};
use super::protocol::{self, Cut, Filter, Selection};
use super::ScalingError;

/// Which law to fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// L(N, D) = E + A/N^α + B/D^β.
    Chinchilla,
    /// L = β·C^α per group.
    Compute,
}

/// Which objective(s) for the Chinchilla form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Huber,
    Lsq,
    Both,
}

impl FromStr for Form {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "chinchilla" => Ok(Self::Chinchilla),
            "compute" => Ok(Self::Compute),
            _ => Err(format!(
                "unknown form `{s}`; expected chinchilla or compute"
            )),
        }
    }
}

impl FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "huber" => Ok(Self::Huber),
            "lsq" => Ok(Self::Lsq),
            "both" => Ok(Self::Both),
            _ => Err(format!("unknown method `{s}`; expected huber, lsq or both")),
        }
    }
}

/// Everything `syllabus fit` can be told. Defaults: detect the format, Chinchilla form, both
/// methods, x = flops, no grouping, no cuts, no holdout, no bootstrap (warm-started
/// Huber refits when enabled), seed 0.
#[derive(Clone, Debug)]
pub struct FitOptions {
    pub format: Option<Format>,
    pub form: Form,
    pub method: Method,
    /// Compute axis of the compute form: `flops`, `tokens_seen`, or any numeric column such
    /// as `theoretical_hours`.
    pub x: String,
    /// Column whose values split the compute form into curves (e.g. `policy`).
    pub group_by: Option<String>,
    pub filters: Vec<Filter>,
    pub cut: Cut,
    /// Fraction held out at the end of training (0 = none), in [0, 1).
    pub holdout: f64,
    /// Bootstrap resamples (0 = no intervals).
    pub bootstrap: usize,
    pub bootstrap_unit: UnitChoice,
    /// Extra random starts from the 1,024-point grid for each Huber bootstrap refit, besides
    /// the warm start at the full-data optimum (Besiroglu et al. 2024 used a best-of-5).
    pub bootstrap_starts: usize,
    pub seed: u64,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            format: None,
            form: Form::Chinchilla,
            method: Method::Both,
            x: "flops".into(),
            group_by: None,
            filters: Vec::new(),
            cut: Cut::default(),
            holdout: 0.0,
            bootstrap: 0,
            bootstrap_unit: UnitChoice::Auto,
            bootstrap_starts: 0,
            seed: 0,
        }
    }
}

impl FitOptions {
    /// Checks the ranges of all options and reports every problem at once.
    pub fn validate(&self) -> Result<(), ScalingError> {
        let mut problems = Vec::new();
        if !(0.0..1.0).contains(&self.holdout) {
            problems.push(format!("--holdout must be in [0, 1), got {}", self.holdout));
        }
        if let Some(t) = self.cut.min_tokens {
            if !(t.is_finite() && t >= 0.0) {
                problems.push(format!("--min-tokens must be a finite count >= 0, got {t}"));
            }
        }
        if let Some(f) = self.cut.min_frac {
            if !(f > 0.0 && f <= 1.0) {
                problems.push(format!("--min-frac must be in (0, 1], got {f}"));
            }
        }
        if self.form == Form::Chinchilla && self.group_by.is_some() {
            problems.push("--group-by applies to --form compute only".into());
        }
        if self.bootstrap == 1 {
            problems.push("--bootstrap needs at least 2 resamples for an interval".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ScalingError::Options(problems))
        }
    }
}

/// The whole result of one `syllabus fit`.
#[derive(Clone, Debug, Serialize)]
pub struct FitReport {
    pub input: InputSummary,
    #[serde(flatten)]
    pub result: FitResult,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapSummary>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "form", rename_all = "lowercase")]
pub enum FitResult {
    /// Boxed: two full law reports with intervals are much larger than the compute result.
    Chinchilla(Box<ChinchillaResult>),
    Compute(ComputeResult),
}

/// What was read and what the protocol kept.
#[derive(Clone, Debug, Serialize)]
pub struct InputSummary {
    pub path: String,
    pub format: Format,
    pub format_detected: bool,
    pub mapping: String,
    pub rows_read: usize,
    pub rows_after_where: usize,
    pub dropped_min_tokens: usize,
    pub dropped_min_frac: usize,
    pub rows_fitted: usize,
    pub rows_held_out: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout_rule: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BootstrapSummary {
    pub resamples: usize,
    pub unit: Unit,
    pub note: String,
    pub seed: u64,
    pub level: f64,
    /// How each resample is refitted.
    pub refit: String,
}

/// Reads `path` and fits it.
pub fn fit_file(path: &Path, opts: &FitOptions) -> Result<FitReport, ScalingError> {
    opts.validate()?;
    let ds = read_table(path, opts.format)?;
    fit_dataset(&ds, opts)
}

/// Fits an already-read table.
pub fn fit_dataset(ds: &Dataset, opts: &FitOptions) -> Result<FitReport, ScalingError> {
    opts.validate()?;
    let selection = protocol::select(ds, &opts.filters, &opts.cut)?;
    if selection.rows.is_empty() {
        return Err(ScalingError::degenerate(
            "anything",
            format!(
                "no rows left of {} after --where and the early-checkpoint cuts",
                ds.rows.len()
            ),
        ));
    }
    match opts.form {
        Form::Chinchilla => chinchilla::run(ds, &selection, opts),
        Form::Compute => compute::run(ds, &selection, opts),
    }
}

fn input_summary(
    ds: &Dataset,
    sel: &Selection,
    fitted: usize,
    held_out: usize,
    rule: Option<String>,
) -> InputSummary {
    InputSummary {
        path: ds.path.display().to_string(),
        format: ds.format,
        format_detected: ds.detected,
        mapping: ds.format.mapping().to_string(),
        rows_read: ds.rows.len(),
        rows_after_where: sel.after_where,
        dropped_min_tokens: sel.dropped_min_tokens,
        dropped_min_frac: sel.dropped_min_frac,
        rows_fitted: fitted,
        rows_held_out: held_out,
        holdout_rule: rule,
    }
}

#[cfg(test)]
mod tests;
