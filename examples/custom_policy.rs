//! A sampling policy of your own, with every `syllabus` command: sources take turns, each
//! walking its own blocks in shuffled passes (a small source repeated, a large one subsampled).
//! Checkpoint-exact: its state is the turn and each source's pass cursor. Try it with
//! `cargo run --release --example custom_policy -- train --config configs/tiny.toml
//! --set sampling.policy=round-robin`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use syllabus::ledger::LedgerRead;
use syllabus::sampling::{load_state, no_params, save_state, PolicyEnv, SamplingPolicy};
use syllabus::sampling::{SamplingError as Error, Selection, SourcePasses};

pub const NAME: &str = "round-robin";

#[derive(Serialize, Deserialize)]
pub struct RoundRobin {
    /// The source whose turn was last.
    turn: usize,
    /// Each source's shuffled passes: saved as cursors, rebuilt from the ledger on restore.
    sources: SourcePasses,
}

pub fn construct(p: &toml::Table, env: &PolicyEnv) -> Result<Box<dyn SamplingPolicy>, Error> {
    no_params(NAME, p)?;
    let sources = SourcePasses::new(env.seed);
    Ok(Box::new(RoundRobin { turn: 0, sources }))
}

impl SamplingPolicy for RoundRobin {
    fn name(&self) -> &str {
        NAME
    }

    fn next_batch(&mut self, n: usize, ledger: &dyn LedgerRead, _step: u64) -> Selection {
        let sources = self.sources.begin(ledger);
        let mut take = |_| {
            self.turn = (self.turn + 1) % sources.len();
            sources[self.turn].take_cycling().map(|id| id as usize)
        };
        Selection::ids((0..n).filter_map(&mut take).collect())
    }

    fn save_state(&self) -> Value {
        save_state(NAME, self)
    }

    fn restore_state(&mut self, state: &Value, ledger: &dyn LedgerRead) -> Result<(), Error> {
        *self = load_state(NAME, state)?;
        self.sources.restore(NAME, ledger)
    }
}

/// The `syllabus` command line with this policy beside the built-in ones.
fn main() -> std::process::ExitCode {
    let mut plugins = syllabus::plugins::Plugins::builtin();
    plugins
        .policies
        .register(NAME, construct)
        .expect("unique name");
    syllabus::cli::main(plugins)
}
