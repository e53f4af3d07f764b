#!/usr/bin/env bash
# Everything a short GPU session is for, in order of value, inside a time budget. Each stage
# writes its report to $OUT as soon as it ends, so a session cut short keeps every finished
# stage; a failed stage is recorded and the next one still runs.
#   1. device   nvidia-smi facts; our kernels loaded and run: check-grads on the tiny preset (the
#               attention and cross-entropy kernels, forward and backward, against the CPU) and
#               a 3-step tiny bench (the AdamW kernels)              -> $OUT/session-device.json
#   2. grads    check-grads of gpt2-124m on the device in bf16 and f32 (ours) and bf16 (composed)
#               against the CPU in f32 (scripts/gpu-check.sh)        -> $OUT/session-grads.json
#   3. losses   the first 50 training steps, CPU f32 against the device in bf16 and f32
#               (scripts/gpu-check.sh)                               -> $OUT/session-losses.json
#   4. bench    gpt2-124m at B x 1024: ours with fused and composed kernels and the PyTorch
#               reference in the same run; ratio and MFU against a bf16 peak measured there
#               (scripts/gpu-bench.sh)                               -> $OUT/gpu-bench.json
#   5. train    gpt2-124m with the `lfr` policy on the embedded corpus for the minutes left, bf16,
#               WSD schedule cooled down by the wall-clock cap; TensorBoard events, metrics, the
#               ledger and its report                                -> $OUT/session-train/
# $OUT/session.json lists every stage with its exit status and seconds, rewritten after each.
#
# Usage (GPU machine, repo root, the CUDA build carried as for scripts/gpu-check.sh):
#   scripts/gpu-session.sh
# Environment: SESSION_SECONDS (330: the whole script; stage 5 gets what is left but a margin),
#   DEVICE (cuda:0; "cpu" is a dry run of every stage with small shapes, SYLLABUS_BIN pointing
#   at a CPU build), plus those of scripts/gpu-env.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
device=${DEVICE:-cuda:0}
[ "$device" = cpu ] && export CUDA_LIB_DIR=${CUDA_LIB_DIR:-none}
source scripts/gpu-env.sh || exit 1

if [ "$device" = cpu ]; then
  # Dry run: every stage on the CPU, at shapes that take seconds.
  export CHECK_DEVICE=cpu CHECK_GRAD_BATCH=1 CHECK_GRAD_CONTEXT=64 CHECK_STEPS=6
  export BENCH_DEVICE=cpu BENCH_BATCH=2 BENCH_CONTEXT=64 BENCH_WARMUP=1 BENCH_STEPS=2
  export BENCH_PEAK_SIZE=256 BENCH_PRECISION=f32
  train_shape=(--set model.n_layer=2 --set model.n_head=2 --set model.d_model=64
    --set model.context_length=64 --set train.batch_size=2)
else
  export CHECK_DEVICE=$device BENCH_DEVICE=$device
  export BENCH_WARMUP=${BENCH_WARMUP:-10} BENCH_STEPS=${BENCH_STEPS:-30}
  train_shape=(--set train.batch_size=16)
fi

# record NAME STATUS SECONDS: appends a stage and rewrites $OUT/session.json.
stages=()
record() {
  stages+=("$1:$2:$3")
  "$PYTHON" - "$OUT/session.json" "$device" "${stages[@]}" <<'PY'
import json, sys
out, device, rows = sys.argv[1], sys.argv[2], sys.argv[3:]
stages = [dict(zip(("stage", "exit", "seconds"), r.split(":"))) for r in rows]
for s in stages:
    s["exit"], s["seconds"] = int(s["exit"]), int(s["seconds"])
json.dump({"device": device, "stages": stages}, open(out, "w"), indent=2)
PY
}

# stage NAME LIMIT_SECONDS: runs this script's stage NAME as its own process under a time
# limit (never past the deadline) and records it.
stage() {
  local name=$1 limit=$2
  local left=$((SESSION_DEADLINE - $(date +%s)))
  [ "$limit" -gt "$left" ] && limit=$left
  if [ "$limit" -le 5 ]; then
    echo "== $name: skipped, no time left" >&2
    record "$name" 124 0
    return
  fi
  echo "== $name (up to $limit s)" >&2
  local t0 rc=0
  t0=$(date +%s)
  timeout "$limit" "$0" --stage "$name" || rc=$?
  record "$name" "$rc" $(($(date +%s) - t0))
}

