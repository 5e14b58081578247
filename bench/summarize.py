#!/usr/bin/env python3
"""Turns a bench/compare.sh results directory into one side-by-side Markdown table.

    summarize.py RESULTS_DIR               # the tables, the knee, the saturation run
    summarize.py --knee RESULTS_DIR 0      # only the knee's rate for a 0 ms upstream

Files read: <server>-u<latency>-r<rate>.json as written by compare.sh (the load tool's JSON
report plus an "rss" object). <server> is `agents`, `litellm1`, `litellm2`, or `saturation`.
"""

import json
import pathlib
import re
import sys

NAME = re.compile(r"^(agents|litellm\d+|saturation)-u(\d+)-r([\d.]+)\.json$")
# The knee: the highest rate with no error and a p99 runtime overhead under this.
KNEE_P99_US = 1000


def load(directory):
    runs = {}
    for path in sorted(pathlib.Path(directory).glob("*.json")):
        match = NAME.match(path.name)
        if not match:
            continue
        server, latency, rate = match.group(1), int(match.group(2)), float(match.group(3))
        with open(path) as f:
            runs[(server, latency, rate)] = json.load(f)
    return runs


def ms(us):
    return f"{us / 1000:.3f}"


def mib(kib):
    return f"{kib / 1024:.0f}"


def overhead(report):
    """The overhead that counts: the server's own (metadata) where it says, else client-side."""
    server = report.get("server_overhead") or {}
    if server.get("count"):
        return server
    return report.get("client_overhead") or {}


def holds(report, rate):
    """No error, and at least 95 % of the asked rate answered."""
    return (
        not report.get("failed")
        and report.get("errors_total", 1) == 0
        and report.get("ok_per_second", 0) >= 0.95 * rate
    )


def knee(runs, latency, measure=overhead):
    """The highest rate held with `measure`'s p99 under the bar (by default the runtime overhead;
    `gateway` counts the provider stack too)."""
    best = 0
    for (server, lat, rate), report in runs.items():
        if server != "agents" or lat != latency:
            continue
        if holds(report, rate) and measure(report).get("p99_us", 10**9) < KNEE_P99_US:
            best = max(best, rate)
    return best


def gateway(report):
    """The server's total minus its upstream exchange, when the server reports it."""
    return report.get("gateway_overhead") or {}


def cell(report, rate):
    if report is None:
        return ["—"] * 5
    if report.get("failed"):
        return ["tool failed", "", "", "", mib(report["rss"]["max_sampled_kib"])]
    client = report["client_overhead"]
    errors = report["errors_total"]
    error_text = str(errors)
    if errors:
        top = sorted(report["errors"].items(), key=lambda kv: -kv[1])[:2]
        error_text += " (" + ", ".join(f"{k} {v}" for k, v in top) + ")"
    return [
        f"{report['ok_per_second']:.0f}",
        f"{ms(client['p50_us'])} / {ms(client['p99_us'])}",
        error_text,
        mib(report["rss"]["max_sampled_kib"]),
        "",
    ]


def span(report, key):
    """`p50 / p99` of one of a report's overhead histograms, or a dash when it has none."""
    figures = (report or {}).get(key) or {}
    if report is None or report.get("failed") or not figures.get("count"):
        return "—"
    return f"{ms(figures['p50_us'])} / {ms(figures['p99_us'])}"


