#!/usr/bin/python3
"""Reads Google Benchmark JSON output of payloadfs_microbench (scripts/microbench.sh).

usage:
  microbench-compare.py table RUN.json
      the median of each benchmark as a markdown table (ns per operation)
  microbench-compare.py compare BASE.json NEW.json [--threshold PCT] [--metric cpu|real]
      NEW against BASE, benchmark by benchmark; exits 1 when one is slower by more than
      PCT percent (default 10) in the chosen metric (default cpu), 0 otherwise

Medians come from the "median" aggregates (--benchmark_repetitions with
--benchmark_report_aggregates_only) or, when a file has none, from the median of its
repetitions. Google Benchmark's own tools/compare.py is not packaged in Debian.
"""
import argparse
import json
import statistics
import sys

NS_PER = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def medians(path):
    """{benchmark name: {"real": ns, "cpu": ns, "cv": cpu coefficient of variation or None}}"""
    with open(path) as f:
        data = json.load(f)
    runs, aggregates = {}, {}
    for b in data.get("benchmarks", []):
        if b.get("error_occurred"):
            continue
        name = b.get("run_name", b["name"])
        scale = NS_PER[b.get("time_unit", "ns")]
        times = {"real": b["real_time"] * scale, "cpu": b["cpu_time"] * scale}
        if b.get("run_type") == "aggregate":
            aggregates.setdefault(name, {})[b.get("aggregate_name")] = (b, times)
        else:
            runs.setdefault(name, []).append(times)
    out = {}
    for name in list(dict.fromkeys(list(aggregates) + list(runs))):
        agg = aggregates.get(name, {})
        if "median" in agg:
            real, cpu = agg["median"][1]["real"], agg["median"][1]["cpu"]
            cv = agg["cv"][0]["cpu_time"] if "cv" in agg else None
        else:
            samples = runs[name]
            real = statistics.median(s["real"] for s in samples)
            cpu = statistics.median(s["cpu"] for s in samples)
            cv = None
        out[name] = {"real": real, "cpu": cpu, "cv": cv}
    return out, data.get("context", {})


def fmt(ns):
    if ns >= 100:
        return f"{ns:,.0f}"
    return f"{ns:.1f}"


def table(path):
    rows, context = medians(path)
    if not rows:
        sys.exit(f"{path}: no benchmark results")
    reps = ""
    if any(r["cv"] is not None for r in rows.values()):
        reps = " cv |"
    print(f"Medians of `{path}` ({context.get('num_cpus', '?')} CPUs, "
          f"{context.get('mhz_per_cpu', '?')} MHz, {context.get('date', '')}), ns per operation:\n")
    print("| benchmark | real ns | CPU ns |" + reps)
    print("|---|---:|---:|" + ("---:|" if reps else ""))
    for name, r in rows.items():
        cv = ""
        if reps:
            cv = f" {r['cv'] * 100:.1f}% |" if r["cv"] is not None else " |"
        print(f"| {name} | {fmt(r['real'])} | {fmt(r['cpu'])} |{cv}")


def compare(base_path, new_path, threshold, metric):
    base, _ = medians(base_path)
    new, _ = medians(new_path)
    common = [n for n in new if n in base]
    if not common:
        sys.exit("no benchmark appears in both files")
    worse = []
    print(f"| benchmark | base {metric} ns | new {metric} ns | change |")
    print("|---|---:|---:|---:|")
    for name in common:
        b, n = base[name][metric], new[name][metric]
        change = (n - b) / b * 100 if b > 0 else 0.0
        mark = " **slower**" if change > threshold else ""
        print(f"| {name} | {fmt(b)} | {fmt(n)} | {change:+.1f}%{mark} |")
        if change > threshold:
            worse.append(name)
    for name in new:
        if name not in base:
            print(f"(new benchmark: {name})")
    for name in base:
        if name not in new:
            print(f"(missing from {new_path}: {name})")
    if worse:
        print(f"\n{len(worse)} benchmark(s) slower by more than {threshold}%: {', '.join(worse)}")
        return 1
    print(f"\nno benchmark slower by more than {threshold}%")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("table")
    t.add_argument("run")
    c = sub.add_parser("compare")
    c.add_argument("base")
    c.add_argument("new")
    c.add_argument("--threshold", type=float, default=10.0)
    c.add_argument("--metric", choices=["cpu", "real"], default="cpu")
    args = ap.parse_args()
    if args.command == "table":
        table(args.run)
        return 0
    return compare(args.base, args.new, args.threshold, args.metric)


if __name__ == "__main__":
    sys.exit(main())
