#!/usr/bin/env bash
# Correctness of training on the GPU, against the CPU, in one run:
#   1. `syllabus check-grads` on cuda:0, bf16 and f32 (TF32) with our fused kernels, and bf16
#      with candle's composed ops: one forward + backward of gpt2-124m (B=2, T=1024) against
#      the CPU in f32 (composed ops) from the same weights and batch. Every
#      parameter must get a finite, non-zero gradient within a relative L2 error of 5e-2 (bf16)
#      / 1e-2 (f32) of the CPU's, and the loss within 5e-3 / 1e-3 relative.
#   2. The first 50 steps of a real training run (tiny preset on data/default, uniform sampling,
#      same seed, hence the same batches) on the CPU in f32, and on cuda:0 in bf16 and in f32:
#      each CUDA run's per-step losses must agree with the CPU's within a mean |diff| of 0.02
#      nats and a largest single-step |diff| of 0.3 nats. Calibration, on the CPU: bf16 vs f32
#      gave a mean of 0.0045 and a largest of 0.125 (one loss-spike batch; the others < 0.01).
#      Training on CUDA also fails outright if any parameter receives no gradient.
# Report: $OUT/gpu-check.json. Exit status non-zero if any check failed (all of them run).
#
# Usage (on the GPU machine, repo root): scripts/gpu-check.sh
# Environment: CHECK_STAGES ("grads losses": which of the two parts to run), CHECK_STEPS (50),
#   CHECK_CPU_BF16=1 to add a CPU bf16 run (isolates device
#   differences from precision differences; slow: candle's CPU bf16 widens to f32),
#   CHECK_DEVICE (cuda:0; "cpu" runs the whole script without a GPU, to test the script itself),
#   CHECK_GRAD_BATCH (2) and CHECK_GRAD_CONTEXT (1024): check-grads' shape (the CPU reference
#   needs ~16 GB of RAM at 2 x 1024), plus those of scripts/gpu-env.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-env.sh || exit 1

stages=${CHECK_STAGES:-grads losses}
steps=${CHECK_STEPS:-50}
device=${CHECK_DEVICE:-cuda:0}
grad_batch=${CHECK_GRAD_BATCH:-2}
grad_context=${CHECK_GRAD_CONTEXT:-1024}
failed=()
has_stage() { [[ " $stages " == *" $1 "* ]]; }
has_stage grads && rm -f "$WORK"/grads-*.json
has_stage losses && rm -f "$WORK"/losses-*.json

has_stage grads && echo "== 1. gradients on $device vs CPU f32 (gpt2-124m, B=$grad_batch, T=$grad_context)" >&2
# Our fused kernels (the default) in both precisions, and candle's composed ops in bf16: if only
# the fused runs fail, the fault is in kernels/*.cu; if all fail, in candle or the model.
has_stage grads && for setting in bf16:fused f32:fused bf16:composed; do
  precision=${setting%%:*} kernels=${setting##*:}
  "$SYLLABUS_BIN" check-grads --config configs/gpt2-124m.toml \
    --set run.device="$device" --set train.precision="$precision" \
    --set perf.kernels="$kernels" \
    --set train.batch_size="$grad_batch" --set model.context_length="$grad_context" \
    --json >"$WORK/grads-$precision-$kernels.json" || failed+=("check-grads $precision $kernels")
done

has_stage losses && echo "== 2. first $steps training steps: CPU f32 vs $device (tiny preset, data/default)" >&2
run() { # NAME DEVICE PRECISION
  "$SYLLABUS_BIN" train --config configs/tiny.toml --overwrite \
    --set run.out_dir="$WORK/train-$1" --set run.device="$2" --set train.precision="$3" \
    --set budget.steps="$steps" --set schedule.warmup_steps=$((steps / 5)) \
    --set sampling.policy=uniform \
    --set logging.log_every=1 --set logging.tensorboard=false \
    --set eval.every=0 --set eval.max_blocks=16 --set eval.sample_tokens=0 \
    --set checkpoint.every=0 || failed+=("train $1")
}
compare() { # NAME
  "$PYTHON" scripts/compare_losses.py "$WORK/train-cpu-f32/metrics.jsonl" \
    "$WORK/train-$1/metrics.jsonl" --steps "$steps" --mean-tol 0.02 --max-tol 0.3 \
    --json-out "$WORK/losses-$1.json" || failed+=("losses $1 vs cpu-f32")
}
if has_stage losses; then
  run cpu-f32 cpu f32
  run cuda-bf16 "$device" bf16
  run cuda-f32 "$device" f32
  compare cuda-bf16
  compare cuda-f32
fi
if has_stage losses && [ "${CHECK_CPU_BF16:-0}" = 1 ]; then
  run cpu-bf16 cpu bf16
  compare cpu-bf16
fi

"$PYTHON" - "$WORK" "$OUT/gpu-check.json" "${failed[@]}" <<'PY'
import glob, json, os, sys

work, out, failed = sys.argv[1], sys.argv[2], sys.argv[3:]
report = {"failed": failed, "grads": {}, "losses": {}}
for path in sorted(glob.glob(os.path.join(work, "grads-*.json"))):
    try:
        with open(path) as f:
            r = json.load(f)
    except (OSError, json.JSONDecodeError):
        continue  # that check failed before writing; it is listed in "failed"
    key = f"{r['precision']} {r['kernels']}"
    report["grads"][key] = {k: r[k] for k in ("device", "loss", "reference_loss", "tolerance", "problems")}
    report["grads"][key]["max_rel_err"] = max(p["rel_err"] for p in r["params"])
    report["grads"][key]["params"] = len(r["params"])
    print(f"check-grads {key}: {len(r['params'])} parameters, max gradient relative error "
          f"{report['grads'][key]['max_rel_err']:.2e}, loss {r['loss']:.6f} vs CPU "
          f"{r['reference_loss']:.6f}, problems: {r['problems'] or 'none'}")
for path in sorted(glob.glob(os.path.join(work, "losses-*.json"))):
    with open(path) as f:
        r = json.load(f)
    key = os.path.basename(path)[len("losses-"):-len(".json")]
    report["losses"][key] = r
    print(f"losses {key} vs cpu-f32: max |diff| {r['max_abs_diff']:.4f} (step "
          f"{r['max_at_step']}), mean |diff| {r['mean_abs_diff']:.4f}, passed: {r['passed']}")
with open(out, "w") as f:
    json.dump(report, f, indent=2)
print("gpu-check: " + ("FAILED: " + ", ".join(failed) if failed else "all checks passed"))
PY
[ ${#failed[@]} -eq 0 ]
