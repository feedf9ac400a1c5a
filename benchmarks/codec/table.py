#!/usr/bin/env python3
"""Prints the side-by-side table from criterion's results of `cargo bench` in
this folder: one row per case with each contender's median time per
operation, per record for record cases (ns) or as GB/s for message cases, and
how many times faster ferrokafka is than kafka-protocol.

    python3 table.py                       # the last run (target/criterion)
    python3 table.py run1/ run2/ run3/     # copies of target/criterion from
                                           # several runs: the median of their medians
"""
import json
import pathlib
import statistics
import sys

roots = [pathlib.Path(a) for a in sys.argv[1:]] or [
    pathlib.Path(__file__).parent / "target" / "criterion"
]
runs = {}
for root in roots:
    for bench in sorted(root.glob("*/*/new/benchmark.json")):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        key = (meta["group_id"], meta["function_id"])
        runs.setdefault(key, ([], meta.get("throughput") or {}))[0].append(
            est["median"]["point_estimate"]
        )

groups = {}
for (group, who), (times, tp) in runs.items():
    groups.setdefault(group, {})[who] = (statistics.median(times), tp)


def cell(ns, tp):
    if "Elements" in tp:
        return f"{ns / tp['Elements']:.1f} ns/record"
    if "Bytes" in tp:
        return f"{tp['Bytes'] / ns:.2f} GB/s"
    return f"{ns / 1e3:.1f} µs"


print(f"runs: {len(roots)}")
print("| case | ferrokafka | ferrokafka-borrowed | kafka-protocol | ferrokafka's speed vs kafka-protocol's (owned; borrowed) |")
print("|---|---:|---:|---:|---:|")
for group in sorted(groups):
    by = groups[group]
    kp = by.get("kafka-protocol")
    cells, ratios = [], []
    for who in ("ferrokafka", "ferrokafka-borrowed", "kafka-protocol"):
        if who in by:
            cells.append(cell(*by[who]))
            if kp and who != "kafka-protocol":
                ratios.append(f"{kp[0] / by[who][0]:.2f}x")
        else:
            cells.append("")
    print(f"| {group} | " + " | ".join(cells) + f" | {'; '.join(ratios)} |")
