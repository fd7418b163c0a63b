#!/usr/bin/env python3
"""What N keys cost, measured side by side in one run on one synthetic
credential report (issue 16):

- samples per key on /metrics, and per family;
- the exporter's identity and gzip scrape time beside the time to serve the
  SAME bytes, pre-rendered and pre-compressed, from memory by a trivial
  server (Python's threaded http.server, one sendall of bytes held in memory,
  in a process of its own), with the same client (curl) on the same loopback,
  scrapes interleaved so that both see the same noise;
- the exporter's peak RSS (VmHWM) after those scrapes, one scraper at a time;
- a "typical Python exporter" (prometheus_client, same CSV, same per-key
  families) and its identity scrape time: the speed ratio;
- what a real Prometheus scraping the exporter every 10 s holds after several
  scrapes: head series, resident memory, and the scrape duration it sees.

    cargo build --release && python3 scripts/bench_cost.py --keys 10000 100000
    python3 scripts/bench_cost.py --keys 100000 \\
        --exporter-arg=--metrics.key-series=created,last_used,high_risk

Every request sends the headers Prometheus 2.42 sends (OpenMetrics first in
Accept; Accept-Encoding: gzip for the gzip figures). Needs curl, Debian's
prometheus and prometheus_client (pip install prometheus_client==0.26.0).
A benchmark, not a test: absolute times depend on the machine, the ratios
are what carry over.
"""

import argparse
import csv
import datetime as dt
import http.server
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_serve import free_port, peak_rss_mib, serving, status_kib  # noqa: E402

# What Prometheus 2.42 sends when it scrapes (scrape/scrape.go).
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
                     "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
PROMETHEUS_CLIENT_VERSION = "0.26.0"
LABELS = ["account_id", "user", "key", "access_key_id", "status"]
# The per-key families, by the short names of `--metrics.key-series`.
KEY_FAMILIES = {
    "created": "aws_iam_access_key_created_timestamp_seconds",
    "last_used": "aws_iam_access_key_last_used_timestamp_seconds",
    "age": "aws_iam_access_key_age_seconds",
    "unused": "aws_iam_access_key_unused_seconds",
    "never_used": "aws_iam_access_key_never_used",
    "high_risk": "aws_iam_access_key_high_risk",
    "info": "aws_iam_access_key_info",
}
DAY = 86400.0


def fail(message):
    sys.exit(f"bench_cost: {message}")


# ---------------------------------------------------------------------------
# The trivial server: the same bytes, from memory.


