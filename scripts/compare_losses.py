#!/usr/bin/env python3
"""Compares the per-step training losses of two `syllabus train` runs (their metrics.jsonl).

Usage: compare_losses.py REFERENCE_METRICS OTHER_METRICS --steps 50 --mean-tol 0.02
           --max-tol 0.3 [--json-out F]

Both runs must have logged `train/loss` at every step (logging.log_every = 1). Fails (exit 1)
when one of the first --steps steps is missing or not finite, when the mean absolute difference
over them exceeds --mean-tol nats, or when any single step differs by more than --max-tol.
Two tolerances because single batches can be very sensitive: measured on the CPU (bf16 vs f32,
tiny preset, 50 steps, docs/perf/gpu.md) the per-step differences were ~0.003 nats except one
loss-spike batch at 0.125, with a mean of 0.0045.
"""
import argparse
import json
import math
import sys


def train_losses(path):
    losses = {}
    try:
        f = open(path)
    except OSError as e:
        sys.exit(f"compare_losses: cannot read {path} ({e.strerror}; did that run fail?)")
    with f:
        for n, line in enumerate(f, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: not JSON ({e})")
            if row.get("tag") == "train/loss":
                value = row["value"]
                losses[row["step"]] = float("nan") if value is None else float(value)
    return losses


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reference")
    ap.add_argument("other")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--mean-tol", type=float, required=True, help="max mean |diff|, nats")
    ap.add_argument("--max-tol", type=float, required=True, help="max |diff| of any step, nats")
    ap.add_argument("--json-out")
    a = ap.parse_args()

    ref, other = train_losses(a.reference), train_losses(a.other)
    problems, diffs = [], []
    for step in range(1, a.steps + 1):
        if step not in ref or step not in other:
            problems.append(f"step {step}: no train/loss in {'both' if step not in ref and step not in other else a.reference if step not in ref else a.other}")
            continue
        r, o = ref[step], other[step]
        if not (math.isfinite(r) and math.isfinite(o)):
            problems.append(f"step {step}: non-finite loss ({r} vs {o})")
            continue
        d = abs(r - o)
        diffs.append((d, step, r, o))
        if d > a.max_tol:
            problems.append(f"step {step}: {r:.5f} vs {o:.5f} (|diff| {d:.5f} > {a.max_tol})")
    worst = max(diffs) if diffs else (float("nan"), 0, float("nan"), float("nan"))
    mean = sum(d for d, *_ in diffs) / len(diffs) if diffs else float("nan")
    if not mean <= a.mean_tol:
        problems.append(f"mean |diff| {mean:.5f} > {a.mean_tol}")
    summary = {
        "reference": a.reference,
        "other": a.other,
        "steps": a.steps,
        "mean_tol": a.mean_tol,
        "max_tol": a.max_tol,
        "max_abs_diff": worst[0],
        "max_at_step": worst[1],
        "mean_abs_diff": mean,
        "first_loss": [ref.get(1), other.get(1)],
        "last_loss": [ref.get(a.steps), other.get(a.steps)],
        "passed": not problems,
        "problems": problems,
    }
    print(f"{a.other} vs {a.reference}: {len(diffs)} steps, max |diff| {worst[0]:.5f} "
          f"at step {worst[1]} ({worst[2]:.5f} vs {worst[3]:.5f}), mean |diff| {mean:.5f}, "
          f"(tolerances: mean {a.mean_tol}, max {a.max_tol})")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(summary, f, indent=2)
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems[:20]), file=sys.stderr)
        sys.exit(1)
    print("passed")


if __name__ == "__main__":
    main()
