//! The estimation protocol of the Hitchhiker's guide (arXiv 2410.11840): select rows,
//! drop early checkpoints, hold out the end of the largest run, and score predictions with
//! ARE = mean |L − L̂| / L.

use std::collections::HashMap;
use std::str::FromStr;

use super::chinchilla::distinct;
use super::input::Dataset;
use super::ScalingError;

/// `--where COLUMN=VALUE`: keep rows whose raw cell equals VALUE (after trimming).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub column: String,
    pub value: String,
}

impl FromStr for Filter {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((c, v)) if !c.trim().is_empty() => Ok(Filter {
                column: c.trim().to_string(),
                value: v.trim().to_string(),
            }),
            _ => Err(format!("expected COLUMN=VALUE, got `{s}`")),
        }
    }
}

/// Early-checkpoint cuts. ColPret keeps tokens_seen > 1e10 for billion-parameter families;
/// at our scale a fraction of each run is the natural cut.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cut {
    /// Drop rows with tokens_seen below this.
    pub min_tokens: Option<f64>,
    /// Drop rows with tokens_seen below this fraction of their run's largest tokens_seen.
    pub min_frac: Option<f64>,
}

/// Rows (indices into `Dataset::rows`) that survive filters and cuts, with the counts.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    pub rows: Vec<usize>,
    pub after_where: usize,
    pub dropped_min_tokens: usize,
    pub dropped_min_frac: usize,
}

pub fn select(ds: &Dataset, filters: &[Filter], cut: &Cut) -> Result<Selection, ScalingError> {
    let mut columns = Vec::new();
    for f in filters {
        let i = ds
            .column(&f.column)
            .ok_or_else(|| ScalingError::UnknownColumn {
                option: "--where".into(),
                column: f.column.clone(),
                found: ds.columns.clone(),
            })?;
        columns.push((i, f.value.as_str()));
    }
    let matched: Vec<usize> = (0..ds.rows.len())
        .filter(|&r| {
            let fields = &ds.rows[r].fields;
            columns
                .iter()
                .all(|&(i, v)| fields.get(i).is_some_and(|c| c.trim() == v))
        })
        .collect();
    let after_where = matched.len();
    // A run's length is judged on all its selected rows, before any cut.
    let mut run_max: HashMap<&str, f64> = HashMap::new();
    for &r in &matched {
        let row = &ds.rows[r];
        let m = run_max.entry(row.run.as_str()).or_insert(0.0);
        *m = m.max(row.tokens);
    }
    let (mut dropped_min_tokens, mut dropped_min_frac) = (0, 0);
    let mut rows = Vec::with_capacity(matched.len());
    for r in matched {
        let row = &ds.rows[r];
        if cut.min_tokens.is_some_and(|t| row.tokens < t) {
            dropped_min_tokens += 1;
        } else if cut
            .min_frac
            .is_some_and(|f| row.tokens < f * run_max[row.run.as_str()])
        {
            dropped_min_frac += 1;
        } else {
            rows.push(r);
        }
    }
    Ok(Selection {
        rows,
        after_where,
        dropped_min_tokens,
        dropped_min_frac,
    })
}

/// Rows to fit on and rows to score on, with the rule in words.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
    pub rule: Option<String>,
}

/// Holds out the last `frac` of the largest model's training: the rows of every run whose N
/// is the largest with tokens_seen ≥ (1 − frac) · (their largest tokens_seen). ColPret's
/// target is the largest model of a family, tested at ≥ 70% of its tokens (§3.3). The
/// target's earlier checkpoints stay in the fit, as do all smaller models.
pub fn holdout_largest_n(ds: &Dataset, rows: &[usize], frac: f64) -> Split {
    if frac <= 0.0 || rows.is_empty() {
        return Split {
            train: rows.to_vec(),
            test: Vec::new(),
            rule: None,
        };
    }
    let sizes = distinct(rows.iter().map(|&r| ds.rows[r].num_params));
    let largest = sizes[sizes.len() - 1];
    let same = |n: f64| distinct([n, largest].into_iter()).len() == 1;
    let target: Vec<usize> = rows
        .iter()
        .copied()
        .filter(|&r| same(ds.rows[r].num_params))
        .collect();
    let max_tokens = target
        .iter()
        .map(|&r| ds.rows[r].tokens)
        .fold(0.0, f64::max);
    let threshold = (1.0 - frac) * max_tokens;
    let (test, train): (Vec<usize>, Vec<usize>) = rows
        .iter()
        .partition(|&&r| same(ds.rows[r].num_params) && ds.rows[r].tokens >= threshold);
    let runs = distinct_count(target.iter().map(|&r| ds.rows[r].run.as_str()));
    Split {
        train,
        test,
        rule: Some(format!(
            "largest N = {largest:.3e} ({runs} run(s)): rows with tokens_seen >= {:.2} x {max_tokens:.3e}",
            1.0 - frac
        )),
    }
}

