#!/usr/bin/env python3
"""Synthetic prepare-benchmark corpus: a JSONL(.gz) corpus written over and over, perturbed,
into shards of `.jsonl.zst` (through the `zstd` command) or `.parquet` (through pyarrow,
zstd-compressed, a `text` and a `source` column, as Hugging Face datasets ship them).

Each copy k prefixes every document with a line naming the copy and swaps two words of its
first sentence, so no two documents are identical (the hash split and duplicate counts
behave as on real data) while the text keeps the statistics of the source corpus.

    python3 scripts/synth_corpus.py --input CORPUS.jsonl.gz --out /tmp/synth \
        --gb 2 --shard-mb 256 --format zst      # or --format parquet (needs pyarrow)

Writes OUT/shard-00000.jsonl.zst ... (or .parquet) and prints the text bytes written. The
output is for benchmarks only: do not commit it.
"""
import argparse
import gzip
import json
import os
import subprocess


def documents(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                yield d["text"], d.get("source") or "default"


def perturb(text, copy):
    words = text.split(" ", 3)
    if len(words) == 4:
        words[0], words[1] = words[1], words[0]
    return f"Copy {copy}.\n" + " ".join(words)


class ZstShards:
    def __init__(self, out):
        self.out, self.index, self.proc = out, 0, None

    def start(self):
        path = os.path.join(self.out, f"shard-{self.index:05d}.jsonl.zst")
        self.proc = subprocess.Popen(["zstd", "-q", "-3", "-f", "-o", path], stdin=subprocess.PIPE)

    def write(self, text, source):
        if self.proc is None:
            self.start()
        line = json.dumps({"text": text, "source": source}, ensure_ascii=False) + "\n"
        self.proc.stdin.write(line.encode("utf-8"))

    def close_shard(self):
        if self.proc is not None:
            self.proc.stdin.close()
            if self.proc.wait() != 0:
                raise SystemExit("zstd failed")
            self.proc, self.index = None, self.index + 1


class ParquetShards:
    def __init__(self, out):
        import pyarrow  # noqa: F401  (fail early with a clear ImportError)
        self.out, self.index, self.texts, self.sources = out, 0, [], []

    def write(self, text, source):
        self.texts.append(text)
        self.sources.append(source)

    def close_shard(self):
        import pyarrow as pa
        import pyarrow.parquet as pq
        if not self.texts:
            return
        table = pa.table({"text": self.texts, "source": self.sources})
        path = os.path.join(self.out, f"shard-{self.index:05d}.parquet")
        # Row groups of ~100 MB of text, like the datasets library writes.
        pq.write_table(table, path, compression="zstd", row_group_size=20000)
        self.texts, self.sources, self.index = [], [], self.index + 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--gb", type=float, default=2.0, help="text to write, in GB (1e9 bytes)")
    ap.add_argument("--shard-mb", type=float, default=256.0)
    ap.add_argument("--format", choices=["zst", "parquet"], default="zst")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    shards = ZstShards(a.out) if a.format == "zst" else ParquetShards(a.out)
    corpus = list(documents(a.input))
    target, shard_bytes = int(a.gb * 1e9), int(a.shard_mb * 1e6)
    written = in_shard = copy = 0
    while written < target:
        for text, source in corpus:
            text = perturb(text, copy)
            shards.write(text, source)
            n = len(text.encode("utf-8"))
            written, in_shard = written + n, in_shard + n
            if in_shard >= shard_bytes:
                shards.close_shard()
                in_shard = 0
            if written >= target:
                break
        copy += 1
    shards.close_shard()
    print(f"wrote {written} bytes of text ({copy} copies) into {shards.index} shards in {a.out}")


if __name__ == "__main__":
    main()
