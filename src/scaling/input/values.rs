//! Cell parsers shared by the formats: plain numbers, "2.8B"-style sizes, log10-encoded
//! values and perplexities. Each returns the reason a cell is rejected; the caller adds the
//! file, line and column.

/// A finite number > 0 (`1e10`, `0.5`). Counts, losses and FLOPs are all strictly positive
/// in a scaling law: their logarithms enter the fit.
pub fn positive(cell: &str) -> Result<f64, String> {
    let v: f64 = cell
        .trim()
        .parse()
        .map_err(|_| "a finite number > 0".to_string())?;
    check_positive(v)
}

/// A size with an optional magnitude suffix, case-insensitive: `k` = 1e3, `m` = 1e6
/// (million, as in OPT's `125m`, never milli), `b` or `g` = 1e9, `t` = 1e12. Plain numbers
/// pass through. The published tables write model sizes this way (`2.8B`, `125m`), as does
/// ColPret's own `to_int`.
pub fn count(cell: &str) -> Result<f64, String> {
    let s = cell.trim();
    let expected = || "a finite number > 0, optionally with a k/m/b/t suffix (e.g. 2.8B)";
    if let Ok(v) = s.parse::<f64>() {
        return check_positive(v).map_err(|_| expected().to_string());
    }
    let (digits, suffix) = s.split_at(s.len().saturating_sub(1));
    let scale = match suffix.to_ascii_lowercase().as_str() {
        "k" => 1e3,
        "m" => 1e6,
        "b" | "g" => 1e9,
        "t" => 1e12,
        _ => return Err(expected().to_string()),
    };
    let v: f64 = digits.parse().map_err(|_| expected().to_string())?;
    check_positive(v * scale).map_err(|_| expected().to_string())
}

/// `10^cell`: OPT's trajectory table stores token and FLOP counts as log10 values.
pub fn pow10(cell: &str) -> Result<f64, String> {
    let expected = "a finite log10 value (the column is log10-encoded)";
    let v: f64 = cell.trim().parse().map_err(|_| expected.to_string())?;
    let out = 10f64.powf(v);
    if v.is_finite() && out.is_finite() && out > 0.0 {
        Ok(out)
    } else {
        Err(expected.to_string())
    }
}

/// Loss in nats from a perplexity: ln(ppl). Perplexity must exceed 1 so the loss is > 0.
pub fn loss_from_ppl(cell: &str) -> Result<f64, String> {
    let expected = "a finite perplexity > 1 (converted to loss = ln ppl)";
    let v: f64 = cell.trim().parse().map_err(|_| expected.to_string())?;
    if v.is_finite() && v > 1.0 {
        Ok(v.ln())
    } else {
        Err(expected.to_string())
    }
}

fn check_positive(v: f64) -> Result<f64, String> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err("a finite number > 0".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_accept_suffixes_and_plain_numbers() {
        assert_eq!(count("2.8B").unwrap(), 2.8e9);
        assert_eq!(count("125m").unwrap(), 125e6);
        assert_eq!(count("175b").unwrap(), 175e9);
        assert_eq!(count("1.5T").unwrap(), 1.5e12);
        assert_eq!(count("30k").unwrap(), 30e3);
        assert_eq!(count("6795600349.289497").unwrap(), 6795600349.289497);
        for bad in ["", "B", "2.8X", "-1B", "nan", "inf", "0"] {
            assert!(count(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn positive_rejects_nan_inf_zero_and_negatives() {
        assert_eq!(positive(" 3.5 ").unwrap(), 3.5);
        for bad in ["NaN", "inf", "-inf", "0", "-2", "abc", ""] {
            assert!(positive(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn log10_and_perplexity_decode() {
        assert!((pow10("9.0").unwrap() - 1e9).abs() < 1.0);
        assert!(pow10("400").is_err());
        assert!((loss_from_ppl("9.0").unwrap() - 9f64.ln()).abs() < 1e-15);
        assert!(loss_from_ppl("1.0").is_err());
        assert!(loss_from_ppl("nan").is_err());
    }
}
