#!/usr/bin/env bash
# The first LFR experiment: uniform vs lfr vs lfr(drop=random) vs lfr(review=false),
# 3 seeds each, same token budget, on a slice of a corpus. Prints a markdown table.
# Usage: scripts/lfr-vs-uniform.sh CORPUS_DIR [OUT_DIR]   (about 15 minutes on 2 CPU cores)
#   CORPUS_DIR holds train.jsonl.gz (pre-shuffled) and val.jsonl.gz; the experiment in
#   docs/experiments/lfr-vs-uniform.md used the 26M-token corpus that data/default/README.md
#   describes (the embedded default corpus is a slice of it).
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:?usage: $0 CORPUS_DIR [OUT_DIR]}
out=${2:-runs/lfr-vs-uniform}
bin=target/release/syllabus
cargo build --release --quiet
mkdir -p "$out"

# The slice: documents from the head of the (pre-shuffled) train split until 200,000 characters.
if [ ! -f data/prepared/lfr-vs-uniform/manifest.json ]; then
  python3 scripts/slice_corpus.py "$corpus/train.jsonl.gz" "$out/slice.jsonl.gz" 200000
  $bin prepare --input "$out/slice.jsonl.gz" --val "$corpus/val.jsonl.gz" \
    --out data/prepared/lfr-vs-uniform
fi

declare -A variants=(
  [uniform]="--set sampling.policy=uniform"
  [lfr]="--set sampling.policy=lfr"
  [lfr-drop-random]="--set sampling.policy=lfr --set sampling.lfr.drop=random"
  [lfr-no-review]="--set sampling.policy=lfr --set sampling.lfr.review=false"
)
for name in uniform lfr lfr-drop-random lfr-no-review; do
  for seed in 1 2 3; do
    dir="$out/$name-s$seed"
    if [ -f "$dir/summary.json" ]; then continue; fi
    # shellcheck disable=SC2086
    $bin train --config configs/experiments/lfr-vs-uniform.toml --overwrite \
      --set run.seed=$seed --set run.out_dir="\"$dir\"" ${variants[$name]} \
      > "$dir.log" 2>&1
    $bin ledger "$dir" --json > "$dir/ledger.json"
  done
done

python3 - "$out" <<'PY'
import json, statistics, sys, os
out = sys.argv[1]
print("| policy | val loss seed 1 / 2 / 3 | mean +- std |")
print("|---|---|---|")
for name in ["uniform", "lfr", "lfr-drop-random", "lfr-no-review"]:
    losses = [json.load(open(f"{out}/{name}-s{s}/summary.json"))["final_eval"]["loss"] for s in (1, 2, 3)]
    print(f"| {name} | {' / '.join(f'{l:.4f}' for l in losses)} | {statistics.mean(losses):.4f} +- {statistics.stdev(losses):.4f} |")
print()
print("Share of training samples per source (mean over seeds), vs share of blocks:")
for name in ["uniform", "lfr", "lfr-drop-random", "lfr-no-review"]:
    shares = {}
    for s in (1, 2, 3):
        rep = json.load(open(f"{out}/{name}-s{s}/ledger.json"))
        for src in rep["sources"]:
            shares.setdefault(src["name"], []).append((src["sample_share"], src["blocks"] / rep["blocks_total"]))
    cells = ", ".join(f"{k} {100*statistics.mean(a for a,_ in v):.1f}% (blocks {100*statistics.mean(b for _,b in v):.1f}%)" for k, v in sorted(shares.items()))
    print(f"- {name}: {cells}")
PY
