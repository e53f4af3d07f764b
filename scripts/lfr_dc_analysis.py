#!/usr/bin/env python3
"""Tables of the data-constrained curriculum experiment (docs/experiments/lfr-data-constrained.md)
from the sweep directories: final validation loss per policy and class, the compute ratio at
which each policy reaches uniform's loss (bootstrap CI over seeds), zero-shot accuracy of the
largest class, and the ledgers' forgetting statistics and per-source sample shares.

Usage: scripts/lfr_dc_analysis.py [--bin target/release/syllabus] [--out DIR]
Reads runs/sweeps/lfr-dc{,-ablations}/results.csv and each run's eval.json and ledger; writes
DIR/tables.md and DIR/final_losses.csv (default DIR: docs/experiments/lfr-data-constrained).
"""
import argparse
import csv
import json
import math
import random
import statistics
import subprocess
from collections import defaultdict
from pathlib import Path

CLASSES = ["1ep", "2ep", "4ep", "8ep"]
EPOCHS = {"1ep": 1, "2ep": 2, "4ep": 4, "8ep": 8}
POLICIES = ["uniform", "lfr", "loss-priority", "online-batch"]
ABLATIONS = ["lfr-drop-random", "lfr-no-review"]
SWEEPS = [Path("runs/sweeps/lfr-dc"), Path("runs/sweeps/lfr-dc-ablations")]
BOOTSTRAP = 10_000


def final_losses():
    """{(policy, class): {seed: (loss, run_dir)}} from the last evaluation of every run."""
    last = {}
    for sweep in SWEEPS:
        path = sweep / "results.csv"
        if not path.exists():
            continue
        for row in csv.DictReader(open(path)):
            key = (row["policy"], row["compute_class"], int(row["seed"]))
            tokens = int(row["tokens_seen"])
            if key not in last or tokens > last[key][0]:
                last[key] = (tokens, float(row["loss"]), row["run"])
    out = defaultdict(dict)
    for (policy, cls, seed), (_, loss, run) in last.items():
        out[(policy, cls)][seed] = (loss, run)
    return out


def mean_std(xs):
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else float("nan"))


def crossing(curve, target):
    """Compute (in epochs) where the piecewise log-linear curve [(epochs, loss)] first reaches
    `target`; None below the first point's compute is 'below range', above the last 'above'."""
    if curve[0][1] <= target:
        return "below"
    for (c0, l0), (c1, l1) in zip(curve, curve[1:]):
        if l1 <= target:
            f = (l0 - target) / (l0 - l1)
            return math.exp(math.log(c0) + f * (math.log(c1) - math.log(c0)))
    return "above"


def ratio(losses, policy, cls, draw):
    """C_policy / C_uniform(cls) with per-cell seed lists chosen by `draw`."""
    target = statistics.mean(draw(losses[("uniform", cls)]))
    curve = [(EPOCHS[c], statistics.mean(draw(losses[(policy, c)]))) for c in CLASSES]
    x = crossing(curve, target)
    return x / EPOCHS[cls] if isinstance(x, float) else x


def ratio_table(losses, rng):
    rows = []
    for policy in POLICIES[1:]:
        if not all((policy, c) in losses for c in CLASSES):
            continue
        for cls in CLASSES:
            point = ratio(losses, policy, cls, lambda d: [v[0] for v in d.values()])
            samples = []
            for _ in range(BOOTSTRAP):
                samples.append(ratio(losses, policy, cls,
                                     lambda d: [v[0] for v in rng.choices(list(d.values()), k=len(d))]))
            finite = sorted(s for s in samples if isinstance(s, float))
            below = sum(s == "below" for s in samples) / BOOTSTRAP
            above = sum(s == "above" for s in samples) / BOOTSTRAP
            if len(finite) >= 0.95 * BOOTSTRAP:
                lo = finite[int(0.025 * len(finite))]
                hi = finite[int(0.975 * len(finite)) - 1]
                ci = f"[{lo:.2f}, {hi:.2f}]"
            else:
                ci = "n/a"
            p = f"{point:.2f}" if isinstance(point, float) else f"{point} range"
            rows.append((policy, cls, p, ci, below, above))
    return rows


