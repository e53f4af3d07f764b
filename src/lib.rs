//! syllabus: adaptive-curriculum pretraining of GPT-2-sized language models.
//!
//! Folder per concern: `data` (tokenizer, token store, blocks), `model` (GPT-2),
//! `optim` (AdamW, schedules), `train` (loop, checkpoints, eval), `eval` (perplexity and
//! zero-shot suite), `logging`
//! (metrics sinks: TensorBoard, JSONL, console), `config` (TOML schema + validation).

pub mod budget;
pub mod config;
pub mod data;
pub mod eval;
pub mod fsutil;
pub mod generate;
pub mod kernels;
pub mod ledger;
pub mod logging;
pub mod model;
pub mod optim;
pub mod perf;
pub mod rng;
pub mod sampling;
pub mod scaling;
pub mod sweep;
pub mod train;