def table(runs, latency):
    servers = sorted({s for (s, lat, _) in runs if lat == latency and s != "saturation"},
                     key=lambda s: (s != "agents", s))
    rates = sorted({r for (s, lat, r) in runs if lat == latency and s != "saturation"})
    header = ["rate"]
    for server in servers:
        if server == "agents":
            header += ["agents ok/s", "agents runtime overhead p50 / p99 (ms)",
                       "agents gateway overhead p50 / p99 (ms)",
                       "agents client overhead p50 / p99 (ms)", "agents errors", "agents RSS MiB"]
        else:
            name = f"litellm {server[7:]}w"
            header += [f"{name} ok/s", f"{name} client overhead p50 / p99 (ms)",
                       f"{name} gateway overhead p50 / p99 (ms)", f"{name} errors", f"{name} RSS MiB"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rate in rates:
        row = [f"{rate:g}"]
        for server in servers:
            report = runs.get((server, latency, rate))
            ok, client, errors, rss, _ = cell(report, rate)
            # The servers' own figures from their responses: runtime (ours, outside the provider
            # chain) and gateway (total minus the upstream exchange: our metadata, LiteLLM's
            # overhead header).
            runtime, gateway = span(report, "server_overhead"), span(report, "gateway_overhead")
            if server == "agents":
                row += [ok, runtime, gateway, client, errors, rss]
            else:
                row += [ok, client, gateway, errors, rss]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def ratio_at(runs, latency, rate):
    ours = runs.get(("agents", latency, rate))
    lines = []
    for (server, lat, r), report in sorted(runs.items()):
        if not server.startswith("litellm") or lat != latency or r != rate or ours is None:
            continue
        if report.get("failed") or ours.get("failed"):
            continue
        # Like for like first: each server's own total minus its upstream exchange, from its
        # response. Then the comparison of the earlier runs (LiteLLM as its client saw it
        # against our runtime outside the provider chain), then client side on both sides.
        pairs = (
            ("gateway", gateway(report), "gateway", gateway(ours)),
            ("client-side", report["client_overhead"], "runtime", ours["server_overhead"]),
            ("client-side", report["client_overhead"], "client-side", ours["client_overhead"]),
        )
        for their_label, theirs, our_label, mine in pairs:
            if theirs.get("count") and mine.get("count") and mine["p99_us"]:
                lines.append(
                    f"- at {rate:g} req/s, {latency} ms upstream: litellm {server[7:]}w "
                    f"{their_label} p99 overhead {ms(theirs['p99_us'])} ms vs agents {our_label} "
                    f"{ms(mine['p99_us'])} ms: {theirs['p99_us'] / mine['p99_us']:.0f}x lower"
                )
    return lines


def saturation(runs):
    lines = []
    for (server, latency, rate), report in sorted(runs.items()):
        if server != "saturation" or report.get("failed"):
            continue
        samples = [kib for _, kib in report["rss"]["samples"]]
        errors = ", ".join(f"{k} {v}" for k, v in report["errors"].items()) or "none"
        lat = report["latency"]
        lines += [
            f"Saturation at {rate:g} req/s ({latency} ms upstream, "
            f"{report['info']['duration_s']:.0f} s): {report['ok_per_second']:.0f} ok/s, "
            f"errors: {errors}.",
            f"Admitted requests: latency p50 {ms(lat['p50_us'])} ms, p99 {ms(lat['p99_us'])} ms, "
            f"runtime overhead p99 {ms(report['server_overhead']['p99_us'])} ms.",
            "RSS over the run (MiB, one sample a second): first "
            f"{mib(samples[0]) if samples else '?'}, max {mib(max(samples)) if samples else '?'}, "
            f"last {mib(samples[-1]) if samples else '?'}.",
        ]
    return lines


def said(runs):
    """What the failures said: the load tool keeps a few distinct messages per error code."""
    lines = []
    for (server, latency, rate), report in sorted(runs.items()):
        for code, samples in sorted((report.get("error_samples") or {}).items()):
            if not lines:
                lines += ["", "What the failures said (the first distinct messages per code):", ""]
            for sample in samples:
                lines.append(f"- {server}, {latency} ms upstream, {rate:g} req/s, {code}: {sample}")
    return lines


def main(argv):
    if len(argv) == 4 and argv[1] == "--knee":
        print(f"{knee(load(argv[2]), int(argv[3])):g}")
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    directory = argv[1]
    runs = load(directory)
    machine = pathlib.Path(directory, "machine.txt")
    out = []
    if machine.exists():
        out += ["```", machine.read_text().strip(), "```", ""]
    for latency in sorted({lat for (_, lat, _) in runs}):
        out += [f"### Upstream latency {latency} ms", "", table(runs, latency), ""]
        k = knee(runs, latency)
        out.append(
            f"Knee ({latency} ms upstream): "
            + (f"{k:g} req/s" if k else "none of the rates")
            + f" (highest rate run with no error, >= 95 % answered, p99 runtime overhead < "
            f"{KNEE_P99_US / 1000:g} ms)."
        )
        if any(gateway(r).get("count") for (s, lat, _), r in runs.items()
               if s == "agents" and lat == latency):
            g = knee(runs, latency, gateway)
            out.append(
                f"Knee by the gateway overhead (provider stack included): "
                + (f"{g:g} req/s." if g else "none of the rates.")
            )
        # 50 req/s is issue 9's point; 10 req/s is a rate one LiteLLM worker always holds.
        for rate in (10, 50):
            out += ratio_at(runs, latency, rate)
        out.append("")
    out += saturation(runs)
    out += said(runs)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