def static_server(identity_path, gzip_path, port, content_type):
    """Serves the bytes of two files held in memory: the gzip one when the
    request accepts gzip, the other otherwise. One sendall per response."""
    with open(identity_path, "rb") as f:
        identity = f.read()
    with open(gzip_path, "rb") as f:
        compressed = f.read()

    class Handler(http.server.BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def do_GET(self):  # noqa: N802 (the name http.server calls)
            gz = "gzip" in self.headers.get("Accept-Encoding", "")
            body = compressed if gz else identity
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            if gz:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


# ---------------------------------------------------------------------------
# The typical Python exporter: prometheus_client, the same CSV.


def parse_time(cell):
    if cell in ("N/A", "no_information", "not_supported", ""):
        return None
    return dt.datetime.fromisoformat(cell.replace("Z", "+00:00")).timestamp()


def read_keys(path):
    """(keys, users) of a credential report: each key a dict of the labels
    and timestamps the exporter derives, each user (account, name, path)."""
    keys, users = [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            arn = row["arn"]
            account = arn.split(":")[4]
            resource = arn.split(":", 5)[5]
            user_path = "/" + "/".join(resource.split("/")[1:-1]) + "/" if resource.count("/") > 1 else "/"
            users.append((account, row["user"], user_path))
            for k in (1, 2):
                created = parse_time(row[f"access_key_{k}_last_rotated"])
                if created is None:
                    continue
                keys.append({
                    "labels": [account, row["user"], str(k), "",
                               "Active" if row[f"access_key_{k}_active"] == "true" else "Inactive"],
                    "created": created,
                    "last_used": parse_time(row[f"access_key_{k}_last_used_date"]),
                    "service": row[f"access_key_{k}_last_used_service"].replace("N/A", ""),
                    "region": row[f"access_key_{k}_last_used_region"].replace("N/A", ""),
                })
    return keys, users


def python_exporter(report, port, families):
    """A prometheus_client exporter as one is typically written: the data read
    once, the gauges built at every scrape (ages vary with the clock), the
    exporter's default policy for high risk."""
    from prometheus_client import start_http_server
    from prometheus_client.core import REGISTRY, GaugeMetricFamily

    keys, users = read_keys(report)
    wanted = set(families.split(","))

    class KeyCollector:
        def collect(self):
            now = time.time()
            fams = {name: GaugeMetricFamily(name, name, labels=LABELS)
                    for short, name in KEY_FAMILIES.items() if short in wanted and short != "info"}
            info = GaugeMetricFamily(KEY_FAMILIES["info"], "info",
                                     labels=LABELS + ["last_used_service", "last_used_region"])
            for key in keys:
                labels = key["labels"]
                age = max(now - key["created"], 0.0)
                never = key["last_used"] is None
                unused = max(now - (key["created"] if never else key["last_used"]), 0.0)
                risky = labels[4] == "Active" and (age > 365 * DAY or (never and age > 7 * DAY))
                values = {"created": key["created"], "last_used": key["last_used"], "age": age,
                          "unused": unused, "never_used": 1.0 if never else 0.0,
                          "high_risk": 1.0 if risky else 0.0}
                for short, value in values.items():
                    if short in wanted and value is not None:
                        fams[KEY_FAMILIES[short]].add_metric(labels, value)
                if "info" in wanted:
                    info.add_metric(labels + [key["service"], key["region"]], 1)
            yield from fams.values()
            if "info" in wanted:
                yield info
            user_info = GaugeMetricFamily("aws_iam_user_info", "user", labels=["account_id", "user", "path"])
            for account, user, user_path in users:
                user_info.add_metric([account, user, user_path], 1)
            yield user_info

    REGISTRY.register(KeyCollector())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    start_http_server(port, addr="127.0.0.1")
    while True:
        time.sleep(3600)


# ---------------------------------------------------------------------------
# Measuring.


def curl(url, gzip_wanted, output=None, accept=PROMETHEUS_ACCEPT):
    """One GET as Prometheus sends it (or with no Accept header, the text
    format, when `accept` is None), by curl: (seconds, bytes, content
    encoding, content type); the body goes to `output` when given."""
    headers = ["-H", f"Accept: {accept}"] if accept else []
    if gzip_wanted:
        headers += ["-H", "Accept-Encoding: gzip"]
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "120", "-o", output or "/dev/null", *headers,
         "-w", "%{http_code} %{time_total} %{size_download} %header{content-encoding}|%{content_type}", url],
        capture_output=True, text=True, timeout=150)
    if out.returncode != 0:
        raise RuntimeError(f"curl {url}: {out.stderr.strip()}")
    head, content_type = out.stdout.split("|", 1)
    code, seconds, size, *encoding = head.split()
    if code != "200":
        raise RuntimeError(f"GET {url}: HTTP {code}")
    encoding = encoding[0] if encoding else ""
    if gzip_wanted != (encoding == "gzip"):
        raise RuntimeError(f"GET {url}: Content-Encoding {encoding or 'none'}")
    return float(seconds), int(size), encoding, content_type


def wait_port(port, seconds, proc):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def families_of(body):
    """Samples per metric family name (the name before labels or value)."""
    counts = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        name = re.split(r"[{ ]", line, maxsplit=1)[0]
        counts[name] = counts.get(name, 0) + 1
    return counts


def median_ms(runs):
    return statistics.median(runs) * 1000


