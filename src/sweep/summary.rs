//! `summary.md`: per compute class, each policy's final validation loss as mean +- sample std
//! over seeds, with the compute it was charged.

use std::collections::BTreeMap;

use super::ResultRow;

/// Final row (last evaluation) of every run.
pub fn final_rows(rows: &[ResultRow]) -> Vec<&ResultRow> {
    let mut last: BTreeMap<&str, &ResultRow> = BTreeMap::new();
    for r in rows {
        let e = last.entry(r.model_name.as_str()).or_insert(r);
        if r.checkpoint > e.checkpoint {
            *e = r;
        }
    }
    last.into_values().collect()
}

/// Mean and sample standard deviation (0 for one value).
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = match xs.len() {
        0 | 1 => 0.0,
        _ => xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0),
    };
    (mean, var.sqrt())
}

/// The markdown summary; `classes` lists compute classes in increasing compute order.
pub fn render(name: &str, rows: &[ResultRow], classes: &[String]) -> String {
    let finals = final_rows(rows);
    let mut out = format!(
        "# Sweep `{name}`\n\nFinal validation loss (nats/token) per compute class and policy: \
         mean +- sample std over seeds. Theoretical hours are the reference accelerator-hours \
         charged (Languini); wall hours include evaluation and checkpoints.\n"
    );
    for class in classes {
        let in_class: Vec<&&ResultRow> = finals
            .iter()
            .filter(|r| &r.compute_class == class)
            .collect();
        if in_class.is_empty() {
            continue;
        }
        let mut by_key: BTreeMap<(u64, &str), Vec<&ResultRow>> = BTreeMap::new();
        for r in in_class {
            by_key
                .entry((r.num_params, r.policy.as_str()))
                .or_default()
                .push(r);
        }
        let mut table = vec![(
            "params / policy".to_string(),
            "seeds | val loss | val ppl | steps | tokens | theoretical h | wall h".to_string(),
        )];
        for ((params, policy), runs) in by_key {
            let size = format!("{:.2}M", params as f64 / 1e6);
            table.push((format!("{size} / {policy}"), row_text(&runs)));
        }
        out += &format!("\n## Compute class `{class}`\n\n{}", two_col_table(&table));
    }
    out
}

fn row_text(runs: &[&ResultRow]) -> String {
    let losses: Vec<f64> = runs.iter().map(|r| r.loss).collect();
    let (m, s) = mean_std(&losses);
    let mean_of =
        |f: &dyn Fn(&ResultRow) -> f64| runs.iter().map(|r| f(r)).sum::<f64>() / runs.len() as f64;
    let hours = match runs.iter().all(|r| r.theoretical_hours.is_some()) {
        true => format!("{:.4}", mean_of(&|r| r.theoretical_hours.unwrap_or(0.0))),
        false => "n/a".into(),
    };
    format!(
        "{} | {m:.4} +- {s:.4} | {:.1} | {:.0} | {:.0} | {hours} | {:.4}",
        runs.len(),
        m.exp(),
        mean_of(&|r| r.checkpoint as f64),
        mean_of(&|r| r.tokens_seen as f64),
        mean_of(&|r| r.wall_hours),
    )
}

/// A markdown table whose second column already holds `|`-separated cells.
fn two_col_table(rows: &[(String, String)]) -> String {
    let mut lines = String::new();
    for (i, (k, v)) in rows.iter().enumerate() {
        lines += &format!("| {k} | {v} |\n");
        if i == 0 {
            let cells = v.split('|').count() + 1;
            lines += &format!("|{}\n", "---|".repeat(cells));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        assert_eq!(mean_std(&[2.0]), (2.0, 0.0));
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        assert!((s - 1.0).abs() < 1e-12);
    }
}
