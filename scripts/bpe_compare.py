#!/usr/bin/env python3
"""GPT-2 BPE throughput of other fast implementations on a JSONL(.gz) corpus, offline: for
comparison with `syllabus prepare` on the same text.

- tiktoken (Rust core, what `tiktoken-rs` ports): an `Encoding` built directly from the
  r50k_base ranks file that the `tiktoken-rs` crate embeds (no download);
- Hugging Face `tokenizers` (Rust): a byte-level BPE built from the same crate's GPT-2
  `encoder.json` and `vocab.bpe`.

Text is loaded into memory first, so these times are tokenization only (no decompression,
JSON parsing or writing, which `syllabus prepare`'s times include).

    pip install tiktoken tokenizers
    python3 scripts/bpe_compare.py --input CORPUS.jsonl.gz --threads 2 --repeat 3 \
        --assets ~/.cargo/registry/src/*/tiktoken-rs-0.12.1/assets
"""
import argparse
import gzip
import json
import os
import time

R50K_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def load_texts(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def tiktoken_encoding(assets):
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    ranks = load_tiktoken_bpe(os.path.join(assets, "r50k_base.tiktoken"))
    return tiktoken.Encoding(
        name="r50k_base_local",
        pat_str=R50K_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 50256},
    )


def hf_tokenizer(assets):
    from tokenizers import ByteLevelBPETokenizer

    return ByteLevelBPETokenizer(
        os.path.join(assets, "encoder.json"), os.path.join(assets, "vocab.bpe")
    )


def timed(fn, repeat):
    """Best wall time and best CPU time (all threads) of `repeat` runs, and the result. On a
    shared machine CPU time per token is the steadier per-core figure."""
    best, best_cpu, out = None, None, None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        dt, dc = time.perf_counter() - t, time.process_time() - c
        best = dt if best is None else min(best, dt)
        best_cpu = dc if best_cpu is None else min(best_cpu, dc)
    return best, best_cpu, out


def report(name, n, dt, dc, mb):
    print(
        f"{name:<10} {n} tokens  wall {dt:.2f} s: {n / dt / 1e6:.2f} M tokens/s, {mb / dt:.1f} MB/s"
        f"  cpu {dc:.2f} s: {n / dc / 1e6:.2f} M tokens/s per core"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True)
    ap.add_argument("--assets", required=True, help="tiktoken-rs's assets/ folder")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-hf", action="store_true", help="tiktoken only (HF is ~8x slower)")
    a = ap.parse_args()
    # Must be set before tokenizers starts its rayon pool.
    os.environ["RAYON_NUM_THREADS"] = str(a.threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    texts = load_texts(a.input)
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    print(f"{len(texts)} documents, {mb:.1f} MB of text, {a.threads} thread(s), best of {a.repeat}")

    enc = tiktoken_encoding(a.assets)
    dt, dc, ids = timed(lambda: enc.encode_ordinary_batch(texts, num_threads=a.threads), a.repeat)
    n = sum(map(len, ids))
    report("tiktoken", n, dt, dc, mb)

    if a.skip_hf:
        return
    hf = hf_tokenizer(a.assets)
    dt, dc, encs = timed(lambda: hf.encode_batch(texts), a.repeat)
    n_hf = sum(len(e.ids) for e in encs)
    report("tokenizers", n_hf, dt, dc, mb)
    same = sum(e.ids == list(i) for e, i in zip(encs, ids))
    print(f"documents with identical ids in both: {same} of {len(texts)}")


if __name__ == "__main__":
    main()
