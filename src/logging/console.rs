//! Human-readable console output: per-step lines, eval lines, the resolved
//! config table and the progress bar.
//!
//! Everything here returns `String`s (no printing) so formats are unit-testable;
//! [`print_line`] is the one place that writes, routed through the progress
//! bar so lines do not tear its drawing.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};

/// One training-step line, fixed-width so consecutive lines align:
/// `step   100/2000 | loss  5.1234 | lr 6.00e-04 | gnorm   0.812 |     2,345 tok/s |   812.3 ms/step`.
/// The step column is as wide as `total` (plus one space), so it is constant
/// within a run.
pub fn format_train_line(
    step: u64,
    total: u64,
    loss: f64,
    lr: f64,
    grad_norm: f64,
    tokens_per_s: f64,
    step_ms: f64,
) -> String {
    let width = digits(total) + 1;
    format!(
        "step {step:>width$}/{total} | loss {loss:>7.4} | lr {} | gnorm {grad_norm:>7.3} | {:>9} tok/s | {step_ms:>7.1} ms/step",
        sci(lr, 2),
        thousands(tokens_per_s),
    )
}

/// One evaluation line: `eval @ step 500 | val_loss 4.1234 | val_ppl 61.78`.
pub fn format_eval_line(step: u64, val_loss: f64, val_ppl: f64) -> String {
    format!("eval @ step {step} | val_loss {val_loss:.4} | val_ppl {val_ppl:.2}")
}

/// Renders `(key, value)` rows as an aligned two-column table with a header:
///
/// ```text
/// key            | value
/// ---------------+------
/// model.n_layer  | 12
/// ```
///
/// Multi-line values continue on following lines with an empty key column.
pub fn config_table(rows: &[(String, String)]) -> String {
    let key_w = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .chain([3])
        .max()
        .unwrap_or(3);
    let val_w = rows
        .iter()
        .flat_map(|(_, v)| v.lines().map(|l| l.chars().count()))
        .chain([5])
        .max()
        .unwrap_or(5);
    let mut out = format!("{:<key_w$} | value\n", "key");
    out.push_str(&format!("{}-+-{}\n", "-".repeat(key_w), "-".repeat(val_w)));
    for (key, value) in rows {
        let mut lines = value.lines();
        let first = lines.next().unwrap_or("");
        out.push_str(&format!("{key:<key_w$} | {first}\n"));
        for more in lines {
            out.push_str(&format!("{:<key_w$} | {more}\n", ""));
        }
    }
    out
}

/// Same rows as a markdown table, for logging the config as TensorBoard text
/// (the text plugin renders markdown; `|` in values is escaped).
pub fn markdown_table(rows: &[(String, String)]) -> String {
    let escape = |s: &str| s.replace('|', "\\|").replace('\n', "<br>");
    let mut out = String::from("| key | value |\n|---|---|\n");
    for (key, value) in rows {
        out.push_str(&format!("| {} | {} |\n", escape(key), escape(value)));
    }
    out
}

/// Progress bar for `total_steps`, starting at `start` (resumed runs).
///
/// Hidden when stderr is not a terminal so CI logs are not flooded with
/// redraws; use [`print_line`] rather than `pb.println` directly, because a
/// hidden bar's `println` prints nothing.
pub fn progress_bar(total_steps: u64, start: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let template = "{bar:40.cyan/blue} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}";
    // The template is a constant; falling back keeps a typo from being fatal.
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let pb = ProgressBar::new(total_steps).with_style(style);
    pb.set_position(start.min(total_steps));
    pb
}

/// Prints a line above the progress bar, or plainly to stderr when the bar is
/// hidden. Write errors (closed stderr) are ignored: output must not kill a run.
pub fn print_line(pb: &ProgressBar, line: &str) {
    if pb.is_hidden() {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    } else {
        pb.println(line);
    }
}

/// Number of decimal digits of `n` (1 for 0).
fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Scientific notation with a signed two-digit exponent (`6.00e-04`), which
/// Rust's `{:e}` does not produce (`6.00e-4`).
fn sci(x: f64, precision: usize) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let s = format!("{x:.precision$e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// Rounds to an integer and inserts thousands separators (`2,345`).
fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let rounded = x.round();
    let digits = format!("{}", rounded.abs() as u64);
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0.0 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn train_line_format() {
        let line = format_train_line(100, 2000, 5.12341, 6e-4, 0.8123, 2345.4, 812.34);
        assert_eq!(
            line,
            "step   100/2000 | loss  5.1234 | lr 6.00e-04 | gnorm   0.812 |     2,345 tok/s |   812.3 ms/step"
        );
        // Fixed width: another step of the same run has the same length.
        let other = format_train_line(2000, 2000, 10.5, 1.5e-5, 12.25, 123456.0, 95.0);
        assert_eq!(line.len(), other.len());
        assert!(other.contains("lr 1.50e-05"));
        assert!(other.contains("123,456 tok/s"));
    }

    #[test]
    fn train_line_survives_nonfinite() {
        let line = format_train_line(1, 10, f64::NAN, 0.0, f64::INFINITY, f64::NAN, 1.0);
        assert!(line.contains("loss     NaN"));
        assert!(line.contains("lr 0.00e+00"));
        assert!(line.contains("gnorm     inf"));
    }

    #[test]
    fn eval_line_format() {
        assert_eq!(
            format_eval_line(500, 4.12345, 61.7777),
            "eval @ step 500 | val_loss 4.1235 | val_ppl 61.78"
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(digits(0), 1);
        assert_eq!(digits(9), 1);
        assert_eq!(digits(10), 2);
        assert_eq!(digits(u64::MAX), 20);
        assert_eq!(sci(6e-4, 2), "6.00e-04");
        assert_eq!(sci(1234.5, 1), "1.2e+03");
        assert_eq!(sci(1e-100, 1), "1.0e-100");
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(thousands(-1234.0), "-1,234");
    }

    #[test]
    fn config_table_aligns() {
        let rows = vec![
            ("model.n_layer".to_string(), "12".to_string()),
            ("lr".to_string(), "0.0006".to_string()),
            ("notes".to_string(), "two\nlines".to_string()),
        ];
        let table = config_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "key           | value");
        assert_eq!(lines[1], "--------------+-------");
        assert_eq!(lines[2], "model.n_layer | 12");
        assert_eq!(lines[3], "lr            | 0.0006");
        assert_eq!(lines[4], "notes         | two");
        assert_eq!(lines[5], "              | lines");
        assert_eq!(config_table(&[]), "key | value\n----+------\n");
    }

    #[test]
    fn markdown_table_escapes() {
        let rows = vec![("a|b".to_string(), "x\ny".to_string())];
        assert_eq!(
            markdown_table(&rows),
            "| key | value |\n|---|---|\n| a\\|b | x<br>y |\n"
        );
    }

    #[test]
    fn progress_bar_is_hidden_without_terminal() {
        // cargo test captures output, but stderr may still be a tty when run
        // interactively; only assert the non-terminal branch when it applies.
        let pb = progress_bar(100, 10);
        if !std::io::stderr().is_terminal() {
            assert!(pb.is_hidden());
        } else {
            assert_eq!(pb.position(), 10);
        }
    }
}
