#!/usr/bin/env bash
# The first real sweep: uniform vs LFR at three CPU compute classes (0.01, 0.02, 0.04
# reference hours), 3 seeds each, on a 350,000-character slice of a corpus, then
# the loss-vs-compute fits. Results: runs/sweeps/lfr-vs-uniform-cpu/{results.csv,summary.md,*.png}.
# Usage: scripts/sweep-cpu.sh CORPUS_DIR   (BIN=path/to/syllabus to use a prebuilt binary)
#   CORPUS_DIR holds train.jsonl.gz (pre-shuffled) and val.jsonl.gz; the sweep in
#   docs/experiments/sweep-cpu.md used the 26M-token corpus that data/default/README.md
#   describes (the embedded default corpus is a slice of it).
# The reference throughput (configs/sweeps/reference-cpu.json) is committed so every machine
# converts the classes into the same step counts; re-measure with
#   syllabus throughput --config configs/sweeps/base-cpu.toml --out configs/sweeps/reference-cpu.json
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:?usage: $0 CORPUS_DIR}
bin=${BIN:-target/release/syllabus}
if [ -z "${BIN:-}" ]; then cargo build --release --quiet; fi
slice=runs/sweep-cpu/slice.jsonl.gz

# The slice: documents from the head of the (pre-shuffled) train split until 350,000 characters.
if [ ! -f data/prepared/sweep-cpu/manifest.json ]; then
  mkdir -p runs/sweep-cpu
  python3 scripts/slice_corpus.py "$corpus/train.jsonl.gz" "$slice" 350000
  $bin prepare --input "$slice" --val "$corpus/val.jsonl.gz" --out data/prepared/sweep-cpu
fi

$bin sweep --config configs/sweeps/lfr-vs-uniform-cpu.toml
