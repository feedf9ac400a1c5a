#!/usr/bin/env python3
"""Prints the side-by-side table from criterion's results of `cargo bench`
in this folder (target/criterion/*/*/new/), one row per case: the median
time per operation of each contender, per record for record cases (ns) or as
GB/s for message cases, and ferrokafka's speed relative to kafka-protocol's."""
import json
import pathlib
import sys

root = pathlib.Path(__file__).parent / "target" / "criterion"
rows = {}
for bench in sorted(root.glob("*/*/new/benchmark.json")):
    meta = json.loads(bench.read_text())
    est = json.loads((bench.parent / "estimates.json").read_text())
    median_ns = est["median"]["point_estimate"]
    group, who = meta["group_id"], meta["function_id"]
    tp = meta.get("throughput") or {}
    rows.setdefault(group, {})[who] = (median_ns, tp)

def cell(ns, tp):
    if "Elements" in tp:
        return f"{ns / tp['Elements']:.1f} ns/rec"
    if "Bytes" in tp:
        return f"{tp['Bytes'] / ns:.2f} GB/s"
    return f"{ns / 1e3:.1f} µs"

print("| case | ferrokafka | ferrokafka-borrowed | kafka-protocol | kafka-protocol time / ferrokafka's (owned; borrowed) |")
print("|---|---:|---:|---:|---:|")
for group, by in rows.items():
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
