#!/usr/bin/env python3
"""Fails when line coverage is under the gate: 80% for the workspace, 90% for agents-core.

Reads the JSON summary of `cargo llvm-cov report --json --summary-only` and sums covered and
total lines per crate (by the `crates/<name>/` part of each file's path).
"""
import json
import sys
from collections import defaultdict

GATES = {"workspace": 80.0, "agents-core": 90.0}


def main(path: str) -> int:
    with open(path, encoding="utf-8") as handle:
        report = json.load(handle)
    per_crate = defaultdict(lambda: [0, 0])
    total = [0, 0]
    for data in report["data"]:
        for entry in data["files"]:
            lines = entry["summary"]["lines"]
            name = entry["filename"]
            crate = name.split("/crates/", 1)[1].split("/", 1)[0] if "/crates/" in name else "other"
            for bucket in (per_crate[crate], total):
                bucket[0] += lines["covered"]
                bucket[1] += lines["count"]
    failed = False
    rows = sorted(per_crate.items()) + [("workspace", total)]
    for crate, (covered, count) in rows:
        percent = 100.0 * covered / count if count else 100.0
        gate = GATES.get(crate)
        verdict = ""
        if gate is not None:
            ok = percent >= gate
            failed |= not ok
            verdict = f"  (gate {gate:.0f}%: {'ok' if ok else 'FAILED'})"
        print(f"{crate:<20} {covered:>6}/{count:<6} lines  {percent:6.2f}%{verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
