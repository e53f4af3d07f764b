//! Bootstrap confidence intervals. Seed variance is large (Hitchhiker's guide,
//! arXiv 2410.11840), so the natural unit to resample is the seed: all rows of a drawn seed enter the
//! resample together. Tables with no seeds fall back to runs or rows, and say so.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::Serialize;

use super::input::Observation;
use super::ScalingError;
use crate::rng::Rng;

/// Two-sided level of every interval.
pub const CI_LEVEL: f64 = 0.95;

/// What `--bootstrap-unit` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitChoice {
    /// Seeds when the table has at least two, rows otherwise.
    Auto,
    Seed,
    Run,
    Row,
}

impl FromStr for UnitChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "seed" => Ok(Self::Seed),
            "run" => Ok(Self::Run),
            "row" => Ok(Self::Row),
            _ => Err(format!(
                "unknown bootstrap unit `{s}`; expected auto, seed, run or row"
            )),
        }
    }
}

/// The unit actually resampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Seed,
    Run,
    Row,
}

/// Picks the unit for `rows`, with a sentence for the report. Explicit choices that the
/// data cannot support are errors rather than silent substitutions.
pub fn resolve_unit(
    choice: UnitChoice,
    rows: &[&Observation],
) -> Result<(Unit, String), ScalingError> {
    let seeds = distinct(rows.iter().filter_map(|r| r.seed.as_deref()));
    let runs = distinct(rows.iter().map(|r| r.run.as_str()));
    let row_note = |why: &str| {
        format!(
            "{why}: resampling rows (checkpoints) with replacement; rows of one run are \
             correlated, so these intervals are narrower than seed-level ones would be"
        )
    };
    match choice {
        UnitChoice::Auto if seeds >= 2 => Ok((Unit::Seed, format!("resampling {seeds} seeds"))),
        UnitChoice::Auto if seeds == 1 => Ok((Unit::Row, row_note("only one seed"))),
        UnitChoice::Auto => Ok((Unit::Row, row_note("no seed column"))),
        UnitChoice::Seed if seeds < 2 => Err(ScalingError::Options(vec![format!(
            "--bootstrap-unit seed needs at least 2 distinct seeds; the selected rows have {seeds}"
        )])),
        UnitChoice::Seed => Ok((Unit::Seed, format!("resampling {seeds} seeds"))),
        UnitChoice::Run if runs < 2 => Err(ScalingError::Options(vec![format!(
            "--bootstrap-unit run needs at least 2 runs; the selected rows have {runs}"
        )])),
        UnitChoice::Run => Ok((Unit::Run, format!("resampling {runs} runs"))),
        UnitChoice::Row => Ok((Unit::Row, row_note("rows requested"))),
    }
}

/// The label a row is resampled under.
pub fn unit_label(row: &Observation, position: usize, unit: Unit) -> String {
    match unit {
        Unit::Seed => row.seed.clone().unwrap_or_default(),
        Unit::Run => row.run.clone(),
        Unit::Row => position.to_string(),
    }
}

/// Draws resamples: within each stratum, as many units as the stratum has, with
/// replacement; a drawn unit brings all its rows.
pub struct Resampler {
    /// stratum → units → row positions.
    strata: Vec<Vec<Vec<usize>>>,
}

impl Resampler {
    /// `labels[i]` and `strata[i]` describe row position `i`. Units are ordered by label so
    /// the draw does not depend on row order.
    pub fn new(labels: &[String], strata: &[usize]) -> Self {
        let mut map: BTreeMap<usize, BTreeMap<&str, Vec<usize>>> = BTreeMap::new();
        for (i, (label, &s)) in labels.iter().zip(strata).enumerate() {
            map.entry(s).or_default().entry(label).or_default().push(i);
        }
        Self {
            strata: map
                .into_values()
                .map(|units| units.into_values().collect())
                .collect(),
        }
    }

    /// Row positions of one resample (with repeats).
    pub fn draw(&self, rng: &mut Rng) -> Vec<usize> {
        let mut out = Vec::new();
        for units in &self.strata {
            for _ in 0..units.len() {
                let u = rng.below(units.len() as u64) as usize;
                out.extend_from_slice(&units[u]);
            }
        }
        out
    }

    /// `count` resamples drawn in sequence from one generator, so the set depends only on
    /// the seed (the refits may then run in parallel).
    pub fn draws(&self, count: usize, seed: u64) -> Vec<Vec<usize>> {
        let mut rng = Rng::new(seed);
        (0..count).map(|_| self.draw(&mut rng)).collect()
    }
}

/// Percentile interval at [`CI_LEVEL`] (linear interpolation between order statistics, as
/// numpy's default); `None` without values.
pub fn percentile_ci(values: &[f64]) -> Option<[f64; 2]> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let tail = (1.0 - CI_LEVEL) / 2.0;
    Some([quantile(&v, tail), quantile(&v, 1.0 - tail)])
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn distinct<'a>(items: impl Iterator<Item = &'a str>) -> usize {
    let mut v: Vec<&str> = items.collect();
    v.sort_unstable();
    v.dedup();
    v.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let v: Vec<f64> = (0..=100).rev().map(|i| i as f64).collect();
        let [lo, hi] = percentile_ci(&v).unwrap();
        assert!(
            (lo - 2.5).abs() < 1e-12 && (hi - 97.5).abs() < 1e-12,
            "{lo} {hi}"
        );
        assert_eq!(percentile_ci(&[3.0]).unwrap(), [3.0, 3.0]);
        assert_eq!(percentile_ci(&[f64::NAN]), None);
    }

    #[test]
    fn resamples_keep_units_whole_and_strata_sizes() {
        let labels: Vec<String> = ["s1", "s1", "s2", "s2", "x", "y"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let strata = [0, 0, 0, 0, 1, 1];
        let r = Resampler::new(&labels, &strata);
        let draws = r.draws(200, 5);
        assert_eq!(draws, r.draws(200, 5), "same seed, same resamples");
        for d in &draws {
            let in_s0: Vec<usize> = d.iter().copied().filter(|&i| i < 4).collect();
            assert_eq!(in_s0.len(), 4, "two units of two rows");
            for pair in in_s0.chunks(2) {
                assert!(pair == [0, 1] || pair == [2, 3], "unit split: {pair:?}");
            }
            assert_eq!(d.iter().filter(|&&i| i >= 4).count(), 2);
        }
        assert!(
            draws.iter().any(|d| d[..4] == [0, 1, 0, 1]),
            "with replacement"
        );
    }
}
