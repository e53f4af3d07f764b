#!/usr/bin/env bash
# GPT-2 124M training throughput on one GPU, ours against a PyTorch reference, in one run:
#   (a) `syllabus bench` on gpt2-124m, bf16 matmuls, T = 1024, with our fused kernels and
#       with candle's composed ops (`perf.kernels`, the A/B of docs/perf/gpu.md);
#   (b) scripts/torch_gpt2_bench.py: the same model, batch and T in PyTorch (bf16 autocast,
#       torch.compile, SDPA attention, fused AdamW), plus a bf16 matmul peak measured here;
# each with 20 warm-up + 50 timed steps and the median step time. Prints tokens/s of both, the
# ratio, and MFU of both against that one measured bf16 peak. Report: $OUT/gpu-bench.json
# (the summary with both raw reports; these are also in $WORK/{syllabus,torch}-bench.json).
#
# Usage (on the GPU machine, repo root, CUDA binary from scripts/build-cuda.sh carried along):
#   scripts/gpu-bench.sh
# Environment: BENCH_BATCH (16), BENCH_CONTEXT (1024), BENCH_WARMUP (20), BENCH_STEPS (50),
#   BENCH_MICRO_BATCH (= BENCH_BATCH): ours runs BENCH_BATCH sequences per step as micro-batches
#   of this size (gradient accumulation) when it does not fit in memory at the full batch. The
#   composed attention (perf.kernels=composed) needs ~4 GB of activations per 1024-token
#   sequence, so B=16 needs ~80 GB: on an H100 time the A/B with 8 (the fused path alone is
#   predicted at ~1 GB per sequence and fits B=16). Tokens per optimizer step stay equal to the
#   reference's.
#   BENCH_PRECISION (bf16; f32 runs ours with TF32 matmuls), BENCH_KERNELS ("fused composed":
#   the perf.kernels settings to time; the first is compared with PyTorch), BENCH_PEAK_SIZE (8192, the bf16
#   matmul of the peak probe), BENCH_DEVICE (cuda:0; "cpu" tests the script itself without a
#   GPU, with small BENCH_* sizes), plus those of scripts/gpu-env.sh.
# Exit status: non-zero if either benchmark failed (the other still runs and is reported).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-env.sh

batch=${BENCH_BATCH:-16}
micro=${BENCH_MICRO_BATCH:-$batch}
if [ $((batch % micro)) -ne 0 ]; then
  echo "gpu-bench: BENCH_MICRO_BATCH=$micro does not divide BENCH_BATCH=$batch" >&2
  exit 1
fi
context=${BENCH_CONTEXT:-1024}
warmup=${BENCH_WARMUP:-20}
steps=${BENCH_STEPS:-50}
precision=${BENCH_PRECISION:-bf16}
device=${BENCH_DEVICE:-cuda:0}
kernel_sets=${BENCH_KERNELS:-fused composed}

ours_rc=0
for kernels in $kernel_sets; do
  echo "== (a) syllabus bench: gpt2-124m, $precision, $kernels kernels, B=$batch (micro-batches" \
    "of $micro) T=$context, $warmup + $steps steps" >&2
  rc=0
  "$SYLLABUS_BIN" bench --config configs/gpt2-124m.toml \
    --set run.device="$device" --set train.precision="$precision" \
    --set perf.kernels="$kernels" \
    --set train.batch_size="$micro" --set train.grad_accum=$((batch / micro)) \
    --set model.context_length="$context" \
    --warmup "$warmup" --steps "$steps" --json >"$WORK/syllabus-bench-$kernels.json" || rc=$?
  if [ "$rc" -eq 0 ]; then cat "$WORK/syllabus-bench-$kernels.json" >&2; else ours_rc=$rc; fi
done

echo "== (b) PyTorch reference: same model, B=$batch T=$context, $warmup + $steps steps" >&2
torch_rc=0
torch_device=${device%%:*} # cuda:0 -> cuda (the one visible GPU), cpu -> cpu
"$PYTHON" scripts/torch_gpt2_bench.py --device "$torch_device" --batch-size "$batch" \
  --context "$context" --warmup "$warmup" --steps "$steps" \
  --peak-size "${BENCH_PEAK_SIZE:-8192}" --json-out "$WORK/torch-bench.json" || torch_rc=$?

"$PYTHON" - "$WORK" "$OUT" "$ours_rc" "$torch_rc" $kernel_sets <<'PY'
import json, os, sys

work, out = sys.argv[1], sys.argv[2]
ours_rc, torch_rc, kernel_sets = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]

def load(name):
    path = os.path.join(work, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)

runs = {k: load(f"syllabus-bench-{k}.json") for k in kernel_sets}
ref = load("torch-bench.json") if torch_rc == 0 else None
# The first kernel set (default: fused, the default of a training run) is compared with torch.
ours = runs[kernel_sets[0]]
summary = {"syllabus": ours, "syllabus_by_kernels": runs, "torch": ref,
           "syllabus_rc": ours_rc, "torch_rc": torch_rc}
for kernels, r in runs.items():
    if r:
        print(f"syllabus ({r['precision']}, {kernels} kernels, B={r['batch_size']}x"
              f"{r['grad_accum']} T={r['context']}): median step {r['step_ms']:.1f} ms "
              f"(fwd {r['forward_ms']:.1f}, bwd {r['backward_ms']:.1f}, "
              f"optim {r['optimizer_ms']:.1f}), {r['tokens_per_s']:,.0f} tokens/s")
    else:
        print(f"syllabus bench with {kernels} kernels FAILED; see the output above")
if ref:
    peak = ref["bf16_peak_flops"]
    print(f"torch ({ref['framework']}, B={ref['batch_size']} T={ref['context']}): median step "
          f"{ref['step_ms']:.1f} ms, {ref['tokens_per_s']:,.0f} tokens/s")
    print(f"bf16 matmul peak measured in this run: {peak / 1e12:.1f} TFLOP/s")
    print(f"MFU torch:    {100 * ref['mfu']:.1f}%")
else:
    print(f"PyTorch reference FAILED (exit {torch_rc}); see the output above")
if ours and ref:
    # Same FLOP count per token for both (syllabus's formula, reimplemented in the script).
    assert abs(ours["flops_per_token"] - ref["flops_per_token"]) < 1e-6 * ref["flops_per_token"]
    ratio = ours["tokens_per_s"] / ref["tokens_per_s"]
    mfu = ours["flops_per_token"] * ours["tokens_per_s"] / ref["bf16_peak_flops"]
    summary.update(ratio=ratio, syllabus_mfu_vs_torch_peak=mfu)
    print(f"MFU syllabus: {100 * mfu:.1f}% (against candle's own {ours['precision']} matmul "
          f"peak {ours['peak_flops'] / 1e12:.1f} TFLOP/s: {100 * ours['mfu']:.1f}%)")
    print(f"ratio syllabus / torch tokens/s: {ratio:.3f}x")
with open(os.path.join(out, "gpu-bench.json"), "w") as f:
    json.dump(summary, f, indent=2)
PY
[ "$ours_rc" -eq 0 ] && [ "$torch_rc" -eq 0 ]
