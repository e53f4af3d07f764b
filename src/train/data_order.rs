//! Which training blocks each step sees: shuffled epochs over all block ids (uniform sampling
//! without replacement, the baseline every curriculum is compared with).
//!
//! The state is a cursor (epoch, position, the epoch's shuffle seed and the stream that seeds
//! later epochs), so a checkpoint restores the exact order without storing a permutation.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochCursor {
    pub epoch: u64,
    pub position: usize,
    epoch_seed: u64,
    seeds: Rng,
}

pub struct ShuffledEpochs {
    n_blocks: usize,
    order: Vec<usize>,
    cursor: EpochCursor,
}

impl ShuffledEpochs {
    /// A fresh order over `n_blocks` ids (> 0), seeded from `rng`.
    pub fn new(n_blocks: usize, rng: &mut Rng) -> Self {
        let mut seeds = rng.fork();
        let epoch_seed = seeds.next_u64();
        Self::from_cursor(
            n_blocks,
            EpochCursor {
                epoch: 0,
                position: 0,
                epoch_seed,
                seeds,
            },
        )
    }

    /// Rebuilds the order saved in a checkpoint.
    pub fn from_cursor(n_blocks: usize, cursor: EpochCursor) -> Self {
        let order = permutation(n_blocks, cursor.epoch_seed);
        Self {
            n_blocks,
            order,
            cursor,
        }
    }

    pub fn cursor(&self) -> &EpochCursor {
        &self.cursor
    }

    /// The next `n` block ids, continuing into the next epoch (freshly shuffled) as needed.
    pub fn next_batch(&mut self, n: usize) -> Vec<usize> {
        let mut ids = Vec::with_capacity(n);
        while ids.len() < n {
            if self.cursor.position == self.n_blocks {
                self.cursor.epoch += 1;
                self.cursor.position = 0;
                self.cursor.epoch_seed = self.cursor.seeds.next_u64();
                self.order = permutation(self.n_blocks, self.cursor.epoch_seed);
            }
            ids.push(self.order[self.cursor.position]);
            self.cursor.position += 1;
        }
        ids
    }
}

fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    Rng::new(seed).shuffle(&mut order);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_epoch_is_a_permutation_and_cursor_resumes_exactly() {
        let mut rng = Rng::new(3);
        let mut a = ShuffledEpochs::new(10, &mut rng);
        let mut first: Vec<usize> = a.next_batch(10);
        first.sort();
        assert_eq!(first, (0..10).collect::<Vec<_>>());
        a.next_batch(7);
        let mut b = ShuffledEpochs::from_cursor(10, a.cursor().clone());
        assert_eq!(a.next_batch(25), b.next_batch(25));
        assert_eq!(a.cursor().epoch, 4);
    }
}
