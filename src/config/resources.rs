//! Checks of the counts that size a resource against what this machine can hold: threads
//! against its cores, and on the CPU the memory a training or evaluation step needs against
//! its RAM. A config asking for 100,000 threads or a batch no machine holds gets an error at
//! load time instead of hanging or swapping the machine.

use super::Config;
use crate::model::Architecture;

/// More threads than this many per core only add contention.
const THREADS_PER_CORE: usize = 4;

impl Config {
    pub(super) fn check_resources(&self, arch: &dyn Architecture, ctx: usize, p: &mut Vec<String>) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if self.run.threads > THREADS_PER_CORE * cores {
            p.push(format!(
                "run.threads = {} is more than {THREADS_PER_CORE} per core of this machine's \
                 {cores} cores (at most {}; 0 uses every core)",
                self.run.threads,
                THREADS_PER_CORE * cores
            ));
        }
        let Some(ram) = memory_bytes() else { return };
        if !self.run.device.starts_with("cpu") {
            return; // device memory is the GPU's, known only once it is opened
        }
        let t = &self.train;
        let steps = [
            (
                "train.batch_size",
                t.batch_size,
                arch.step_bytes(t.batch_size, ctx, true),
            ),
            (
                "eval.batch_size",
                self.eval.batch_size,
                arch.step_bytes(self.eval.batch_size, ctx, false),
            ),
        ];
        for (field, batch, need) in steps {
            if need > ram {
                p.push(format!(
                    "{field} = {batch} at context {ctx} needs at least {:.1} GB on the CPU \
                     (weights, optimizer state, activations, logits), more than this machine's \
                     {:.1} GB",
                    need / 1e9,
                    ram / 1e9
                ));
            }
        }
        let batch_tokens = (t.batch_size as f64) * (t.grad_accum as f64) * (ctx as f64 + 1.0);
        if batch_tokens * 4.0 > ram {
            p.push(format!(
                "train.batch_size x train.grad_accum = {} sequences per step do not fit in this \
                 machine's {:.1} GB as token ids",
                t.batch_size.saturating_mul(t.grad_accum),
                ram / 1e9
            ));
        }
    }
}

/// This machine's RAM from `/proc/meminfo` (Linux); `None` where unknown.
fn memory_bytes() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

#[cfg(test)]
mod tests {
    use crate::model::{Architecture, GptConfig};

    #[test]
    fn step_memory_grows_with_the_batch_and_holds_the_tiny_preset() {
        let tiny = GptConfig::preset("tiny").expect("preset");
        let small = tiny.step_bytes(16, 128, true);
        // tiny at B 16: ~0.5 GB of logits and activations plus 7.2M parameters x 4 copies.
        assert!((0.4e9..1.0e9).contains(&small), "{small}");
        assert!(tiny.step_bytes(1 << 20, 128, true) > 1e13);
        assert!(tiny.step_bytes(16, 128, false) < small);
    }
}