device_stage() {
  local smi='null'
  if command -v nvidia-smi >/dev/null; then
    smi=$(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,compute_cap \
      --format=csv,noheader | "$PYTHON" -c 'import json, sys; print(json.dumps([l.strip() for l in sys.stdin]))')
  fi
  local rc=0
  "$SYLLABUS_BIN" check-grads --config configs/tiny.toml --set run.device="$device" \
    --set train.batch_size=2 --json >"$WORK/device-grads.json" || rc=1
  "$SYLLABUS_BIN" bench --config configs/tiny.toml --set run.device="$device" \
    --warmup 1 --steps 3 --json >"$WORK/device-bench.json" || rc=1
  "$PYTHON" - "$OUT/session-device.json" "$smi" "$WORK" <<'PY'
import json, os, sys
out, smi, work = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
def load(name):
    try:
        return json.load(open(os.path.join(work, name)))
    except (OSError, json.JSONDecodeError):
        return None
grads, bench = load("device-grads.json"), load("device-bench.json")
report = {"nvidia_smi": smi, "tiny_check_grads": grads and {
              "problems": grads["problems"], "loss": grads["loss"],
              "reference_loss": grads["reference_loss"],
              "max_rel_err": max(p["rel_err"] for p in grads["params"])},
          "tiny_bench": bench}
json.dump(report, open(out, "w"), indent=2)
print(json.dumps(report["tiny_check_grads"]))
PY
  return $rc
}

check_stage() { # grads | losses
  local rc=0
  CHECK_STAGES=$1 scripts/gpu-check.sh || rc=$?
  [ -f "$OUT/gpu-check.json" ] && mv "$OUT/gpu-check.json" "$OUT/session-$1.json"
  return $rc
}

train_stage() {
  local run=$WORK/session-train
  local hours
  hours=$("$PYTHON" -c "print(max(60, $SESSION_DEADLINE - $(date +%s) - 30) / 3600)")
  local rc=0
  "$SYLLABUS_BIN" train --config configs/gpt2-124m.toml --overwrite \
    --set run.out_dir="$run" --set run.device="$device" --set train.precision=bf16 \
    --set data.prepared_dir="$WORK/prepared" \
    --set 'data.inputs=["data/default/train.jsonl.gz"]' \
    --set 'data.val_inputs=["data/default/val.jsonl.gz"]' \
    "${train_shape[@]}" --set train.grad_accum=1 \
    --set sampling.policy=lfr --set budget.steps=100000 --set budget.wall_clock_hours="$hours" \
    --set schedule.kind=wsd --set schedule.warmup_steps=50 \
    --set eval.every=100 --set eval.max_blocks=64 --set checkpoint.every=0 || rc=$?
  mkdir -p "$OUT/session-train"
  cp "$run"/events.out.tfevents.* "$run"/metrics.jsonl "$run"/ledger.bin "$run"/config.toml \
    "$run"/summary.json "$run"/budget.json "$OUT/session-train/" 2>/dev/null
  "$SYLLABUS_BIN" ledger "$run" --json >"$OUT/session-train/ledger-report.json" || rc=1
  return $rc
}

if [ "${1:-}" = --stage ]; then
  case $2 in
    device) device_stage ;;
    grads | losses) check_stage "$2" ;;
    bench) scripts/gpu-bench.sh ;;
    train) train_stage ;;
    *) echo "gpu-session: unknown stage $2" >&2; exit 2 ;;
  esac
  exit
fi

start=$(date +%s)
export SESSION_DEADLINE=$((start + ${SESSION_SECONDS:-330}))
stage device 90
stage grads 120
stage losses 90
stage bench 200
stage train $((SESSION_DEADLINE - $(date +%s)))
echo "gpu-session: $(($(date +%s) - start)) s; stages in $OUT/session.json" >&2
