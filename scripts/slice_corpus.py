#!/usr/bin/env python3
"""Writes the head of a (pre-shuffled) .jsonl.gz corpus until CHARS characters of text, keeping
each document's `source` and `text`: the CPU-sized slices of the experiment scripts.

Usage: scripts/slice_corpus.py IN.jsonl.gz OUT.jsonl.gz CHARS
"""
import gzip
import json
import sys

src, dst, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
chars = 0
with gzip.open(dst, "wt") as out:
    for line in gzip.open(src, "rt"):
        d = json.loads(line)
        out.write(json.dumps({"source": d["source"], "text": d["text"]}) + "\n")
        chars += len(d["text"])
        if chars >= limit:
            break
