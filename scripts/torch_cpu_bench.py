#!/usr/bin/env python3
"""PyTorch eager reference for `syllabus bench` on the CPU: the same training step, timed the same way.

Same model as syllabus (pre-norm GPT-2 blocks, tanh GELU, learned positions, lm_head tied to the
token embedding, unpadded vocabulary), same work per step: forward to the per-token NLL in f32,
per-sequence mean losses read back to the host (what syllabus's ledger records), mean loss,
backward, global-norm clipping at 1.0, AdamW with decay on the block matmul weights only. Eager
mode, f32, `torch.set_num_threads(threads)`, one fixed batch of random tokens (data loading
excluded, as in `syllabus bench`), warm-up steps first, then the median of the timed steps.

AdamW runs as `--adamw fused` (torch's fused CPU kernel, the fastest of its three implementations
here), `foreach` or `loop` (the default on CPU tensors), so the reference is the fastest thing a
PyTorch user gets without compiling.

Install: `python3 -m pip install torch` (the PyPI wheel; the CPU-only wheel from
https://download.pytorch.org/whl/cpu is smaller and works the same). This script installs
nothing itself.

Example (the tiny preset): torch_cpu_bench.py --n-layer 4 --n-head 4 --d-model 128 --context 128
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from torch_gpt2_bench import GPT, matmul_flops_per_token


def f32_matmul_peak(n=1024, repeats=10):
    """Best-of-N rate of an n x n x n f32 matmul, FLOP/s (the same probe size as syllabus's)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g)
    b = torch.randn(n, n, generator=g)
    for _ in range(2):
        a @ b
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def make_optimizer(model, lr, impl):
    """AdamW with syllabus's groups: decay 0.1 on the block matmul weights, none elsewhere."""
    decay = [p for n, p in model.named_parameters() if n.startswith("blocks.") and p.dim() == 2]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}]
    flags = {"fused": {"fused": True}, "foreach": {"foreach": True}, "loop": {"foreach": False}}[impl]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8, **flags)


def main():
    ap = argparse.ArgumentParser(description="PyTorch eager CPU reference for syllabus bench")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--vocab-size", type=int, default=50257)
    ap.add_argument("--n-positions", type=int, default=None, help="default: --context")
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--adamw", choices=["fused", "foreach", "loop"], default="fused")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--json-out", help="write the report as JSON here")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    n_positions = a.n_positions or a.context
    model = GPT(a.vocab_size, n_positions, a.n_layer, a.n_head, a.d_model)
    opt = make_optimizer(model, a.lr, a.adamw)
    g = torch.Generator().manual_seed(a.seed)
    block = torch.randint(0, a.vocab_size, (a.batch_size, a.context + 1), generator=g)
    x, y = block[:, :-1].contiguous(), block[:, 1:].contiguous()

    def step():
        t0 = time.perf_counter()
        logits = model.logits(x)  # [B, T, V]
        nll = F.cross_entropy(logits.view(-1, a.vocab_size), y.view(-1), reduction="none")
        per_seq = nll.view(a.batch_size, a.context).mean(1)  # [B]
        loss = per_seq.mean()
        per_seq.tolist()  # the ledger's per-sequence losses, read back as syllabus does
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        return loss.item(), (t1 - t0, t2 - t1, t3 - t2, t3 - t0)

    losses, phases = [], []
    for i in range(a.warmup + a.steps):
        loss, times = step()
        losses.append(loss)
        if i >= a.warmup:
            phases.append(times)
    if not all(math.isfinite(v) for v in losses):
        sys.exit(f"torch_cpu_bench: non-finite loss: {losses}")

    fwd, bwd, optim, total = (statistics.median(p[k] for p in phases) for k in range(4))
    tokens_per_s = a.batch_size * a.context / total
    flops_per_token = matmul_flops_per_token(a.vocab_size, a.n_layer, a.d_model, a.context)
    peak = f32_matmul_peak()
    report = {
        "framework": f"torch {torch.__version__} eager",
        "threads": torch.get_num_threads(),
        "adamw": a.adamw,
        "params": sum(p.numel() for p in model.parameters()),
        "batch_size": a.batch_size,
        "context": a.context,
        "vocab_size": a.vocab_size,
        "warmup_steps": a.warmup,
        "timed_steps": a.steps,
        "forward_ms": fwd * 1e3,
        "backward_ms": bwd * 1e3,
        "optimizer_ms": optim * 1e3,
        "step_ms": total * 1e3,
        "tokens_per_s": tokens_per_s,
        "flops_per_token": flops_per_token,
        "f32_peak_flops": peak,
        "mfu": flops_per_token * tokens_per_s / peak,
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }
    print(f"torch eager: {report['params']:,} params, B={a.batch_size} T={a.context} "
          f"V={a.vocab_size}, fwd {fwd * 1e3:.1f} / bwd {bwd * 1e3:.1f} / optim "
          f"{optim * 1e3:.1f} ms, step {total * 1e3:.1f} ms, {tokens_per_s:,.0f} tokens/s, "
          f"MFU {100 * report['mfu']:.1f}% of its own f32 matmul peak {peak / 1e9:.0f} GFLOP/s")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
