#!/usr/bin/env python3
"""Serves a synthetic credential report of N keys with the release binary and
reports scrape time, response size and the exporter's peak memory (VmHWM).

    cargo build --release && python3 scripts/bench_serve.py --keys 100000

A benchmark, not a test: figures depend on the machine.
"""

import argparse
import contextlib
import datetime as dt
import gzip
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HEADER = (
    "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
    "password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,"
    "access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,"
    "access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,"
    "access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,"
    "cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n"
)


def write_report(path, keys):
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    ts = lambda days: (now - dt.timedelta(days=days)).isoformat()
    with open(path, "w") as f:
        f.write(HEADER)
        for u in range((keys + 1) // 2):
            cells = [f"user-{u:06}@example.com", f"arn:aws:iam::123456789012:user/engineering/user-{u:06}@example.com",
                     ts(900), "false", "N/A", "N/A", "N/A", "false"]
            for k in range(2):
                n = 2 * u + k
                if n >= keys:
                    cells += ["false", "N/A", "N/A", "N/A", "N/A"]
                    continue
                used = n % 5 != 0
                cells += ["false" if n % 10 == 0 else "true", ts(n % 800),
                          ts(n % 40) if used else "N/A", "eu-west-1" if used else "N/A", "s3" if used else "N/A"]
            cells += ["false", "N/A", "false", "N/A"]
            f.write(",".join(cells) + "\n")


def free_port():
    """A port that was free a moment ago, for a server that cannot say which
    port it bound (bench_cost.py's Prometheus and comparison servers), and
    for bench_throttle.py, which scrapes the exporter as it refreshes. Here
    the exporter needs none: `serving` starts it on port 0."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(binary, keys, *extra):
    """The exporter serving a synthetic report of `keys` keys, ready; yields
    (process, base URL) and stops it afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.csv")
        write_report(report, keys)
        # Port 0 and the address the exporter writes once bound: no port
        # picked in advance for another process to take.
        bound = os.path.join(tmp, "bound-addresses")
        proc = subprocess.Popen([binary, "--credential-report.file", report, *extra,
                                 "--web.listen-address", "127.0.0.1:0", "--web.bound-addresses-file", bound,
                                 "--log.level", "warn"])
        for _ in range(600):
            if os.path.exists(bound) or proc.poll() is not None:
                break
            time.sleep(0.1)
        with open(bound) as f:
            base = "http://" + f.readline().strip()
        try:
            for _ in range(600):
                try:
                    if urllib.request.urlopen(base + "/-/ready", timeout=5).status == 200:
                        break
                except Exception:
                    time.sleep(0.1)
            yield proc, base
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def status_kib(pid, field):
    """A memory field of /proc/PID/status (VmRSS, VmHWM: the peak RSS) in
    KiB, or None once the process has exited."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_mib(pid):
    kib = status_kib(pid, "VmHWM")
    return kib / 1024 if kib is not None else float("nan")


def scrape(url, encoding):
    request = urllib.request.Request(url, headers={"Accept-Encoding": encoding} if encoding else {})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        body = response.read()
    elapsed = time.perf_counter() - start
    if encoding == "gzip":
        assert response.headers.get("Content-Encoding") == "gzip"
        assert len(gzip.decompress(body)) > 0
    return elapsed, len(body)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--scrapes", type=int, default=5)
    parser.add_argument("--binary", default="target/release/aws-iam-key-exporter")
    args = parser.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found: run cargo build --release first")
    print("| keys | encoding | median scrape | response size | peak RSS after scrapes |")
    print("|---:|---|---:|---:|---:|")
    for keys in args.keys:
        with serving(args.binary, keys) as (proc, base):
            for encoding in ["", "gzip"]:
                runs = sorted(scrape(base + "/metrics", encoding) for _ in range(args.scrapes))
                elapsed, size = runs[len(runs) // 2]
                print(f"| {keys:,} | {encoding or 'identity'} | {elapsed * 1000:.0f} ms | "
                      f"{size / 1e6:.1f} MB | {peak_rss_mib(proc.pid):.0f} MiB |", flush=True)

if __name__ == "__main__":
    main()
