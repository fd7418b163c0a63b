#!/usr/bin/env python3
"""The API source's first refresh under IAM's throttle: one account of N
users (one key each) behind the token-bucket proxy of tests/moto_server.py
(`fault rate R`: a bucket of R calls refilled at R a second, IAM's own
`Throttling` error above it), at each rate; reports the time to a complete
refresh (`aws_iam_exporter_account_up` 1), the calls that passed and those
throttled, and the ratio of that time to the time the rate allows (calls
that passed / rate).

    cargo build && python3 scripts/bench_throttle.py --users 300 --rates 5 10 20

The time is set by the rate, not by CPU (300 users are about 650 calls: 130 s
at 5 calls/s), so the debug binary measures it as well as a release one;
`--binary` picks another. moto runs in a child process
(tests/moto_server.py); the exporter runs with its defaults
(aws.max_concurrent_requests 8, aws.max_attempts 3) and a refresh timeout
long enough not to end the read.
"""

import argparse
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

# The same port and the same clean AWS environment as the other benchmarks.
from bench_refresh import exporter_env  # noqa: E402
from bench_serve import free_port  # noqa: E402


def scrape(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            return r.read().decode()
    except OSError:
        return ""


def value(text, name, labels=""):
    pattern = re.compile(rf"^{re.escape(name)}\{{[^}}]*{re.escape(labels)}[^}}]*\}} (\S+)$", re.M)
    return sum(float(v) for v in pattern.findall(text))


def run(binary, users, rate, timeout):
    moto = subprocess.Popen(
        [sys.executable, str(REPO / "tests/moto_server.py"), "--scenario", "many", "--users", str(users)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    seeded = json.loads(moto.stdout.readline())

    def command(line):
        moto.stdin.write(line + "\n")
        moto.stdin.flush()
        return json.loads(moto.stdout.readline())

    command(f"fault rate {rate}")
    port = free_port()
    env = exporter_env(seeded["proxy_endpoint"])
    started = time.monotonic()
    exporter = subprocess.Popen(
        [binary, "--web.listen-address", f"127.0.0.1:{port}", "--aws.refresh-timeout", f"{timeout}s"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.monotonic() - started < timeout:
            text = scrape(port)
            if value(text, "aws_iam_exporter_account_up") == 1.0:
                break
            if value(text, "aws_iam_exporter_refresh_errors_total") > 0:
                raise SystemExit(f"rate {rate}: the refresh failed:\n{text}")
            time.sleep(0.2)
        else:
            raise SystemExit(f"rate {rate}: no complete refresh within {timeout} s")
        took = time.monotonic() - started
        keys = len(re.findall(r"^aws_iam_access_key_age_seconds\{", text, re.M))
        stats = command("stats")["ok"]
    finally:
        exporter.terminate()
        exporter.wait()
        moto.stdin.write("quit\n")  # answered by exiting
        moto.stdin.close()
        moto.wait()
    passed = stats["forwarded"]
    allowed = passed / rate
    return {
        "rate": rate,
        "users": users,
        "keys": keys,
        "seconds": round(took, 1),
        "calls_passed": passed,
        "throttled": stats["throttled"],
        "allowed_seconds": round(allowed, 1),
        "ratio": round(took / allowed, 2),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--rates", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--binary", default=str(REPO / "target/debug/aws-iam-key-exporter"))
    parser.add_argument("--timeout", type=int, default=600, help="seconds a run may take")
    args = parser.parse_args()
    rows = [run(args.binary, args.users, rate, args.timeout) for rate in args.rates]
    print("| calls/s | users | keys | refresh | calls passed | throttled | time the rate allows | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['rate']} | {r['users']} | {r['keys']} | {r['seconds']} s | {r['calls_passed']} | "
            f"{r['throttled']} | {r['allowed_seconds']} s | {r['ratio']}x |"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
