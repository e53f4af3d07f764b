"""Reference numbers for tests/model_llama.rs: a tiny LlamaForCausalLM (transformers) with
weights given by a formula, its logits and mean next-token loss on a fixed token sequence.
The Rust test builds the same weights and compares; run this to regenerate the constants.

    python scripts/llama_reference.py
"""
import math

import torch
from transformers import LlamaConfig, LlamaForCausalLM

V, D, H, L, F, P = 11, 8, 2, 2, 16, 16
TOKENS = [1, 5, 3, 7, 2, 9, 4]


def value(j: int, k: int, is_norm: bool) -> float:
    """Element k of the j-th parameter in sorted-name order (the Rust test's formula)."""
    if is_norm:
        return 1.0 + 0.1 * math.sin(k + 0.5 * j)
    return 0.5 * math.sin(1.3 * k + 0.7 * j + 0.1)


def main() -> None:
    cfg = LlamaConfig(
        vocab_size=V, hidden_size=D, intermediate_size=F, num_hidden_layers=L,
        num_attention_heads=H, num_key_value_heads=H, max_position_embeddings=P,
        rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
        attention_bias=False, mlp_bias=False, hidden_act="silu",
    )
    model = LlamaForCausalLM(cfg).double().eval()
    params = dict(model.named_parameters())
    with torch.no_grad():
        for j, name in enumerate(sorted(params)):
            p = params[name]
            flat = [value(j, k, name.endswith("norm.weight")) for k in range(p.numel())]
            p.copy_(torch.tensor(flat, dtype=torch.float64).reshape(p.shape))
        ids = torch.tensor([TOKENS])
        logits = model(ids).logits[0]
        nll = torch.nn.functional.cross_entropy(logits[:-1], ids[0, 1:])
    print("names:", sorted(params))
    for row in logits.tolist():
        print("[" + ", ".join(f"{x:.6}" for x in row) + "],")
    print(f"mean nll: {nll.item():.7f}")


if __name__ == "__main__":
    main()
