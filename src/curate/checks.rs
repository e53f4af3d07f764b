//! Value checks and serde defaults shared by the config structs of every stage.

/// Pushes a problem unless `lo <= v <= hi` (`lo_open`: `lo < v`).
pub(crate) fn check_range(
    name: &str,
    v: f64,
    lo: f64,
    hi: f64,
    lo_open: bool,
    p: &mut Vec<String>,
) {
    let ok = v <= hi && if lo_open { v > lo } else { v >= lo };
    if !ok {
        let open = if lo_open { "(" } else { "[" };
        p.push(format!("{name} must be in {open}{lo}, {hi}], got {v}"));
    }
}

/// Serde default of every stage's `enabled`: a stage whose table is present runs.
pub(crate) fn yes() -> bool {
    true
}
