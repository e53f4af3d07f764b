//! Learning-rate schedules as pure functions of the step (llm.c style): resuming, plotting and
//! testing need no schedule object with hidden state.

use crate::config::{ScheduleConfig, ScheduleKind};

/// LR for optimizer step `step` (0-based) of a run of `total` steps with peak `peak`.
///
/// - warmup: linear from `peak / warmup` at step 0 to `peak` at step `warmup - 1` (never 0,
///   so step 0 is not wasted);
/// - cosine: then `min + (peak - min) * (1 + cos(pi * p)) / 2`, p going 0 -> 1 at the last step;
/// - wsd: constant `peak` until the last `decay_fraction` of steps, then linear to `min`
///   (Hu et al. 2024, MiniCPM);
/// - constant: `peak` after warmup.
pub fn lr_at(step: u64, total: u64, peak: f64, cfg: &ScheduleConfig) -> f64 {
    let warmup = cfg.warmup_steps;
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let min = peak * cfg.min_lr_ratio;
    let last = total.saturating_sub(1).max(warmup);
    match cfg.kind {
        ScheduleKind::Constant => peak,
        ScheduleKind::Cosine => {
            let span = (last - warmup).max(1) as f64;
            let p = ((step - warmup) as f64 / span).min(1.0);
            min + (peak - min) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
        }
        ScheduleKind::Wsd => {
            let decay_start = wsd_decay_start(total, cfg);
            match step < decay_start {
                true => peak,
                false => lr_linear_decay(step, decay_start, total, peak, cfg),
            }
        }
    }
}

/// First step of WSD's decay: the last `decay_fraction` of `total` steps, never inside warmup.
pub fn wsd_decay_start(total: u64, cfg: &ScheduleConfig) -> u64 {
    let decay_steps = ((total as f64 * cfg.decay_fraction).round() as u64).max(1);
    total.saturating_sub(decay_steps).max(cfg.warmup_steps)
}

/// Linear decay from `peak` at step `start` to `peak * min_lr_ratio` at step `end - 1` (WSD's
/// cooldown; also the cooldown a wall-clock cap moves earlier, `budget::WallDecay`).
pub fn lr_linear_decay(step: u64, start: u64, end: u64, peak: f64, cfg: &ScheduleConfig) -> f64 {
    let min = peak * cfg.min_lr_ratio;
    let span = end.saturating_sub(1).saturating_sub(start).max(1) as f64;
    let p = (step.saturating_sub(start) as f64 / span).min(1.0);
    peak + (min - peak) * p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(kind: ScheduleKind) -> ScheduleConfig {
        ScheduleConfig {
            kind,
            warmup_steps: 10,
            min_lr_ratio: 0.1,
            decay_fraction: 0.2,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn warmup_is_linear_and_reaches_peak() {
        let c = cfg(ScheduleKind::Cosine);
        assert!(close(lr_at(0, 100, 1.0, &c), 0.1));
        assert!(close(lr_at(4, 100, 1.0, &c), 0.5));
        assert!(close(lr_at(9, 100, 1.0, &c), 1.0));
    }

    #[test]
    fn cosine_hits_peak_mid_and_floor() {
        let c = cfg(ScheduleKind::Cosine);
        assert!(close(lr_at(10, 100, 1.0, &c), 1.0));
        // Halfway through the decay span (10..=99): cos(pi/2) = 0 -> (peak + min) / 2.
        let mid = lr_at(10 + 89 / 2, 100, 1.0, &c);
        assert!((mid - 0.55).abs() < 0.02, "{mid}");
        assert!(close(lr_at(99, 100, 1.0, &c), 0.1));
        assert!(close(lr_at(500, 100, 1.0, &c), 0.1));
    }

    #[test]
    fn wsd_is_flat_then_decays_linearly_in_last_fifth() {
        let c = cfg(ScheduleKind::Wsd);
        assert!(close(lr_at(50, 100, 2.0, &c), 2.0));
        assert!(close(lr_at(79, 100, 2.0, &c), 2.0));
        assert!(close(lr_at(80, 100, 2.0, &c), 2.0));
        assert!(close(lr_at(99, 100, 2.0, &c), 0.2));
        let a = lr_at(85, 100, 2.0, &c);
        let b = lr_at(90, 100, 2.0, &c);
        assert!(a > b && b > 0.2);
    }

    #[test]
    fn constant_after_warmup() {
        let c = cfg(ScheduleKind::Constant);
        assert!(close(lr_at(10, 100, 3e-4, &c), 3e-4));
        assert!(close(lr_at(99, 100, 3e-4, &c), 3e-4));
    }
}
