#!/usr/bin/env python3
"""Good-scrape latency while clients flood the exporter with wrong passwords.

    cargo build --release && python3 scripts/bench_flood.py --clients 0 48 500

The exporter serves a synthetic report behind basic auth (one user, a cost-10
bcrypt hash, as `htpasswd -nBC 10` makes). For each flood size, that many
threads send wrong passwords on keep-alive connections as fast as they are
answered, and meanwhile one client scrapes with the right password, one scrape
at a time; the median and worst of those scrapes are printed. Loopback only,
bounded: each flood lasts until its good scrapes are done, each scrape times
out after --timeout seconds.

A benchmark, not a test: figures depend on the machine.
"""

import argparse
import base64
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_serve import serving  # noqa: E402

# bcrypt("fakepassword"), cost 10: the exporter-toolkit's own dummy hash.
HASH = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"
GOOD = "Basic " + base64.b64encode(b"prometheus:fakepassword").decode()
BAD = "Basic " + base64.b64encode(b"prometheus:wrong").decode()


def flood(port, stop, counts):
    """Wrong passwords, one request at a time, until `stop` is set."""
    conn = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/metrics", headers={"Authorization": BAD})
            conn.getresponse().read()
            counts.append(1)
        except Exception:
            conn = None
            time.sleep(0.05)


def good_scrape(port, timeout):
    started = time.monotonic()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("GET", "/metrics", headers={"Authorization": GOOD})
        response = conn.getresponse()
        response.read()
        conn.close()
        status = response.status
    except Exception as e:  # a timeout is a result here
        status = type(e).__name__
    return time.monotonic() - started, status


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default="target/release/aws-iam-key-exporter")
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--clients", type=int, nargs="+", default=[0, 48, 500])
    parser.add_argument("--scrapes", type=int, default=5)
    parser.add_argument("--ramp", type=float, default=3.0, help="seconds of flood before the first good scrape")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        web = os.path.join(tmp, "web.yml")
        with open(web, "w") as f:
            f.write(f"basic_auth_users:\n  prometheus: '{HASH}'\n")
        print("| wrong-password clients | good scrapes | median | worst | wrong-password answers/s |")
        print("|---:|---:|---:|---:|---:|")
        for clients in args.clients:
            with serving(args.binary, args.keys, "--web.config.file", web) as (_, base):
                port = int(base.rsplit(":", 1)[1])
                # As Prometheus would: a good scrape before the flood starts.
                good_scrape(port, args.timeout)
                stop, counts = threading.Event(), []
                threads = [threading.Thread(target=flood, args=(port, stop, counts), daemon=True)
                           for _ in range(clients)]
                for t in threads:
                    t.start()
                time.sleep(args.ramp if clients else 0)
                flood_started, answered_before = time.monotonic(), len(counts)
                results = []
                for _ in range(args.scrapes):
                    results.append(good_scrape(port, args.timeout))
                    time.sleep(0.5)
                rate = (len(counts) - answered_before) / (time.monotonic() - flood_started)
                # Not joined: requests still waiting their turn end with the
                # exporter, as the flood threads then see `stop`.
                stop.set()
                times = [t for t, _ in results]
                statuses = sorted({str(s) for _, s in results})
                print(f"| {clients} | {len(results)} ({', '.join(statuses)}) | "
                      f"{statistics.median(times) * 1000:,.0f} ms | {max(times) * 1000:,.0f} ms | {rate:,.0f} |",
                      flush=True)


if __name__ == "__main__":
    main()
