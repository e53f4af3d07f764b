#!/usr/bin/env python3
"""Reference PyTorch GPT-2 training step, timed the way `syllabus bench` times ours.

The same model as syllabus's (GPT-2 124M by default: pre-norm blocks, tanh GELU, learned
positions, lm_head tied to the token embedding, vocabulary 50257 unpadded so both count the same
FLOPs), trained the way a fast PyTorch user would: bf16 autocast, torch.compile, SDPA attention
(flash attention on Hopper), fused AdamW, TF32 for what stays f32. One step = forward, backward,
global-norm clipping at 1.0, AdamW (decay 0.1 on the block matmul weights only, as syllabus),
on one fixed batch of random tokens (data loading excluded, as in `syllabus bench`).

Also measures the bf16 matmul peak of this device (best of several 8192^3 products) so MFU is
against a peak measured in the same run. Prints a summary and writes JSON with --json-out.

CPU smoke test (tiny, 2 steps): torch_gpt2_bench.py --device cpu --n-layer 2 --n-head 2
    --d-model 64 --context 64 --batch-size 2 --warmup 1 --steps 2 --peak-size 256
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, n_head):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.c_attn = nn.Linear(d, 3 * d)
        self.attn_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)  # [B, T, D] each
        # [B, H, T, hd]
        q, k, v = (z.view(b, t, self.n_head, d // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [B, H, T, hd]
        x = x + self.attn_proj(y.transpose(1, 2).contiguous().view(b, t, d))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab, n_positions, n_layer, n_head, d):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(n_positions, d)
        self.blocks = nn.ModuleList(Block(d, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        # GPT-2 init, as syllabus: N(0, 0.02), residual projections scaled by 1/sqrt(2 L).
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif "ln_" in name:
                nn.init.ones_(p)
            elif name.endswith("proj.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * n_layer))
            else:
                nn.init.normal_(p, std=0.02)

    def logits(self, idx):
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))  # [B, T, D]
        for block in self.blocks:
            x = block(x)
        return F.linear(self.ln_f(x), self.wte.weight)  # tied lm_head, [B, T, V]

    def forward(self, idx, targets):
        logits = self.logits(idx)
        # The loss in f32, as syllabus's per-token NLL.
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.view(-1))


def matmul_flops_per_token(vocab, n_layer, d, context):
    """syllabus's GptConfig::flops_per_token: 6 N_matmul + 12 L d T (PaLM appendix B)."""
    n_matmul = n_layer * 12 * d * d + vocab * d
    return 6 * n_matmul + 12 * n_layer * d * context


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bf16_matmul_peak(device, n, repeats=10):
    """Best-of-N rate of an n x n x n bf16 matmul on random data, FLOP/s."""
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16, generator=g)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16, generator=g)
    for _ in range(3):
        a @ b
    best = math.inf
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def make_optimizer(model, lr, device):
    decay = [p for n, p in model.named_parameters() if n.startswith("blocks.") and n.endswith("weight") and p.dim() == 2]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8, fused=fused), fused


def main():
    ap = argparse.ArgumentParser(description="Reference PyTorch GPT-2 training-step benchmark")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--vocab-size", type=int, default=50257)
    ap.add_argument("--n-positions", type=int, default=1024, help="rows of the position table")
    ap.add_argument("--n-layer", type=int, default=12)
    ap.add_argument("--n-head", type=int, default=12)
    ap.add_argument("--d-model", type=int, default=768)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--lr", type=float, default=6e-4)
    ap.add_argument("--no-compile", action="store_true", help="eager mode (debugging only)")
    ap.add_argument("--peak-size", type=int, default=8192, help="matmul size of the bf16 peak probe")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--json-out", help="write the report as JSON here")
    a = ap.parse_args()

    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_gpt2_bench: --device cuda but torch sees no GPU")
    torch.manual_seed(a.seed)
    torch.set_float32_matmul_precision("high")  # TF32 for any f32 matmul left

    if a.context > a.n_positions:
        sys.exit(f"torch_gpt2_bench: --context {a.context} > --n-positions {a.n_positions}")
    model = GPT(a.vocab_size, a.n_positions, a.n_layer, a.n_head, a.d_model).to(device)
    opt, fused = make_optimizer(model, a.lr, device)
    step_model = model if a.no_compile else torch.compile(model)
    g = torch.Generator(device="cpu").manual_seed(a.seed)
    block = torch.randint(0, a.vocab_size, (a.batch_size, a.context + 1), generator=g).to(device)
    x, y = block[:, :-1].contiguous(), block[:, 1:].contiguous()

    def step():
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            loss = step_model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    times, losses = [], []
    t_start = time.perf_counter()
    for i in range(a.warmup + a.steps):
        sync(device)
        t0 = time.perf_counter()
        loss = step()
        sync(device)
        dt = time.perf_counter() - t0
        losses.append(loss.item())
        if i >= a.warmup:
            times.append(dt)
        if i == 0:
            print(f"first step (compilation included): {dt:.1f} s", file=sys.stderr)
    total_s = time.perf_counter() - t_start

    step_s = statistics.median(times)
    tokens_per_s = a.batch_size * a.context / step_s
    flops_per_token = matmul_flops_per_token(a.vocab_size, a.n_layer, a.d_model, a.context)
    peak = bf16_matmul_peak(device, a.peak_size)
    report = {
        "framework": f"torch {torch.__version__}",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "compiled": not a.no_compile,
        "fused_adamw": fused,
        "params": sum(p.numel() for p in model.parameters()),
        "batch_size": a.batch_size,
        "context": a.context,
        "warmup_steps": a.warmup,
        "timed_steps": a.steps,
        "step_ms": step_s * 1e3,
        "step_ms_min": min(times) * 1e3,
        "tokens_per_s": tokens_per_s,
        "flops_per_token": flops_per_token,
        "bf16_peak_flops": peak,
        "mfu": flops_per_token * tokens_per_s / peak,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "wall_s": total_s,
    }
    if not all(math.isfinite(l) for l in losses):
        sys.exit(f"torch_gpt2_bench: non-finite loss: {losses}")
    print(f"torch: {report['params']:,} params, B={a.batch_size} T={a.context}, median step "
          f"{report['step_ms']:.1f} ms, {tokens_per_s:,.0f} tokens/s, bf16 peak "
          f"{peak / 1e12:.1f} TFLOP/s, MFU {100 * report['mfu']:.1f}%, loss "
          f"{losses[0]:.3f} -> {losses[-1]:.3f}")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