def get_json(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.load(response)


def prom_query(base, query):
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    return get_json(url)["data"]["result"]


def own_metric(base, name):
    text = urllib.request.urlopen(base + "/metrics", timeout=60).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return float("nan")


def measure_prometheus(prometheus, exporter_base, scrapes, tmp):
    """Runs Prometheus on loopback scraping the exporter every 10 s until it
    has scraped it `scrapes` times (bounded in time), and reads what it holds."""
    port = free_port()
    target = exporter_base.split("//", 1)[1]
    config = os.path.join(tmp, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global:\n  scrape_interval: 10s\n  scrape_timeout: 10s\n"
                "scrape_configs:\n  - job_name: exporter\n"
                f"    static_configs:\n      - targets: ['{target}']\n")
    log = open(os.path.join(tmp, "prometheus.log"), "w")
    proc = subprocess.Popen([prometheus, f"--config.file={config}",
                             f"--storage.tsdb.path={os.path.join(tmp, 'tsdb')}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {proc.returncode}: see {log.name}")
            try:
                if urllib.request.urlopen(base + "/-/ready", timeout=5).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus not ready after 60 s")
            time.sleep(0.5)
        # The first scrape comes within one interval; bounded wait for the rest.
        deadline = time.monotonic() + 10 * (scrapes + 2) + 60
        done = 0
        while done < scrapes:
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus scraped {done} times, not {scrapes}, in time")
            time.sleep(2)
            result = prom_query(base, 'count_over_time(up{job="exporter"}[1h])')
            done = int(float(result[0]["value"][1])) if result else 0
        time.sleep(2)  # let the last append settle
        ups = [float(v) for _, v in prom_query(base, 'up{job="exporter"}[1h]')[0]["values"]]
        durations = [float(v) for _, v in prom_query(base, 'scrape_duration_seconds{job="exporter"}[1h]')[0]["values"]]
        samples = prom_query(base, 'scrape_samples_scraped{job="exporter"}')
        try:
            head_series = int(get_json(base + "/api/v1/status/tsdb")["data"]["headStats"]["numSeries"])
        except (KeyError, OSError, ValueError):
            head_series = int(own_metric(base, "prometheus_tsdb_head_series"))
        return {
            "scrapes": len(ups),
            "failed_scrapes": sum(1 for u in ups if u != 1.0),
            "head_series": head_series,
            "samples_scraped": int(float(samples[0]["value"][1])) if samples else None,
            "resident_bytes": own_metric(base, "process_resident_memory_bytes"),
            "peak_rss_kib": status_kib(proc.pid, "VmHWM"),
            "scrape_duration_median_s": statistics.median(durations),
            "scrape_duration_max_s": max(durations),
            "scrape_durations_s": durations,
        }
    finally:
        stop(proc)
        log.close()


def measure(args, keys, extra):
    result = {"keys": keys, "exporter_args": extra}
    with serving(args.binary, keys, *extra) as (proc, base):
        if proc.poll() is not None:
            fail(f"the exporter exited with {proc.returncode} with args {extra}")
        report = proc.args[proc.args.index("--credential-report.file") + 1]
        tmp = os.path.dirname(report)
        identity_path, gzip_path = os.path.join(tmp, "body.txt"), os.path.join(tmp, "body.gz")
        url = base + "/metrics"
        # The bytes the trivial server will serve, as the exporter serves them.
        _, _, _, content_type = curl(url, False, identity_path)
        curl(url, True, gzip_path)
        with open(identity_path) as f:
            body = f.read()
        with open(gzip_path, "rb") as f:
            gz_size = len(f.read())
        counts = families_of(body)
        revision = re.search(r'aws_iam_exporter_build_info\{[^}]*revision="([^"]*)"', body)
        result.update({
            "revision": revision.group(1) if revision else "?",
            "content_type": content_type,
            "samples": sum(counts.values()),
            "families": counts,
            "identity_bytes": len(body.encode()),
            "gzip_bytes": gz_size,
        })

        static_port = free_port()
        static = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--_static-server",
                                   identity_path, gzip_path, str(static_port), content_type])
        try:
            wait_port(static_port, 30, static)
            static_url = f"http://127.0.0.1:{static_port}/metrics"
            curl(static_url, False)
            runs = {"exporter_identity": [], "static_identity": [], "exporter_gzip": [], "static_gzip": [],
                    "exporter_text_identity": []}
            # Interleaved: both servers see the same noise from the other builds.
            for _ in range(args.scrapes):
                runs["exporter_identity"].append(curl(url, False)[0])
                runs["static_identity"].append(curl(static_url, False)[0])
                runs["exporter_gzip"].append(curl(url, True)[0])
                runs["static_gzip"].append(curl(static_url, True)[0])
                runs["exporter_text_identity"].append(curl(url, False, accept=None)[0])
        finally:
            stop(static)
        for name, values in runs.items():
            result[name + "_ms"] = median_ms(values)
        result["exporter_peak_rss_mib"] = peak_rss_mib(proc.pid)

        if not args.no_python:
            present = [short for short, name in KEY_FAMILIES.items() if name in counts]
            py_port = free_port()
            py = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--_python-exporter",
                                   report, str(py_port), ",".join(present)])
            try:
                wait_port(py_port, 300, py)
                py_url = f"http://127.0.0.1:{py_port}/metrics"
                first = curl(py_url, False, os.path.join(tmp, "python.txt"))
                with open(os.path.join(tmp, "python.txt")) as f:
                    py_counts = families_of(f.read())
                py_runs = [first[0]] + [curl(py_url, False)[0] for _ in range(args.python_scrapes - 1)]
                result["python_identity_ms"] = median_ms(py_runs)
                result["python_text_identity_ms"] = median_ms(
                    [curl(py_url, False, accept=None)[0] for _ in range(args.python_scrapes)])
                result["python_samples"] = sum(py_counts.values())
                result["python_peak_rss_mib"] = peak_rss_mib(py.pid)
            finally:
                stop(py)

        if not args.no_prometheus:
            with tempfile.TemporaryDirectory() as prom_tmp:
                result["prometheus"] = measure_prometheus(args.prometheus, base, args.prometheus_scrapes, prom_tmp)
            result["exporter_peak_rss_after_prometheus_mib"] = peak_rss_mib(proc.pid)
        if proc.poll() is not None:
            fail(f"the exporter died during the run (exit {proc.returncode})")
    return result


