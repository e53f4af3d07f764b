//! syllabus: adaptive-curriculum pretraining of GPT-2-sized language models.
//!
//! A folder per concern, in layers; a module uses only those below it (checked by
//! `tests/module_graph.rs`):
//!
//! 1. `rng` (the seeded RNG), `fsutil` (atomic writes, directory locks, checksummed JSON, fault
//!    points), `kernels` (gemm, SIMD, CUDA launches), `scaling` (scaling-law fits).
//! 2. `data` (tokenizer, token store, blocks, prepare), `model` (the architecture plugin
//!    interface and registry; GPT-2 with its CPU passes and fused ops, LLaMA, the quasi-LSTM), `logging` (TensorBoard, JSONL, console), `ledger` (per-block losses),
//!    `eval` (perplexity and zero-shot scoring), `device` (opening a device, the MFU peak),
//!    `generate` (sampling text), `sampling` (policies that pick blocks from the ledger).
//! 3. `config` (the TOML schema, composed of the sections above, and its validation),
//!    `plugins` (the policy and architecture registries a binary runs with).
//! 4. `optim` (AdamW, schedules, one training step), `perf` (`bench`, `check-grads`),
//!    `budget` (compute classes, the plan, the meter, the reference throughput).
//! 5. `train` (the run: session, loop, checkpoints, resume, reporting).
//! 6. `sweep` (grids of runs and their results), and `cli`, the `syllabus` command line on top.

pub mod budget;
pub mod cli;
pub mod config;
pub mod curate;
pub mod data;
pub mod device;
pub mod eval;
pub mod fsutil;
pub mod generate;
pub mod kernels;
pub mod ledger;
pub mod logging;
pub mod model;
pub mod optim;
pub mod perf;
pub mod plugins;
pub mod rng;
pub mod sampling;
pub mod scaling;
pub mod sweep;
pub mod train;
