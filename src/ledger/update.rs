//! How one observed loss changes a block's record: last/first loss, EMA, times trained, and
//! the forgetting counter.
//!
//! # Forgetting (LFR, arXiv 2409.06131 v1, section "motivation")
//!
//! Profiling per-block perplexity of GPT-2 on OpenWebText over repeated epochs, the LFR authors
//! see three patterns: *learned* blocks (the loss keeps falling), *unlearned* blocks (it keeps
//! rising, or never falls), and *forgotten* blocks (it falls and then rises again, possibly
//! several times: "multiple descent"). They report 25% of blocks forgotten at least once, and
//! 82% of those forgotten more than once. We count the same thing per block, online, in O(1):
//!
//! - Each block alternates between two states, kept in flag bit 0 ([`FLAG_FALLEN`]).
//! - **Not fallen** (start, and after each forgetting event): `min_loss` is the *reference*,
//!   the loss at the start of the cycle. The block *has fallen* once a loss goes below
//!   `reference - tolerance`; that loss becomes `min_loss`. Small decreases do not move the
//!   reference, so a slow, steady fall (many steps each smaller than the tolerance) is still
//!   detected once its total exceeds the tolerance.
//! - **Fallen**: `min_loss` is the running minimum. A loss above `min_loss + tolerance` is a
//!   *forgetting event*: `forget_events += 1` (saturating), `min_loss` resets to that loss
//!   (the new reference) and the fallen bit clears, so each fall-rise cycle counts once.
//!
//! So a monotone fall gives 0 events, fall-rise 1, fall-rise-fall-rise 2, and a rise without
//! a prior fall ("unlearned") 0. Needing a fall first is what separates forgetting from blocks
//! that were never learned. Before the fall, `min_loss` is the reference, which is within the
//! tolerance above the true running minimum.

use serde::{Deserialize, Serialize};

use super::record::{BlockRecord, NEVER};

/// Flag bit 0 of [`BlockRecord::flags`]: the loss has fallen by more than the tolerance since
/// the last forgetting event (or since first sight).
pub const FLAG_FALLEN: u8 = 1;

/// Parameters of the per-block update.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateRule {
    /// Weight of the newest loss in the exponential moving average, in (0, 1]. Default 0.5.
    ///
    /// A block is usually seen once per epoch, so the EMA's memory is counted in epochs: with
    /// 0.5 the latest loss weighs 1/2, the one before 1/4, ..., so the EMA describes the last
    /// ~2 epochs while damping one unusual step. With 0.1 the first-epoch loss (an almost
    /// untrained model) would still weigh 0.9^7 = 48% after the 8 epochs of an LFR schedule.
    pub ema_alpha: f32,
    /// Loss change in nats (mean per-token NLL of the block) that counts as a fall or a rise
    /// for the forgetting counter, >= 0. Default 0.05 nats, i.e. a ~5% perplexity change: the
    /// paper speaks of perplexity going up and down; 5% is well above the float noise of a
    /// block's mean loss and well below the changes between epochs of an LFR schedule.
    pub forget_tolerance: f32,
}

impl Default for UpdateRule {
    fn default() -> Self {
        UpdateRule {
            ema_alpha: 0.5,
            forget_tolerance: 0.05,
        }
    }
}

