#!/usr/bin/env python3
"""Writes tests/data/fasttext-official.{bin,json}: a small supervised classifier trained by the
official fastText (Facebook's C++ library through its Python binding, `pip install
fasttext-wheel`), and its P(__label__hq) for a few texts. tests/curate_pipeline.rs loads the
.bin with the pure-Rust reader the quality filter uses and checks it predicts the same, which
is what lets a classifier trained elsewhere (DCLM's) be given as `quality.model`.

The settings are DCLM's (softmax, word bigrams) at a small size: dim 8, 2,000 hash buckets,
one thread and a fixed seed, so the file is ~90 KB. Usage: python3 scripts/fasttext_fixture.py
"""
import json
import random
import tempfile
from pathlib import Path

import fasttext

OUT = Path(__file__).resolve().parent.parent / "tests" / "data"
GOOD = "theorem proof lemma equation experiment hypothesis analysis evidence measured result".split()
BAD = "buy cheap click free offer discount casino winner bonus deal".split()
PROBES = [
    "a proof of the lemma by analysis",
    "click for a free discount offer",
    "the experiment measured evidence for the hypothesis",
    "casino bonus winner",
    "a theorem about a cheap offer",
    "words the model never saw",
    "proof\nspread over\nthree lines",
]


def main():
    rng = random.Random(7)
    lines = []
    for label, words in [("__label__hq", GOOD), ("__label__cc", BAD)]:
        for _ in range(200):
            lines.append(label + " " + " ".join(rng.choice(words) for _ in range(12)))
    rng.shuffle(lines)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(lines) + "\n")
    model = fasttext.train_supervised(
        input=f.name, lr=0.1, dim=8, epoch=5, wordNgrams=2, bucket=2000, minCount=1,
        loss="softmax", thread=1, seed=7, verbose=0)
    OUT.mkdir(parents=True, exist_ok=True)
    model.save_model(str(OUT / "fasttext-official.bin"))
    probes = []
    for text in PROBES:
        # As DCLM scores documents: newlines become spaces (fastText reads one line).
        # The binding's low-level call (its `predict` wrapper fails under NumPy 2).
        pairs = model.f.predict(text.replace("\n", " ") + "\n", -1, 0.0, "strict")
        p = {label: float(prob) for prob, label in pairs}
        probes.append({"text": text, "p_hq": p.get("__label__hq", 0.0)})
    meta = {"trained_by": f"fasttext (Python binding) {getattr(fasttext, '__version__', '0.9.2')}",
            "labels": model.get_labels(), "probes": probes}
    (OUT / "fasttext-official.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
