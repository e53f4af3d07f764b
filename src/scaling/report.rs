//! Plain-text rendering of a [`FitReport`] for the terminal. Returns a `String` so the
//! layout is testable; the CLI prints it.

use super::fit::{ChinchillaResult, ComputeResult, FitReport, FitResult, LawReport};

impl FitReport {
    pub fn render_text(&self) -> String {
        let mut out = self.render_input();
        match &self.result {
            FitResult::Chinchilla(c) => out.push_str(&self.render_chinchilla(c)),
            FitResult::Compute(c) => out.push_str(&self.render_compute(c)),
        }
        out
    }

    fn render_input(&self) -> String {
        let i = &self.input;
        let how = if i.format_detected {
            "detected from the header"
        } else {
            "given"
        };
        let mut out = format!(
            "input    {}\nformat   {} ({how}): {}\nrows     {} read, {} after --where, {} dropped by \
             --min-tokens, {} by --min-frac; {} fitted, {} held out\n",
            i.path,
            i.format.name(),
            i.mapping,
            i.rows_read,
            i.rows_after_where,
            i.dropped_min_tokens,
            i.dropped_min_frac,
            i.rows_fitted,
            i.rows_held_out
        );
        if let Some(rule) = &i.holdout_rule {
            out.push_str(&format!("holdout  {rule}\n"));
        }
        if let Some(b) = &self.bootstrap {
            out.push_str(&format!(
                "bootstrap {} resamples, seed {}, {}\n          refit: {}\n",
                b.resamples, b.seed, b.note, b.refit
            ));
        }
        out
    }

    fn render_chinchilla(&self, c: &ChinchillaResult) -> String {
        let laws: Vec<(&str, &LawReport)> = [("huber", &c.huber), ("lsq", &c.lsq)]
            .into_iter()
            .filter_map(|(m, l)| Some((m, l.as_ref()?)))
            .collect();
        let mut rows = vec![cells(&[
            "method",
            "E",
            "A",
            "B",
            "alpha",
            "beta",
            "objective",
            "ARE fit",
            "ARE holdout",
            "seconds",
        ])];
        for (m, l) in &laws {
            rows.push(vec![
                m.to_string(),
                num(l.e_plain),
                num(l.a_plain),
                num(l.b_plain),
                format!("{:.4}", l.alpha),
                format!("{:.4}", l.beta),
                format!("{:.4e}", l.objective),
                pct(l.are_fit),
                pct(l.are_holdout),
                format!("{:.2}", l.seconds),
            ]);
        }
        let mut out = format!(
            "\nChinchilla form L(N, D) = E + A/N^alpha + B/D^beta\n{}",
            table(&rows)
        );
        for (m, l) in &laws {
            out.push_str(&format!(
                "{m}: {}; objective = {}\n",
                l.optimizer, l.objective_kind
            ));
            for w in &l.warnings {
                out.push_str(&format!("{m}: WARNING: {w}\n"));
            }
        }
        let ci_laws: Vec<_> = laws
            .iter()
            .filter_map(|(m, l)| Some((m, l.ci.as_ref()?)))
            .collect();
        if !ci_laws.is_empty() {
            let mut rows = vec![cells(&[
                "method",
                "E",
                "A",
                "B",
                "alpha",
                "beta",
                "resamples ok",
                "failed",
            ])];
            for (m, ci) in ci_laws {
                rows.push(vec![
                    m.to_string(),
                    interval(ci.e_plain),
                    interval(ci.a_plain),
                    interval(ci.b_plain),
                    interval(ci.alpha),
                    interval(ci.beta),
                    ci.resamples_ok.to_string(),
                    ci.resamples_failed.to_string(),
                ]);
            }
            out.push_str(&format!("\n95% bootstrap intervals\n{}", table(&rows)));
        }
        out
    }

    fn render_compute(&self, c: &ComputeResult) -> String {
        let by = c.group_by.as_deref().unwrap_or("(all rows)");
        let mut rows = vec![cells(&[
            "group",
            "points",
            "held out",
            "x range",
            "alpha",
            "beta",
            "ARE fit",
            "ARE holdout",
            "alpha 95% CI",
            "beta 95% CI",
        ])];
        for g in &c.groups {
            let ci = g.ci.as_ref();
            rows.push(vec![
                g.group.clone(),
                g.points.to_string(),
                g.held_out.to_string(),
                format!("{} .. {}", num(g.x_min), num(g.x_max)),
                format!("{:.5}", g.alpha),
                num(g.beta),
                pct(g.are_fit),
                pct(g.are_holdout),
                ci.map_or("-".into(), |c| interval(c.alpha)),
                ci.map_or("-".into(), |c| interval(c.beta)),
            ]);
        }
        let mut out = format!(
            "\nLoss vs {} per {by}: L = beta * x^alpha\n{}",
            c.x,
            table(&rows)
        );
        if !c.crossovers.is_empty() {
            out.push_str("\nCrossovers C* = (beta1/beta2)^(1/(alpha2 - alpha1))\n");
        }
        for x in &c.crossovers {
            let [a, b] = &x.groups;
            let mut line = match (x.x, &x.lower_before, &x.lower_after) {
                (Some(cx), Some(lo), Some(hi)) => format!(
                    "{a} vs {b}: C* = {} {}; {lo} is lower below C*, {hi} above",
                    num(cx),
                    if x.within_fitted_range == Some(true) {
                        "(inside the fitted range)"
                    } else {
                        "(OUTSIDE the fitted range: extrapolated)"
                    }
                ),
                _ => format!("{a} vs {b}: {}", x.note),
            };
            if let Some(share) = x.bootstrap_cross_share {
                line.push_str(&format!(
                    "; 95% CI {}; cross in {:.0}% of resamples",
                    interval(x.ci),
                    share * 100.0
                ));
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

fn cells(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Left-aligned columns separated by two spaces.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, s)| format!("{s:<w$}", w = widths[c]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Five significant digits without trailing zeros; scientific notation outside [0.01, 1e5).
fn num(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.abs() >= 1e5 || v.abs() < 1e-2 {
        return format!("{v:.3e}");
    }
    let decimals = (4 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{:.3}%", x * 100.0))
}

fn interval(ci: Option<[f64; 2]>) -> String {
    ci.map_or("-".into(), |[lo, hi]| format!("[{}, {}]", num(lo), num(hi)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_numbers_switch_to_scientific() {
        let t = table(&[cells(&["a", "bb"]), cells(&["ccc", "d"])]);
        assert_eq!(t, "a    bb\nccc  d\n");
        assert_eq!(num(406.4), "406.4");
        assert_eq!(num(2.5e21), "2.500e21");
        assert_eq!(num(-0.0500001), "-0.05");
        assert_eq!(num(12803.6407), "12804");
        assert_eq!(num(1.81721), "1.8172");
        assert_eq!(num(0.0), "0");
        assert_eq!(pct(Some(0.01234)), "1.234%");
        assert_eq!(interval(Some([1.0, 2.0])), "[1, 2]");
    }
}
