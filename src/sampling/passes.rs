//! Shuffled passes (epochs) over a set of block ids, shared by the policies and public for
//! policies written outside the crate: save [`ShuffledPasses::cursor`] in the policy's state
//! and rebuild with [`ShuffledPasses::restore`] to continue the exact same order
//! ([`super::SourcePasses`] does both for one pass per corpus source).
//!
//! Shuffled passes over a member list: the state is a cursor (pass count,
//! position, the pass's shuffle seed and the stream that seeds later passes), so a checkpoint
//! restores the exact order from the member set without storing a permutation. Members are kept
//! as `u32` (4 bytes per block) and always shuffled from their ascending order, which the owner
//! can rebuild from the ledger on restore.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PassCursor {
    /// Passes begun so far; the current pass has index `passes - 1`.
    pub passes: u64,
    /// Next position in the current pass.
    pub position: usize,
    /// Member count of the current pass (checked on restore).
    pub members: usize,
    pass_seed: u64,
    seeds: Rng,
}

pub struct ShuffledPasses {
    ids: Vec<u32>,
    /// Members are exactly `0..len`: canonical order is rebuilt in O(N) without sorting.
    dense: bool,
    cursor: PassCursor,
}

impl ShuffledPasses {
    /// No pass begun yet; later pass seeds are drawn from `seeds`.
    pub fn new(seeds: Rng) -> Self {
        Self {
            ids: Vec::new(),
            dense: false,
            cursor: PassCursor {
                passes: 0,
                position: 0,
                members: 0,
                pass_seed: 0,
                seeds,
            },
        }
    }

    /// The first pass over `members` (ascending ids) begun, later pass seeds drawn from `seeds`.
    pub fn started(members: Vec<u32>, seeds: Rng) -> Self {
        let mut passes = Self::new(seeds);
        passes.begin(members, false);
        passes
    }

    /// Starts a pass over new members (ascending ids; `dense`: exactly `0..len`).
    pub fn begin(&mut self, members: Vec<u32>, dense: bool) {
        self.ids = members;
        self.dense = dense;
        self.start_pass();
    }

    /// Starts another pass over the same members, freshly shuffled.
    pub fn repeat(&mut self) {
        if self.dense {
            self.ids.iter_mut().zip(0u32..).for_each(|(x, i)| *x = i);
        } else {
            self.ids.sort_unstable();
        }
        self.start_pass();
    }

    fn start_pass(&mut self) {
        self.cursor.pass_seed = self.cursor.seeds.next_u64();
        self.cursor.passes += 1;
        self.cursor.position = 0;
        self.cursor.members = self.ids.len();
        Rng::new(self.cursor.pass_seed).shuffle(&mut self.ids);
    }

    /// The next id of the current pass, `None` when the pass is complete.
    pub fn take(&mut self) -> Option<u32> {
        let id = self.ids.get(self.cursor.position).copied()?;
        self.cursor.position += 1;
        Some(id)
    }

    /// The next id, starting a new pass over the same members when the current one is done.
    /// `None` only when there are no members.
    pub fn take_cycling(&mut self) -> Option<u32> {
        match self.take() {
            Some(id) => Some(id),
            None if self.ids.is_empty() => None,
            None => {
                self.repeat();
                self.take()
            }
        }
    }

    pub fn remaining(&self) -> usize {
        self.ids.len().saturating_sub(self.cursor.position)
    }

    /// Members of the current pass.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The current pass in its shuffled order.
    pub fn order(&self) -> &[u32] {
        &self.ids
    }

    pub fn cursor(&self) -> &PassCursor {
        &self.cursor
    }

    /// Drops the member list (memory) once the owner no longer needs passes; the cursor stays.
    pub fn release(&mut self) {
        self.ids = Vec::new();
    }

    /// A cursor without its member list (the owner called `release` before saving it).
    pub fn released(cursor: PassCursor) -> Self {
        Self {
            ids: Vec::new(),
            dense: false,
            cursor,
        }
    }

    /// Rebuilds the state saved in `cursor` from the same members (ascending). Errors (with a
    /// message) when the member count differs from the saved one: the ledger does not belong to
    /// the checkpoint.
    pub fn restore(members: Vec<u32>, dense: bool, cursor: PassCursor) -> Result<Self, String> {
        if cursor.passes > 0 && members.len() != cursor.members {
            return Err(format!(
                "the ledger gives {} eligible blocks, the checkpoint's pass had {}",
                members.len(),
                cursor.members
            ));
        }
        if cursor.position > members.len() {
            return Err(format!(
                "pass position {} beyond its {} blocks",
                cursor.position,
                members.len()
            ));
        }
        let mut ids = members;
        if cursor.passes > 0 {
            Rng::new(cursor.pass_seed).shuffle(&mut ids);
        }
        Ok(Self { ids, dense, cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_continues_exactly_and_checks_members() {
        let mut a = ShuffledPasses::new(Rng::new(4));
        a.begin(vec![2, 3, 5, 8, 13], false);
        a.take();
        a.repeat();
        a.take();
        let b_cursor = a.cursor().clone();
        let mut b = ShuffledPasses::restore(vec![2, 3, 5, 8, 13], false, b_cursor.clone())
            .unwrap_or_else(|e| panic!("{e}"));
        let xa: Vec<_> = (0..12).map(|_| a.take_cycling()).collect();
        let xb: Vec<_> = (0..12).map(|_| b.take_cycling()).collect();
        assert_eq!(xa, xb);
        assert!(ShuffledPasses::restore(vec![1, 2], false, b_cursor).is_err());
    }
}
