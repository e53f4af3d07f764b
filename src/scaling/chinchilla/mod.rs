//! The Chinchilla law L(N, D) = E + A/N^α + B/D^β and its two fitters: Hoffmann-style Huber
//! on log residuals from a 1,024-start grid ([`huber`]) and curve_fit-style least squares on
//! the raw loss from p0 ([`lsq`]).

pub mod form;
pub mod huber;
pub mod lsq;
pub mod warnings;

pub use form::{LawParams, Point};
pub use huber::HuberFit;
pub use lsq::LsqFit;
pub use warnings::fit_warnings;

use super::ScalingError;

/// More points than the five parameters, so that the fit leaves a residual.
pub const MIN_POINTS: usize = 6;

/// Values closer than this (relative) count as one level: digitised tables repeat a model
/// size with jitter in the last digits.
const SAME_LEVEL_RTOL: f64 = 1e-6;

/// Rejects data that cannot identify the law, naming what is missing.
pub fn check_identifiable(points: &[Point]) -> Result<(), ScalingError> {
    let what = "the Chinchilla form L(N, D) = E + A/N^alpha + B/D^beta";
    if points.len() < MIN_POINTS {
        return Err(ScalingError::degenerate(
            what,
            format!(
                "too few points: {} after filtering, need at least {MIN_POINTS} (more than its 5 parameters)",
                points.len()
            ),
        ));
    }
    let sizes = distinct(points.iter().map(|p| p.ln_n.exp()));
    if sizes.len() < 2 {
        return Err(ScalingError::degenerate(
            what,
            format!(
                "only one model size (N = {:.4e}) after filtering: A and alpha cannot be \
                 separated from E; use at least 2 model sizes (preferably 4 or more), or fit \
                 loss against compute with --form compute",
                sizes[0]
            ),
        ));
    }
    let tokens = distinct(points.iter().map(|p| p.ln_d.exp()));
    if tokens.len() < 2 {
        return Err(ScalingError::degenerate(
            what,
            format!(
                "only one token count (D = {:.4e}) after filtering: B and beta cannot be identified",
                tokens[0]
            ),
        ));
    }
    if distinct(points.iter().map(|p| p.loss)).len() < 2 {
        return Err(ScalingError::degenerate(
            what,
            format!(
                "all {} losses are equal ({}): there is nothing to fit",
                points.len(),
                points[0].loss
            ),
        ));
    }
    Ok(())
}

/// Grid-search Huber fit (see [`huber`]).
pub fn fit_huber(points: &[Point]) -> Result<HuberFit, ScalingError> {
    check_identifiable(points)?;
    huber::fit_grid(
        points,
        &huber::grid_starts(),
        huber::LbfgsSettings::default(),
    )
}

/// curve_fit-style least squares from p0 (see [`lsq`]).
pub fn fit_lsq(points: &[Point]) -> Result<LsqFit, ScalingError> {
    check_identifiable(points)?;
    lsq::fit(points, &lsq::p0())
}

/// Sorted distinct values, merging those within [`SAME_LEVEL_RTOL`].
pub fn distinct(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.dedup_by(|b, a| (*b - *a).abs() <= SAME_LEVEL_RTOL * a.abs().max(b.abs()));
    v
}

#[cfg(test)]
mod tests;
