//! Shuffled passes over each corpus source's blocks, for policies that balance or schedule
//! sources (a small source repeated, a large one subsampled, as in data-mixing schemes such as
//! DoReMi, arXiv 2305.10429). Public so a policy written outside the crate gets a
//! checkpoint-exact per-source order from one field: derive `Serialize`/`Deserialize` on the
//! policy, save it with `save_state`, and after `load_state` call [`SourcePasses::restore`]
//! with the ledger.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::passes::{PassCursor, ShuffledPasses};
use super::SamplingError;
use crate::ledger::LedgerRead;
use crate::rng::Rng;

/// One [`ShuffledPasses`] per source that has blocks (sources in id order, each over its blocks
/// from [`LedgerRead::blocks_by_source`]), each drawing its pass seeds from its own stream forked
/// off one seed. The passes begin on first use ([`SourcePasses::begin`]). Serialised as the seed
/// and one cursor per source (a few numbers each, never the block lists), which
/// [`SourcePasses::restore`] turns back into the same passes from the same ledger.
pub struct SourcePasses {
    seed: u64,
    passes: Vec<ShuffledPasses>,
}

impl SourcePasses {
    /// Passes not begun yet; `seed` is usually the policy's `PolicyEnv::seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            passes: Vec::new(),
        }
    }

    /// The passes, one per source with blocks, begun from `ledger` on the first call.
    pub fn begin(&mut self, ledger: &dyn LedgerRead) -> &mut [ShuffledPasses] {
        if self.passes.is_empty() {
            let mut seeds = Rng::new(self.seed);
            self.passes = sources(ledger)
                .map(|ids| ShuffledPasses::started(ids, seeds.fork()))
                .collect();
        }
        &mut self.passes
    }

    /// Rebuilds deserialised passes from the ledger snapshotted with their checkpoint. An error
    /// (naming `policy`) when the ledger's sources or their block counts differ from the saved
    /// ones: the ledger does not belong to the checkpoint.
    pub fn restore(&mut self, policy: &str, ledger: &dyn LedgerRead) -> Result<(), SamplingError> {
        if self.passes.is_empty() {
            return Ok(()); // saved before the first batch: `begin` starts them as usual
        }
        let members: Vec<Vec<u32>> = sources(ledger).collect();
        if members.len() != self.passes.len() {
            let message = format!(
                "the ledger has {} sources with blocks, the checkpoint {}",
                members.len(),
                self.passes.len()
            );
            return Err(SamplingError::state(policy, message));
        }
        let restore = |(ids, p): (Vec<u32>, &ShuffledPasses)| {
            ShuffledPasses::restore(ids, false, p.cursor().clone())
        };
        let restored = members.into_iter().zip(&self.passes).map(restore);
        self.passes = restored
            .collect::<Result<_, _>>()
            .map_err(|e| SamplingError::state(policy, e))?;
        Ok(())
    }
}

/// The ledger's sources that have blocks, each as its ascending block ids.
fn sources(ledger: &dyn LedgerRead) -> impl Iterator<Item = Vec<u32>> {
    let lists = ledger.blocks_by_source().into_iter();
    lists.filter(|ids| !ids.is_empty())
}

#[derive(Serialize)]
struct SavedRef<'a> {
    seed: u64,
    cursors: Vec<&'a PassCursor>,
}

#[derive(Deserialize)]
struct Saved {
    seed: u64,
    cursors: Vec<PassCursor>,
}

impl Serialize for SourcePasses {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let cursors = self.passes.iter().map(ShuffledPasses::cursor).collect();
        SavedRef {
            seed: self.seed,
            cursors,
        }
        .serialize(s)
    }
}

/// Cursors without their block lists until [`SourcePasses::restore`].
impl<'de> Deserialize<'de> for SourcePasses {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let saved = Saved::deserialize(d)?;
        Ok(Self {
            seed: saved.seed,
            passes: saved
                .cursors
                .into_iter()
                .map(ShuffledPasses::released)
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::BlockRecord;

    fn ledger(sources: &[u16]) -> Vec<BlockRecord> {
        sources.iter().map(|&s| BlockRecord::unseen(s)).collect()
    }

    #[test]
    fn restore_continues_each_source_exactly_and_checks_the_sources() {
        let l = ledger(&[0, 2, 0, 2, 2, 0, 0]);
        let mut a = SourcePasses::new(7);
        let ids = |p: &mut SourcePasses, s: usize| -> Vec<Option<u32>> {
            (0..9).map(|_| p.begin(&l)[s].take_cycling()).collect()
        };
        assert_eq!(a.begin(&l).len(), 2, "source 1 has no blocks");
        ids(&mut a, 1);
        let saved = serde_json::to_value(&a).unwrap_or_default();
        let mut b: SourcePasses = serde_json::from_value(saved.clone()).unwrap_or_else(|e| {
            panic!("{e}");
        });
        b.restore("p", &l).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ids(&mut a, 0), ids(&mut b, 0));
        assert_eq!(ids(&mut a, 1), ids(&mut b, 1));
        let mut c: SourcePasses = serde_json::from_value(saved).unwrap_or_else(|e| panic!("{e}"));
        let e = c.restore("p", &ledger(&[0, 0, 1])).unwrap_err().to_string();
        assert!(
            e.contains("sampling.p") && e.contains("eligible blocks"),
            "{e}"
        );
    }
}
