#!/usr/bin/env bash
# The data-constrained curriculum experiment (docs/experiments/lfr-data-constrained.md).
# Usage: scripts/lfr-data-constrained.sh CORPUS_DIR STAGE...
#   CORPUS_DIR holds train.jsonl.gz and val.jsonl.gz (the 26M-token corpus and its held-out
#   split; eval/ beside it holds the zero-shot task files).
#   Stages, in order: data pilot grid ablations downstream (and followup, an exploratory
#   sweep designed after the results). BIN=path/to/syllabus uses a
#   prebuilt binary (otherwise `cargo build --release` first).
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:?usage: $0 CORPUS_DIR STAGE...}
shift
bin=${BIN:-target/release/syllabus}
if [ -z "${BIN:-}" ]; then cargo build --release --quiet; fi
work=runs/lfr-dc

for stage in "$@"; do
  case $stage in
    data)
      # The head of the pre-shuffled train split up to 1,000,000 characters (176 documents),
      # a 4,096-token BPE trained on it alone, and the prepared store with the whole
      # held-out split as validation.
      mkdir -p $work
      python3 scripts/slice_corpus.py "$corpus/train.jsonl.gz" $work/train-slice.jsonl.gz 1000000
      $bin tokenizer train --input $work/train-slice.jsonl.gz --vocab-size 4096 \
        --out $work/tokenizer-4k.json --overwrite
      $bin prepare --input $work/train-slice.jsonl.gz --val "$corpus/val.jsonl.gz" \
        --tokenizer $work/tokenizer-4k.json --out data/prepared/lfr-dc --overwrite
      ;;
    pilot)
      # Uniform at the largest class (8 epochs = 1,212 steps), seed 1337 (not a grid seed).
      $bin train --config configs/sweeps/base-lfr-dc.toml --overwrite \
        --set budget.steps=1212 --set eval.every=303 --set run.out_dir="\"$work/pilot\""
      ;;
    grid)
      $bin sweep --config configs/sweeps/lfr-dc.toml
      ;;
    ablations)
      $bin sweep --config configs/sweeps/lfr-dc-ablations.toml
      ;;
    followup)
      # Designed after the results: LFR with a review after every focus phase, 8 epochs.
      $bin sweep --config configs/sweeps/lfr-dc-followup.toml
      ;;
    downstream)
      # Zero-shot tasks (first 500 examples each) on every largest-class run.
      for run in runs/sweeps/lfr-dc/runs/*8ep* runs/sweeps/lfr-dc-ablations/runs/*8ep*; do
        [ -f "$run/summary.json" ] || continue
        $bin eval --run "$run" --tasks-dir "$corpus/../eval" --limit 500 \
          --tasks lambada,hellaswag,piqa,arc_easy,winogrande
      done
      ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