/// For a compute curve: the points with x ≥ (1 − frac) · max x are held out. Returns
/// (train, test) positions into `xs`.
pub fn holdout_by_x(xs: &[f64], frac: f64) -> (Vec<usize>, Vec<usize>) {
    let all = 0..xs.len();
    if frac <= 0.0 {
        return (all.collect(), Vec::new());
    }
    let threshold = (1.0 - frac) * xs.iter().copied().fold(0.0, f64::max);
    let (test, train) = all.partition(|&i| xs[i] >= threshold);
    (train, test)
}

/// ARE = mean |L − L̂| / L over (actual, predicted) pairs (ColPret
/// `mean_normalized_distance` with abs=True); `None` for no pairs.
pub fn are(pairs: impl IntoIterator<Item = (f64, f64)>) -> Option<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    for (actual, predicted) in pairs {
        sum += (actual - predicted).abs() / actual;
        n += 1;
    }
    (n > 0).then(|| sum / n as f64)
}

fn distinct_count<'a>(items: impl Iterator<Item = &'a str>) -> usize {
    let mut v: Vec<&str> = items.collect();
    v.sort_unstable();
    v.dedup();
    v.len()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::scaling::input::parse_table;

    /// Two runs of two sizes, checkpoints at 10..100 tokens, plus a `policy` column.
    fn table() -> Dataset {
        let mut text = String::from("num_params,tokens_seen,loss,run,policy\n");
        for (n, run, policy) in [(1e6, "small", "a"), (4e6, "big", "b")] {
            for k in 1..=10 {
                let loss = 4.0 - 0.1 * k as f64;
                text.push_str(&format!("{n},{},{loss},{run},{policy}\n", 10 * k));
            }
        }
        parse_table(Path::new("t.csv"), text.as_bytes(), None).unwrap()
    }

    #[test]
    fn are_is_the_mean_relative_absolute_error() {
        let v = are([(2.0, 2.2), (4.0, 3.0), (1.0, 1.0)]).unwrap();
        assert!((v - (0.1 + 0.25 + 0.0) / 3.0).abs() < 1e-15);
        assert_eq!(are(std::iter::empty()), None);
    }

    #[test]
    fn holdout_takes_the_last_30_percent_of_the_largest_run() {
        let ds = table();
        let all: Vec<usize> = (0..ds.rows.len()).collect();
        let split = holdout_largest_n(&ds, &all, 0.3);
        // Big run's checkpoints at 70, 80, 90, 100 tokens (>= 0.7 x 100).
        let tokens: Vec<f64> = split.test.iter().map(|&r| ds.rows[r].tokens).collect();
        assert_eq!(tokens, vec![70.0, 80.0, 90.0, 100.0]);
        assert!(split.test.iter().all(|&r| ds.rows[r].run == "big"));
        assert_eq!(split.train.len(), 16);
        assert!(split
            .rule
            .unwrap()
            .contains("largest N = 4.000e6 (1 run(s))"));
        let none = holdout_largest_n(&ds, &all, 0.0);
        assert_eq!((none.train.len(), none.test.len()), (20, 0));
    }

    #[test]
    fn holdout_by_x_splits_at_the_fraction_of_the_largest_x() {
        let (train, test) = holdout_by_x(&[6.0, 12.0, 24.0, 48.0, 96.0], 0.3);
        assert_eq!((train, test), (vec![0, 1, 2, 3], vec![4]));
    }

    #[test]
    fn where_filters_and_cuts_drop_rows_and_count_them() {
        let ds = table();
        let f: Filter = "policy=b".parse().unwrap();
        let s = select(&ds, std::slice::from_ref(&f), &Cut::default()).unwrap();
        assert_eq!((s.after_where, s.rows.len()), (10, 10));
        let cut = Cut {
            min_tokens: Some(30.0),
            min_frac: Some(0.5),
        };
        let s = select(&ds, &[f], &cut).unwrap();
        // 10, 20 below 30 tokens; 30, 40 below half of 100.
        assert_eq!((s.dropped_min_tokens, s.dropped_min_frac), (2, 2));
        assert_eq!(s.rows.len(), 6);
        // min_frac = 1 keeps only each run's last checkpoint.
        let last = Cut {
            min_tokens: None,
            min_frac: Some(1.0),
        };
        let s = select(&ds, &[], &last).unwrap();
        assert!(s.rows.iter().all(|&r| ds.rows[r].tokens == 100.0) && s.rows.len() == 2);
    }

    #[test]
    fn where_on_a_missing_column_names_it_and_bad_syntax_is_explained() {
        let ds = table();
        let f: Filter = "data=c4".parse().unwrap();
        let msg = select(&ds, &[f], &Cut::default()).unwrap_err().to_string();
        assert!(msg.contains("--where names column `data`"), "{msg}");
        assert!("policy"
            .parse::<Filter>()
            .unwrap_err()
            .contains("COLUMN=VALUE"));
    }
}
