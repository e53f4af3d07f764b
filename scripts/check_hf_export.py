#!/usr/bin/env python3
"""Checks `syllabus export` against Hugging Face transformers: the exported directory loads as
its architecture (GPT2LMHeadModel, LlamaForCausalLM) with no missing or unexpected keys, and greedy decoding from the same prompts
gives the same tokens as `syllabus sample --top-k 1` (the argmax of every step's logits).

    pip install torch transformers   # CPU wheels are fine
    python3 scripts/check_hf_export.py --run runs/tiny [--bin target/release/syllabus]

Exits 1 on any difference. Uses its own temporary directory for the export.
"""
import argparse
import json
import subprocess
import sys
import tempfile

import torch
from transformers import AutoModelForCausalLM

PROMPTS = ["The", "Once upon a time", "In the beginning the"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--bin", default="target/release/syllabus")
    ap.add_argument("--tokens", type=int, default=12)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = f"{tmp}/hf"
        subprocess.run([a.bin, "export", "--run", a.run, "--out", out], check=True)
        model, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
        print(f"loaded {type(model).__name__}")
        problems = {k: v for k, v in info.items() if v}
        print(f"loading info: {problems or 'no missing or unexpected keys'}")
        model.eval()
        failures = 1 if problems else 0
        for prompt in PROMPTS:
            ours = json.loads(subprocess.run(
                [a.bin, "sample", "--run", a.run, "--prompt", prompt, "--tokens",
                 str(a.tokens), "--top-k", "1", "--json"],
                check=True, capture_output=True, text=True).stdout)
            ids = torch.tensor([ours["prompt_ids"]])
            with torch.no_grad():
                hf = model.generate(ids, max_new_tokens=a.tokens, do_sample=False,
                                    pad_token_id=model.config.eos_token_id)
            theirs = hf[0, ids.shape[1]:].tolist()
            same = theirs == ours["ids"]
            failures += 0 if same else 1
            print(f"{prompt!r}: {'same' if same else 'DIFFERENT'} ({len(theirs)} tokens)"
                  + ("" if same else f"\n  ours {ours['ids']}\n  hf   {theirs}"))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