# ---------------------------------------------------------------------------
# Reporting.


def table(results, extra, prometheus_scrapes):
    label = " ".join(extra) if extra else "none (the default key series)"
    revisions = ", ".join(sorted({r["revision"] for r in results}))
    lines = [f"exporter args: {label}; exporter revision {revisions}; "
             f"served as {results[0]['content_type']}", ""]
    lines.append("| measure | " + " | ".join(f"{r['keys']:,} keys" for r in results) + " |")
    lines.append("|---|" + "---|" * len(results))

    def row(name, cell):
        lines.append(f"| {name} | " + " | ".join(cell(r) for r in results) + " |")

    row("samples per key on /metrics", lambda r: f"{r['samples'] / r['keys']:.2f} ({r['samples']:,} samples)")
    row("response size, identity / gzip",
        lambda r: f"{r['identity_bytes'] / 1e6:.1f} MB / {r['gzip_bytes'] / 1e6:.2f} MB")
    if "prometheus" in results[0]:
        def prom(r):
            p = r["prometheus"]
            return (f"{p['head_series']:,} head series; {p['resident_bytes'] / 1e9:.2f} GB resident after "
                    f"{p['scrapes']} scrapes ({p['resident_bytes'] / 1024 / r['keys']:.1f} KiB per key; "
                    f"peak {p['peak_rss_kib'] / r['keys']:.1f} KiB per key); scrape duration "
                    f"{p['scrape_duration_median_s']:.2f} s median "
                    f"({', '.join(f'{d:.2f}' for d in p['scrape_durations_s'])})"
                    + (f"; {p['failed_scrapes']} FAILED scrapes" if p["failed_scrapes"] else ""))
        row("a real Prometheus scraping it every 10 s", prom)
    row("identity scrape vs serving the same bytes pre-rendered from memory",
        lambda r: f"{r['exporter_identity_ms']:.0f} ms vs {r['static_identity_ms']:.0f} ms "
                  f"({r['exporter_identity_ms'] / r['static_identity_ms']:.1f}x)")
    row("gzip scrape (what Prometheus asks for) vs serving the same bytes pre-compressed",
        lambda r: f"{r['exporter_gzip_ms']:.0f} ms vs {r['static_gzip_ms']:.1f} ms "
                  f"({r['exporter_gzip_ms'] / r['static_gzip_ms']:.0f}x)")
    row("exporter peak RSS, one scraper",
        lambda r: f"{r['exporter_peak_rss_mib']:.0f} MiB ({r['exporter_peak_rss_mib'] * 1024 / r['keys']:.2f} "
                  "KiB per key)")
    if "python_identity_ms" in results[0]:
        row("identity scrape vs a Python exporter (prometheus_client) on the same data, OpenMetrics "
            "as Prometheus asks",
            lambda r: f"{r['exporter_identity_ms']:.0f} ms vs {r['python_identity_ms'] / 1000:.2f} s "
                      f"({r['python_identity_ms'] / r['exporter_identity_ms']:.1f}x faster; Python: "
                      f"{r['python_samples']:,} samples, peak RSS {r['python_peak_rss_mib']:.0f} MiB)")
        row("the same in the text format 0.0.4 (no Accept header)",
            lambda r: f"{r['exporter_text_identity_ms']:.0f} ms vs {r['python_text_identity_ms'] / 1000:.2f} s "
                      f"({r['python_text_identity_ms'] / r['exporter_text_identity_ms']:.1f}x faster)")
    lines += ["", "| family | " + " | ".join(f"{r['keys']:,} keys: samples (per key)" for r in results) + " |",
              "|---|" + "---:|" * len(results)]
    names = sorted({n for r in results for n in r["families"]}, key=lambda n: -results[-1]["families"].get(n, 0))
    for name in names:
        lines.append(f"| {name} | " + " | ".join(
            f"{r['families'].get(name, 0):,} ({r['families'].get(name, 0) / r['keys']:.3f})" for r in results) + " |")
    return "\n".join(lines)


