#!/usr/bin/env bash
# The first real sweep: uniform vs LFR at three CPU compute classes (0.01, 0.02, 0.04
# reference hours), 3 seeds each, on a 350,000-character slice of ../shared/data/corpus, then
# the loss-vs-compute fits. Results: runs/sweeps/lfr-vs-uniform-cpu/{results.csv,summary.md,*.png}.
# Usage: scripts/sweep-cpu.sh   (BIN=path/to/syllabus to use a prebuilt binary)
# The reference throughput (configs/sweeps/reference-cpu.json) is committed so every machine
# converts the classes into the same step counts; re-measure with
#   syllabus throughput --config configs/sweeps/base-cpu.toml --out configs/sweeps/reference-cpu.json
set -euo pipefail
cd "$(dirname "$0")/.."
shared=../shared/data/corpus
bin=${BIN:-target/release/syllabus}
if [ -z "${BIN:-}" ]; then cargo build --release --quiet; fi
slice=runs/sweep-cpu/slice.jsonl.gz

# The slice: documents from the head of the (pre-shuffled) train split until 350,000 characters.
if [ ! -f data/prepared/sweep-cpu/manifest.json ]; then
  mkdir -p runs/sweep-cpu
  python3 scripts/slice_corpus.py "$shared/train.jsonl.gz" "$slice" 350000
  $bin prepare --input "$slice" --val "$shared/val.jsonl.gz" --out data/prepared/sweep-cpu
fi

$bin sweep --config configs/sweeps/lfr-vs-uniform-cpu.toml
