#!/usr/bin/env bash
# CPU training throughput, ours against a PyTorch eager reference, back to back in one run:
#   `syllabus bench` and scripts/torch_cpu_bench.py on the same shapes, threads and work per
#   step (tied lm_head, per-sequence losses read back, AdamW, global-norm clipping), alternating
#   ours / PyTorch for ROUNDS rounds and keeping each one's best median step. Prints tokens/s of
#   both, their ratio, and our MFU against the f32 matmul peak `syllabus bench` measures (its
#   own, and the highest of the script run).
#
# Shapes (arguments; default: all four):
#   tiny        the tiny preset: 4 layers, d 128, 4 heads, V 50257, B 16 x T 128
#   d384        8 layers, d 384, 6 heads, V 50257, B 16 x T 128
#   tiny-v8192  the tiny preset with an 8,192-token vocabulary
#   gpt2-124m   gpt2-124m at B 2 x T 1024 (slow: about a minute per round)
#
# Needs PyTorch for the reference: `python3 -m pip install torch` (CPU wheels from
# https://download.pytorch.org/whl/cpu work too). Environment: PYTHON (python3; the
# interpreter with torch), THREADS (2), ROUNDS (2), OUT (target/cpu-bench: every JSON report
# and summary.json go there).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
threads=${THREADS:-2}
rounds=${ROUNDS:-2}
out=${OUT:-target/cpu-bench}
shapes=("$@")
[ ${#shapes[@]} -eq 0 ] && shapes=(tiny d384 tiny-v8192 gpt2-124m)

if ! "$python" -c "import torch" 2>/dev/null; then
  echo "cpu-bench: $python cannot import torch; install it (python3 -m pip install torch) or set PYTHON" >&2
  exit 1
fi
cargo build --release --quiet
mkdir -p "$out"
export RAYON_NUM_THREADS=$threads

tiny_torch="--n-layer 4 --n-head 4 --d-model 128 --context 128 --batch-size 16"
d384_set="--set model.n_layer=8 --set model.n_head=6 --set model.d_model=384"
for shape in "${shapes[@]}"; do
  case $shape in
    tiny)
      ours="--config configs/tiny.toml --warmup 2 --steps 8"
      torch="$tiny_torch --warmup 2 --steps 8" ;;
    d384)
      ours="--config configs/tiny.toml $d384_set --warmup 2 --steps 6"
      torch="--n-layer 8 --n-head 6 --d-model 384 --context 128 --batch-size 16 --warmup 2 --steps 6" ;;
    tiny-v8192)
      ours="--config configs/tiny.toml --vocab-size 8192 --warmup 3 --steps 12"
      torch="$tiny_torch --vocab-size 8192 --warmup 3 --steps 12" ;;
    gpt2-124m)
      ours="--config configs/gpt2-124m.toml --set train.batch_size=2 --set train.grad_accum=1 --warmup 1 --steps 3"
      torch="--n-layer 12 --n-head 12 --d-model 768 --context 1024 --n-positions 1024 --batch-size 2 --lr 6e-4 --warmup 1 --steps 3" ;;
    *)
      echo "cpu-bench: unknown shape '$shape' (tiny, d384, tiny-v8192, gpt2-124m)" >&2
      exit 1 ;;
  esac
  for round in $(seq 1 "$rounds"); do
    echo "cpu-bench: $shape, round $round/$rounds" >&2
    # shellcheck disable=SC2086 # the argument lists are meant to split
    ./target/release/syllabus bench $ours --json > "$out/$shape-ours-$round.json"
    # shellcheck disable=SC2086
    "$python" scripts/torch_cpu_bench.py $torch --threads "$threads" \
      --json-out "$out/$shape-torch-$round.json" > /dev/null
  done
done

"$python" - "$out" "$rounds" "${shapes[@]}" <<'EOF'
import json, sys
out, rounds, shapes = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
runs = {(s, w): [json.load(open(f"{out}/{s}-{w}-{r}.json")) for r in range(1, rounds + 1)]
        for s in shapes for w in ("ours", "torch")}
# The matmul peak is measured at the start of every `syllabus bench`; a run disturbed by other
# work on the machine measures it low. MFU is given against the run's own peak (what `bench`
# prints) and, more conservatively, against the highest peak measured in this script run.
top_peak = max(r["peak_flops"] for s in shapes for r in runs[(s, "ours")])
rows = []
print(f"{'shape':<12} {'ours tok/s':>11} {'torch tok/s':>12} {'ratio':>6} "
      f"{'MFU (own peak)':>15} {f'MFU (at {top_peak / 1e9:.0f} GFLOP/s)':>22}")
for shape in shapes:
    o = max(runs[(shape, "ours")], key=lambda r: r["tokens_per_s"])
    t = max(runs[(shape, "torch")], key=lambda r: r["tokens_per_s"])
    ratio = o["tokens_per_s"] / t["tokens_per_s"]
    mfu_top = o["flops_per_token"] * o["tokens_per_s"] / top_peak
    rows.append({"shape": shape, "ours": o, "torch": t, "ratio": ratio,
                 "mfu_at_top_peak": mfu_top, "top_peak_flops": top_peak})
    print(f"{shape:<12} {o['tokens_per_s']:>11,.0f} {t['tokens_per_s']:>12,.0f} {ratio:>5.2f}x "
          f"{100 * o['mfu']:>14.1f}% {100 * mfu_top:>21.1f}%")
json.dump(rows, open(f"{out}/summary.json", "w"), indent=2)
EOF
