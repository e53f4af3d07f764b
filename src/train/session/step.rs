//! One training step of a session, and the policy's part in it: the selection (checked), the
//! losses it observes, the scoring it asks for.

use std::time::Instant;

use super::{Session, TrainedStep};
use crate::budget::Activity;
use crate::model::{LanguageModel, Timing};
use crate::optim::train_step;
use crate::sampling::{Selection, StateUpdate};
use crate::train::{load_batch, TrainError};

impl Session {
    /// One training step: the policy picks the blocks, forward + backward + update (`gpt`),
    /// the ledger and the policy see the losses, extra scoring asked by the policy runs on the
    /// updated weights (`scorer`) and is charged, and the state and budget advance.
    pub fn train_step(
        &mut self,
        gpt: &dyn LanguageModel,
        scorer: &dyn LanguageModel,
    ) -> Result<TrainedStep, TrainError> {
        let t = Instant::now();
        let (optim, schedule) = (&self.config.optim, &self.config.schedule);
        let lr = self.budget.lr(self.state.step, optim.lr, schedule);
        let grad_clip = optim.grad_clip;
        let sel = self.select_batch()?;
        let batches = sel
            .ids
            .chunks(self.config.train.batch_size)
            .map(|ids| load_batch(&self.train_blocks, ids, &self.device))
            .collect::<Result<Vec<_>, _>>()?;
        let hp = (lr, grad_clip);
        let out = train_step(
            gpt,
            &self.params,
            &mut self.optimizer,
            &batches,
            hp,
            Timing::Queued,
        )?;
        // A skipped update trained nothing: its losses stay out of the ledger (they would count
        // the blocks as trained and steer loss-based policies with a diverged model's numbers),
        // and the policy does not observe them.
        if out.applied {
            self.record_losses(&sel.ids, &out.per_sequence)?;
        }
        let scored = match sel.score.is_empty() {
            true => 0,
            false => self.score_blocks(scorer, &sel.score)?,
        };
        let tokens = self.budget.plan().tokens_per_step;
        self.state.step += 1;
        self.state.tokens_seen += tokens;
        self.state.consecutive_skips = match out.applied {
            true => 0,
            false => self.state.consecutive_skips + 1,
        };
        self.budget.charge_step(tokens, scored);
        self.budget.add_wall(Activity::Train, t.elapsed());
        self.budget
            .check_wall_cap(self.state.step, &self.config.schedule);
        Ok(TrainedStep {
            out,
            lr,
            ids: sel.ids,
        })
    }

    /// The policy's choice for this step; its state changes are written to the ledger.
    fn select_batch(&mut self) -> Result<Selection, TrainError> {
        let n = self.config.train.sequences_per_step();
        let step = self.state.step;
        let sel = self.policy.next_batch(n, &self.ledger, step);
        sel.check(self.policy.name(), step, n, self.train_blocks.len())?;
        self.apply(&sel.state_updates)?;
        Ok(sel)
    }

    /// Scores `ids` with a forward-only pass of `gpt` (the inference view of the current
    /// weights) for the policy's `observe_scored`. Returns the tokens scored, to be charged.
    fn score_blocks(&mut self, gpt: &dyn LanguageModel, ids: &[usize]) -> Result<u64, TrainError> {
        let mut losses = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(self.config.train.batch_size) {
            let (x, y) = load_batch(&self.train_blocks, chunk, &self.device)?;
            losses.extend(gpt.per_sequence_loss(&x, &y)?.to_vec1::<f32>()?); // [B]
        }
        let updates = self.policy.observe_scored(ids, &losses, self.state.step);
        self.apply(&updates)?;
        Ok((ids.len() * self.config.context()) as u64)
    }

    /// Records the training forward pass's per-sequence losses (finite ones only) in the
    /// ledger, then lets the policy observe them.
    fn record_losses(&mut self, ids: &[usize], losses: &[f32]) -> Result<(), TrainError> {
        let step = self.state.step;
        let rule = self.config.ledger;
        self.ledger.record_losses(ids, losses, step, &rule)?;
        let (ids, losses): (Vec<usize>, Vec<f32>) = ids
            .iter()
            .zip(losses)
            .filter(|(_, l)| l.is_finite())
            .map(|(&i, &l)| (i, l))
            .unzip();
        let updates = self.policy.observe(&ids, &losses, &self.ledger, step);
        self.apply(&updates)
    }

    fn apply(&mut self, updates: &[StateUpdate]) -> Result<(), TrainError> {
        for u in updates {
            self.ledger
                .set_policy_state(u.id, u.policy_state, u.leitner_box)?;
        }
        Ok(())
    }
}