impl UpdateRule {
    /// Checks the ranges documented on the fields.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.ema_alpha > 0.0 && self.ema_alpha <= 1.0) {
            return Err(format!(
                "ema_alpha must be in (0, 1], got {}",
                self.ema_alpha
            ));
        }
        if !(self.forget_tolerance >= 0.0 && self.forget_tolerance.is_finite()) {
            return Err(format!(
                "forget_tolerance must be finite and >= 0, got {}",
                self.forget_tolerance
            ));
        }
        Ok(())
    }

    /// Applies one finite `loss` observed at optimizer `step` to `rec`. Steps past
    /// `u32::MAX - 1` are stored as `u32::MAX - 1` (`u32::MAX` means never).
    pub fn apply(&self, rec: &mut BlockRecord, loss: f32, step: u64) {
        debug_assert!(
            loss.is_finite(),
            "non-finite losses are filtered by the caller"
        );
        if rec.seen() {
            rec.ema_loss += self.ema_alpha * (loss - rec.ema_loss);
            self.track_forgetting(rec, loss);
        } else {
            rec.first_loss = loss;
            rec.ema_loss = loss;
            rec.min_loss = loss;
            rec.flags &= !FLAG_FALLEN;
        }
        rec.last_loss = loss;
        rec.times_trained = rec.times_trained.saturating_add(1);
        rec.last_step = step.min(u64::from(NEVER - 1)) as u32;
    }

    /// The two-state rule of the module docs.
    fn track_forgetting(&self, rec: &mut BlockRecord, loss: f32) {
        let tol = self.forget_tolerance;
        if rec.flags & FLAG_FALLEN == 0 {
            if loss < rec.min_loss - tol {
                rec.flags |= FLAG_FALLEN;
                rec.min_loss = loss;
            }
        } else if loss > rec.min_loss + tol {
            rec.forget_events = rec.forget_events.saturating_add(1);
            rec.min_loss = loss;
            rec.flags &= !FLAG_FALLEN;
        } else if loss < rec.min_loss {
            rec.min_loss = loss;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(losses: &[f32]) -> BlockRecord {
        let rule = UpdateRule::default();
        let mut rec = BlockRecord::unseen(3);
        for (step, &l) in losses.iter().enumerate() {
            rule.apply(&mut rec, l, step as u64);
        }
        rec
    }

    #[test]
    fn first_sight_initialises_everything() {
        let rec = run(&[4.0]);
        assert_eq!(
            (rec.first_loss, rec.last_loss, rec.ema_loss, rec.min_loss),
            (4.0, 4.0, 4.0, 4.0)
        );
        assert_eq!((rec.times_trained, rec.last_step, rec.source), (1, 0, 3));
        assert_eq!(rec.flags & FLAG_FALLEN, 0);
    }

    #[test]
    fn ema_moves_by_alpha() {
        let rec = run(&[4.0, 2.0]);
        assert_eq!(rec.ema_loss, 3.0); // 4 + 0.5 * (2 - 4)
        assert_eq!(rec.first_loss, 4.0);
        assert_eq!(rec.last_loss, 2.0);
    }

    #[test]
    fn forgetting_patterns() {
        let events = |l: &[f32]| run(l).forget_events;
        assert_eq!(events(&[5.0, 4.0, 3.0, 2.5, 2.0]), 0, "learned");
        assert_eq!(events(&[5.0, 4.0, 4.5]), 1, "fall-rise");
        assert_eq!(events(&[5.0, 4.0, 4.5, 3.0, 3.8]), 2, "fall-rise-fall-rise");
        assert_eq!(events(&[5.0, 5.5, 6.0, 7.0]), 0, "unlearned");
        assert_eq!(
            events(&[5.0, 4.0, 4.03, 4.01, 4.04]),
            0,
            "rises within tolerance"
        );
        // Rising after a forgetting event is not a second event until it fell again.
        assert_eq!(events(&[5.0, 4.0, 4.5, 5.0, 6.0]), 1);
    }

    #[test]
    fn slow_fall_is_detected_once_its_total_exceeds_the_tolerance() {
        // Each step falls 0.02 < 0.05; the total fall of 0.08 counts, then a rise forgets.
        let rec = run(&[3.0, 2.98, 2.96, 2.94, 2.92, 3.0]);
        assert_eq!(rec.forget_events, 1);
        assert_eq!(rec.min_loss, 3.0, "reset to the loss of the event");
    }

    #[test]
    fn steps_saturate_below_never_and_counters_saturate() {
        let rule = UpdateRule::default();
        let mut rec = BlockRecord::unseen(0);
        rule.apply(&mut rec, 1.0, u64::MAX);
        assert_eq!(rec.last_step, NEVER - 1);
        rec.forget_events = u16::MAX;
        rec.flags |= FLAG_FALLEN;
        rule.apply(&mut rec, 9.0, 1);
        assert_eq!(rec.forget_events, u16::MAX);
    }

    #[test]
    fn leitner_box_bits_survive_updates() {
        let rule = UpdateRule::default();
        let mut rec = BlockRecord::unseen(0);
        rec.set_leitner_box(5);
        rule.apply(&mut rec, 3.0, 0);
        rule.apply(&mut rec, 2.0, 1);
        assert_eq!(rec.leitner_box(), 5);
        assert_eq!(rec.flags & FLAG_FALLEN, FLAG_FALLEN);
    }

    #[test]
    fn validate_rejects_out_of_range_parameters() {
        let ok = UpdateRule::default();
        assert!(ok.validate().is_ok());
        for bad in [
            UpdateRule {
                ema_alpha: 0.0,
                ..ok
            },
            UpdateRule {
                ema_alpha: 1.5,
                ..ok
            },
            UpdateRule {
                ema_alpha: f32::NAN,
                ..ok
            },
            UpdateRule {
                forget_tolerance: -0.1,
                ..ok
            },
            UpdateRule {
                forget_tolerance: f32::INFINITY,
                ..ok
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
