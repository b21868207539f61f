#!/usr/bin/env python3
"""Folds `perf script` output into per-frame inclusive/self shares (and a flamegraph-ready .folded file).

Usage: perf script -i perf.data | python3 bench/fold.py [--folded OUT] [--match REGEX] [--top N]

Prints the frames with the largest inclusive share of all samples (a frame counted once per sample), then the
self (leaf) shares. --match limits the inclusive table to frames whose name matches (e.g. 'llm_gateway|reqwest').
Symbol names are shortened: generic arguments and closure suffixes dropped, so the table stays readable.
"""

import argparse
import collections
import re
import sys


def short(sym):
    sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
    # Drop generic arguments <...> (nested) to keep names short.
    out, depth = [], 0
    for ch in sym:
        if ch == "<":
            depth += 1
            if depth == 1 and out and out[-1] not in (" ", "("):
                continue
        elif ch == ">":
            depth -= 1
            continue
        if depth <= 0 or (depth == 1 and ch == "<"):
            if ch != "<":
                out.append(ch)
    s = "".join(out).replace("{{closure}}", "{closure}")
    return s.strip() or sym


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--folded")
    ap.add_argument("--match")
    ap.add_argument("--top", type=int, default=40)
    a = ap.parse_args()
    stacks = collections.Counter()
    frames = []
    total = 0

    def flush():
        nonlocal frames, total
        if frames:
            stacks[tuple(reversed(frames))] += 1
            total += 1
        frames = []

    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line.strip():
            flush()
            continue
        if not line.startswith((" ", "\t")):
            flush()
            continue
        parts = line.strip().split(None, 1)
        if len(parts) < 2:
            continue
        sym = parts[1]
        sym = re.sub(r"\s+\(\S+\)$", "", sym)  # drop "(dso)"
        frames.append(short(sym))
    flush()
    if not total:
        print("no samples", file=sys.stderr)
        sys.exit(1)
    incl, leaf = collections.Counter(), collections.Counter()
    for stack, n in stacks.items():
        for f in set(stack):
            incl[f] += n
        leaf[stack[-1]] += n
    if a.folded:
        with open(a.folded, "w") as f:
            for stack, n in stacks.most_common():
                f.write(";".join(s.replace(";", ":") for s in stack) + f" {n}\n")
    rx = re.compile(a.match) if a.match else None
    print(f"{total} samples\n\ninclusive (share of all samples):")
    shown = 0
    for f, n in incl.most_common():
        if rx and not rx.search(f):
            continue
        print(f"  {100 * n / total:5.1f}%  {f[:150]}")
        shown += 1
        if shown >= a.top:
            break
    print("\nself (leaf):")
    for f, n in leaf.most_common(a.top // 2):
        print(f"  {100 * n / total:5.1f}%  {f[:150]}")


if __name__ == "__main__":
    main()
