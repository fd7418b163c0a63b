#!/usr/bin/env python3
"""Load on /metrics: serves a synthetic report of N keys with the release
binary, re-read every second (a refresh runs all the time), and drives
/metrics with wrk from many connections for a while. Reports requests per
second, latency percentiles, errors (must be 0), how long refreshes took
under load, and the exporter's memory: idle before, the peak, and settled
after each of several rounds of load (--rounds, default 5): it must level
off, not grow from one round to the next.

    cargo build --release && python3 scripts/bench_load.py --keys 10000 100000

Needs wrk (Debian package wrk). A benchmark, not a test.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_serve import peak_rss_mib, serving, status_kib  # noqa: E402


def settled_rss_mib(pid, drain_seconds=5, sample_seconds=5):
    """RSS once the responses still in flight when wrk stopped have been sent
    and their renderings dropped. Refreshes go on every second and move RSS
    a little, so this is the median of samples over a few seconds."""
    time.sleep(drain_seconds)
    samples = []
    for _ in range(int(sample_seconds * 4)):
        samples.append(status_kib(pid, "VmRSS") / 1024)
        time.sleep(0.25)
    return statistics.median(samples)


def metric(base, name):
    text = urllib.request.urlopen(base + "/metrics", timeout=120).read().decode()
    values = [float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(name)]
    return values[0] if values else float("nan")


def wrk(url, seconds, connections, gzip):
    headers = ["-H", "Accept-Encoding: gzip"] if gzip else []
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "--latency", *headers, url],
        capture_output=True, text=True, check=True,
    ).stdout
    def grab(pattern, default="0"):
        m = re.search(pattern, out)
        return m.group(1) if m else default
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", grab(r"Socket errors: (.*)", "")))
    non2xx = int(grab(r"Non-2xx or 3xx responses: (\d+)"))
    return {
        "rps": float(grab(r"Requests/sec:\s+([\d.]+)")),
        # The distribution's own lines: "    50%   12.34ms" (the thread stats
        # line also ends in a percentage, such as "75.50%").
        "p50": grab(r"(?m)^\s+50%\s+(\S+)"),
        "p90": grab(r"(?m)^\s+90%\s+(\S+)"),
        "p99": grab(r"(?m)^\s+99%\s+(\S+)"),
        "requests": int(grab(r"(\d+) requests in")),
        "errors": errors + non2xx,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of load, each followed by a settled RSS reading")
    parser.add_argument("--gzip", choices=["both", "identity", "gzip"], default="both")
    parser.add_argument("--binary", default="target/release/aws-iam-key-exporter")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found: run cargo build --release first")
    print("| keys | encoding | req/s | p50 | p90 | p99 | requests | errors | refresh under load "
          "| RSS idle | peak RSS | RSS settled after each round |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for keys in args.keys:
        for gzip in {"both": (False, True), "identity": (False,), "gzip": (True,)}[args.gzip]:
            with serving(args.binary, keys, "--refresh.interval", "1s") as (proc, base):
                # Warm up: the first render sizes the output buffer.
                urllib.request.urlopen(base + "/metrics", timeout=120).read()
                idle = settled_rss_mib(proc.pid)
                # Several rounds: memory that leaked per request or per refresh
                # would settle higher after every round; allocator caches level
                # off after the first.
                rounds = []
                for _ in range(args.rounds):
                    result = wrk(base + "/metrics", args.seconds, args.connections, gzip)
                    rounds.append((result, settled_rss_mib(proc.pid)))
                peak = peak_rss_mib(proc.pid)
                refresh = metric(base, "aws_iam_exporter_account_refresh_duration_seconds")
                result = rounds[0][0]
                errors = sum(r["errors"] for r, _ in rounds)
                print(f"| {keys:,} | {'gzip' if gzip else 'identity'} | {result['rps']:.1f} | {result['p50']} | "
                      f"{result['p90']} | {result['p99']} | {result['requests']} | {errors} | "
                      f"{refresh * 1000:.0f} ms | {idle:.0f} MiB | {peak:.0f} MiB | "
                      f"{' / '.join(f'{rss:.0f}' for _, rss in rounds)} MiB |", flush=True)


if __name__ == "__main__":
    main()