def check_exporter_args(binary, extra):
    """Clear words, not a crash, when the exporter does not know a flag yet."""
    out = subprocess.run([binary, *extra, "--help"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        unknown = re.search(r"unexpected argument '([^']*)'", out.stderr)
        if unknown:
            fail(f"this exporter ({binary}) has no flag {unknown.group(1)} yet: it comes with the "
                 "implementation of issue 16; run without --exporter-arg to measure the default set")
        fail(f"the exporter refuses the args {extra}:\n{out.stderr.strip()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--scrapes", type=int, default=7, help="timed scrapes of each kind (median)")
    parser.add_argument("--python-scrapes", type=int, default=3, help="timed scrapes of the Python exporter")
    parser.add_argument("--prometheus-scrapes", type=int, default=4,
                        help="scrapes by Prometheus (every 10 s) before reading what it holds")
    parser.add_argument("--exporter-arg", action="append", default=[], metavar="ARG",
                        help="passed to the exporter, e.g. --exporter-arg=--metrics.key-series=created,last_used")
    parser.add_argument("--binary", default="target/release/aws-iam-key-exporter")
    parser.add_argument("--prometheus", default="prometheus")
    parser.add_argument("--no-prometheus", action="store_true", help="skip the real Prometheus")
    parser.add_argument("--no-python", action="store_true", help="skip the Python exporter")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if args.scrapes < 1 or args.python_scrapes < 1 or args.prometheus_scrapes < 1:
        fail("scrape counts must be at least 1")
    if not os.path.exists(args.binary):
        fail(f"{args.binary} not found: run cargo build --release first (make bench-cost does)")
    if not shutil.which("curl"):
        fail("curl is missing: apt-get install curl")
    if not args.no_prometheus:
        found = shutil.which(args.prometheus)
        if not found:
            fail(f"{args.prometheus} not found: apt-get install prometheus (or --no-prometheus)")
        args.prometheus = found
    if not args.no_python and importlib.util.find_spec("prometheus_client") is None:
        fail(f"prometheus_client is missing: pip install prometheus_client=={PROMETHEUS_CLIENT_VERSION} "
             "(or --no-python)")
    check_exporter_args(args.binary, args.exporter_arg)

    results = []
    for keys in args.keys:
        print(f"measuring {keys:,} keys ...", file=sys.stderr, flush=True)
        try:
            results.append(measure(args, keys, args.exporter_arg))
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            fail(f"{keys:,} keys: {e}")
    print(table(results, args.exporter_arg, args.prometheus_scrapes))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_static-server":
        static_server(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif len(sys.argv) > 1 and sys.argv[1] == "--_python-exporter":
        python_exporter(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        main()