def ledger(bin_path, run):
    out = subprocess.run([bin_path, "ledger", run, "--json", "--top-k", "0"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def eval_tasks(run):
    path = Path(run) / "eval.json"
    if not path.exists():
        return {}
    checkpoints = json.load(open(path))["checkpoints"]
    report = checkpoints[max(checkpoints, key=int)]["report"]
    return {t["task"]: t["acc"] for t in report.get("tasks", [])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/syllabus")
    ap.add_argument("--out", default="docs/experiments/lfr-data-constrained")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    losses = final_losses()
    md = []

    md.append("## Final validation loss (nats; mean +- std over seeds)\n")
    md.append("| policy | " + " | ".join(CLASSES) + " |")
    md.append("|---|" + "---|" * len(CLASSES))
    with open(out / "final_losses.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["policy", "class", "epochs", "seed", "final_val_loss"])
        for policy in POLICIES + ABLATIONS:
            cells = []
            for cls in CLASSES:
                runs = losses.get((policy, cls))
                if not runs:
                    cells.append("")
                    continue
                for seed, (loss, _) in sorted(runs.items()):
                    w.writerow([policy, cls, EPOCHS[cls], seed, f"{loss:.4f}"])
                m, s = mean_std([v[0] for v in runs.values()])
                cells.append(f"{m:.4f} +- {s:.4f} (n={len(runs)})")
            if any(cells):
                md.append(f"| {policy} | " + " | ".join(cells) + " |")

    md.append("\n## Compute to reach uniform's final loss, as a ratio of uniform's compute\n")
    md.append("Ratio < 1: the policy needs less compute. 95% bootstrap CI over seeds "
              f"({BOOTSTRAP:,} resamples); `below`/`above` = share of resamples where the target "
              "lies outside the policy's measured range (1-8 epochs).\n")
    md.append("| policy | uniform class | ratio | 95% CI | below | above |")
    md.append("|---|---|---|---|---|---|")
    for policy, cls, p, ci, below, above in ratio_table(losses, random.Random(0)):
        md.append(f"| {policy} | {cls} | {p} | {ci} | {below:.2f} | {above:.2f} |")

    md.append("\n## Largest class: zero-shot accuracy, forgetting, sample shares\n")
    md.append("| policy | seed | lambada | hellaswag | piqa | arc_easy | winogrande | forgotten (paper 25%) | of those, more than once (paper 82%) |")
    md.append("|---|---|---|---|---|---|---|---|---|")
    shares = defaultdict(lambda: defaultdict(list))
    block_share = {}
    for policy in POLICIES + ABLATIONS:
        for seed, (_, run) in sorted(losses.get((policy, "8ep"), {}).items()):
            acc = eval_tasks(run)
            led = ledger(args.bin, run)
            fg = led["forgetting"]
            more = fg["share_more_than_once_of_forgotten"]
            cells = [f"{acc[t]:.3f}" if t in acc else "" for t in
                     ["lambada", "hellaswag", "piqa", "arc_easy", "winogrande"]]
            md.append(f"| {policy} | {seed} | " + " | ".join(cells) +
                      f" | {fg['share_forgotten']:.1%} | " +
                      (f"{more:.1%}" if more is not None else "n/a") + " |")
            total = sum(s["blocks"] for s in led["sources"])
            for s in led["sources"]:
                shares[policy][s["name"]].append(s["sample_share"])
                block_share[s["name"]] = s["blocks"] / total
    if shares:
        names = sorted(block_share)
        md.append("\n### Per-source sample share at the largest class (mean over seeds)\n")
        md.append("| policy | " + " | ".join(names) + " |")
        md.append("|---|" + "---|" * len(names))
        md.append("| (share of blocks) | " + " | ".join(f"{block_share[n]:.3f}" for n in names) + " |")
        for policy, by_source in shares.items():
            md.append(f"| {policy} | " + " | ".join(
                f"{statistics.mean(by_source[n]):.3f}" for n in names) + " |")

    (out / "tables.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
