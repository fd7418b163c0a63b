#!/usr/bin/env python3
"""Refreshes large moto-seeded setups once with the release binary (`report
--format json`) and reports wall time, AWS calls, peak memory and keys.

    cargo build --release && python3 scripts/bench_refresh.py

Setups, each read with `source: api` and `source: credential-report`:

  (a) one account with 5,000 users of 1 or 2 keys each;
  (b) an AWS Organization of 200 member accounts of 20 users each (read
      through `accounts.organization`, AssumeRole into every member).

moto runs in this process (tests/moto_server.py is imported for its seeding
helpers); AWS calls are the requests moto received during the run.

`--dry-run` runs everything but the exporter: a Python stand-in walks the same
accounts with boto3 and prints `{"details": [...]}`, to check the seeding,
the measuring and the table without a release build.

A benchmark, not a test: figures depend on the machine, and moto (Python, in
this process) shares the CPUs with the exporter.
"""

import argparse
import collections
import datetime as dt
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "scripts"))

import moto_server  # noqa: E402  (after the path; it also patches ListUsers paging)
from moto.iam.models import AccessKeyLastUsed, iam_backends  # noqa: E402
from moto.server import DomainDispatcherApplication, create_backend_app  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402
from bench_serve import status_kib  # noqa: E402

# AWS pages ListUsers at the caller's MaxItems, up to 1,000. The tests page
# at 7 to catch pagination bugs; a benchmark must page like AWS does.
moto_server.PAGE_SIZE = 1000

SOURCES = ["api", "credential-report"]
MEMBER_ROLE = moto_server.MEMBER_ROLE


# --- moto, counting the requests it receives ---------------------------------


class CallCounter:
    """WSGI middleware in front of moto: counts requests by operation."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.calls = collections.Counter()

    def __call__(self, environ, start_response):
        stream = environ["wsgi.input"]
        if environ.get("wsgi.input_terminated"):  # a chunked body, already decoded
            body = stream.read()
        else:
            body = stream.read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads the body again
        headers = {
            "Authorization": environ.get("HTTP_AUTHORIZATION", ""),
            "Content-Type": environ.get("CONTENT_TYPE", ""),
        }
        if environ.get("HTTP_X_AMZ_TARGET"):
            headers["X-Amz-Target"] = environ["HTTP_X_AMZ_TARGET"]
        query = environ.get("QUERY_STRING", "")
        path = environ.get("PATH_INFO", "/") + (f"?{query}" if query else "")
        request = moto_server.AwsRequest(environ["REQUEST_METHOD"], path, headers, body)
        with self.lock:
            self.calls[request.operation or path] += 1
        return self.app(environ, start_response)

    def snapshot(self):
        with self.lock:
            return collections.Counter(self.calls)


class CountingMoto:
    """moto's server app (as ThreadedMotoServer builds it) behind CallCounter."""

    def __init__(self):
        self.counter = CallCounter(DomainDispatcherApplication(create_backend_app))
        self.server = make_server("127.0.0.1", 0, self.counter, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self):
        """Forgets every account (moto's reset API), between setups."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", data=b"", method="POST")
        urllib.request.urlopen(request, timeout=60).read()

    def stop(self):
        self.server.shutdown()


# --- Seeding through the backend objects (fast) -------------------------------


def seed_account(account_id, users, now, name_prefix="user"):
    """Creates `users` users of 1 or 2 keys (every third user has 2) straight
    in moto's IAM backend of `account_id`, aged, statused and last used after
    moto_server.SCENARIOS in turn; returns the number of keys."""
    backend = iam_backends[account_id]["aws"]
    keys = 0
    for u in range(users):
        name = f"{name_prefix}-{u:05}@example.com"
        tags = [{"Key": "team", "Value": f"team-{u % 7}"}] if u % 4 == 0 else None
        backend.create_user("us-east-1", name, path="/engineering/", tags=tags)
        for k in range(2 if u % 3 == 0 else 1):
            age, unused, status, _bucket, _high_risk = moto_server.SCENARIOS[(u + k) % len(moto_server.SCENARIOS)]
            key = backend.create_access_key(name)
            key.create_date = now - dt.timedelta(days=age, seconds=k * 60 + 5)
            key.status = status
            if unused is not None:
                service, region = moto_server.SERVICES[u % len(moto_server.SERVICES)]
                last_used = max(now - dt.timedelta(days=unused, seconds=1), key.create_date)
                key.last_used = AccessKeyLastUsed(last_used, service, region)
            keys += 1
    return keys


def seed_one_account(moto, users):
    iam_backends[moto_server.ACCOUNT_ID]["aws"].create_account_alias("bench")
    keys = seed_account(moto_server.ACCOUNT_ID, users, moto_server.utc_now())
    return f"(a) 1 account, {users:,} users, {keys:,} keys"


def seed_organization(moto, members, users):
    """The management account (no users) and `members` members of `users` users."""
    accounts = moto_server.create_organization(moto.endpoint, members)
    now = moto_server.utc_now()
    keys = sum(seed_account(account_id, users, now) for account_id, _ in accounts[1:])
    return f"(b) {members:,} member accounts of {users:,} users, {keys:,} keys"


# --- Running the exporter and measuring it ------------------------------------


def write_config(directory, source, organization):
    text = f"source: {source}\n"
    if organization:
        text += f"accounts:\n  organization:\n    role_name: {MEMBER_ROLE}\n"
    path = Path(directory) / f"{source}{'-org' if organization else ''}.yaml"
    path.write_text(text)
    return path


def exporter_env(endpoint):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        # No profile of the machine's user may change what is measured.
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
    )
    return env


def run_measured(command, env, directory):
    """Runs `command`; returns (exit code, stdout, stderr, wall seconds,
    peak RSS in KiB or None)."""
    gnu_time = shutil.which("time", path="/usr/bin")
    if gnu_time:
        # GNU time reports the child's peak RSS (ru_maxrss, KiB) exactly.
        rss_file = Path(directory) / "rss"
        start = time.perf_counter()
        done = subprocess.run([gnu_time, "-f", "%M", "-o", str(rss_file), *command], env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        text = rss_file.read_text().strip().splitlines()
        peak = int(text[-1]) if text and text[-1].isdigit() else None
        return done.returncode, done.stdout, done.stderr, wall, peak
    return run_polling_rss(command, env)


def run_polling_rss(command, env):
    """Without GNU time: polls the child's VmHWM (its peak RSS) until it exits."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True)
        peak = None
        while child.poll() is None:
            hwm = status_kib(child.pid, "VmHWM")  # only ever grows; None once it exits
            if hwm:
                peak = max(peak or 0, hwm)
            time.sleep(0.01)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return child.returncode, out.read(), err.read(), wall, peak


def run_exporter(binary, moto, source, organization, directory):
    config = write_config(directory, source, organization)
    command = [*binary, "--config.file", str(config), "--log.level", "warn", "report", "--format", "json"]
    before = moto.counter.snapshot()
    code, stdout, stderr, wall, peak = run_measured(command, exporter_env(moto.endpoint), directory)
    calls = moto.counter.snapshot() - before
    keys = None
    if code == 0:
        try:
            keys = len(json.loads(stdout)["details"])
        except (ValueError, KeyError, TypeError) as e:
            stderr += f"\nbench: cannot read the report's details: {e}"
    return {"source": source, "code": code, "stderr": stderr, "wall": wall, "peak_kib": peak, "calls": calls, "keys": keys}


# --- Output -------------------------------------------------------------------


def table(rows):
    lines = [
        "| setup | source | wall time | AWS calls | peak RSS | keys reported |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for setup, run in rows:
        peak = "?" if run["peak_kib"] is None else f"{run['peak_kib'] / 1024:.1f} MiB"
        keys = f"{run['keys']:,}" if run["keys"] is not None else f"failed (exit {run['code']})"
        lines.append(
            f"| {setup} | {run['source']} | {run['wall']:.2f} s | {sum(run['calls'].values()):,} | {peak} | {keys} |"
        )
    return "\n".join(lines)


def call_breakdown(rows):
    lines = []
    for setup, run in rows:
        top = ", ".join(f"{op} {n:,}" for op, n in run["calls"].most_common())
        lines.append(f"- {setup}, {run['source']}: {top or 'none'}")
    return "\n".join(lines)


# --- A stand-in for the exporter (--dry-run) -----------------------------------


def stub_exporter(argv):
    """Plays `BINARY --config.file CFG ... report --format json` with boto3:
    reads the same accounts the way the exporter would (roughly), prints
    {"details": [one entry per key]}. Only for --dry-run."""
    import boto3
    import yaml

    config = yaml.safe_load(Path(argv[argv.index("--config.file") + 1]).read_text()) or {}
    session = boto3.Session(region_name="us-east-1")
    accounts = [(moto_server.ACCOUNT_ID, {})]  # (account id, client credentials)
    role = ((config.get("accounts") or {}).get("organization") or {}).get("role_name")
    if role:
        org = session.client("organizations")
        sts = session.client("sts")
        for page in org.get_paginator("list_accounts").paginate():
            for account in page["Accounts"]:
                if account["Id"] == moto_server.ACCOUNT_ID:
                    continue  # read with the base credentials
                arn = f"arn:aws:iam::{account['Id']}:role/{role}"
                c = sts.assume_role(RoleArn=arn, RoleSessionName="bench-stub")["Credentials"]
                credentials = {
                    "aws_access_key_id": c["AccessKeyId"],
                    "aws_secret_access_key": c["SecretAccessKey"],
                    "aws_session_token": c["SessionToken"],
                }
                accounts.append((account["Id"], credentials))
    details = []
    for account_id, credentials in accounts:
        # One session for all: a session per account would load botocore's models each time.
        iam = session.client("iam", **credentials)
        if config.get("source") == "credential-report":
            while iam.generate_credential_report()["State"] != "COMPLETE":
                time.sleep(0.1)
            report = iam.get_credential_report()["Content"].decode()
            header, *lines = report.splitlines()
            columns = header.split(",")
            for line in lines:
                row = dict(zip(columns, line.split(",")))
                for n in (1, 2):
                    if row.get(f"access_key_{n}_last_rotated", "N/A") not in ("N/A", "not_supported"):
                        details.append({"account_id": account_id, "user": row["user"], "key": str(n)})
        else:
            for page in iam.get_paginator("list_users").paginate():
                for user in page["Users"]:
                    for key in iam.list_access_keys(UserName=user["UserName"])["AccessKeyMetadata"]:
                        details.append({"account_id": account_id, "user": user["UserName"], "access_key_id": key["AccessKeyId"]})
    print(json.dumps({"details": details}))


# --- Main -----------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=str(REPO / "target/release/aws-iam-key-exporter"))
    parser.add_argument("--users", type=int, default=5000, help="users of setup (a)")
    parser.add_argument("--members", type=int, default=200, help="member accounts of setup (b)")
    parser.add_argument("--member-users", type=int, default=20, help="users per member of setup (b)")
    parser.add_argument("--setups", nargs="+", choices=["a", "b"], default=["a", "b"], help="which setups to run")
    parser.add_argument("--sources", nargs="+", choices=SOURCES, default=list(SOURCES), help="which sources to run")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="seed and measure a Python stand-in (boto3) instead of the exporter",
    )
    return parser.parse_args()


def main():
    if sys.argv[1:2] == ["--stub-exporter"]:
        return stub_exporter(sys.argv[2:])
    args = parse_args()
    if args.dry_run:
        binary = [sys.executable, str(Path(__file__).resolve()), "--stub-exporter"]
    else:
        if not os.path.exists(args.binary):
            sys.exit(f"{args.binary} not found: run cargo build --release first")
        binary = [args.binary]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    moto = CountingMoto()
    setups = [
        setup
        for name, setup in [
            ("a", (False, lambda: seed_one_account(moto, args.users))),
            ("b", (True, lambda: seed_organization(moto, args.members, args.member_users))),
        ]
        if name in args.setups
    ]
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for organization, seed in setups:
            moto.reset()
            start = time.perf_counter()
            setup = seed()
            print(f"seeded {setup} in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
            for source in args.sources:
                run = run_exporter(binary, moto, source, organization, directory)
                if run["code"] != 0 or run["keys"] is None:
                    print(f"{setup}, {source}: exit {run['code']}\n{run['stderr'][-4000:]}", file=sys.stderr)
                rows.append((setup, run))
                print(f"  {source}: {run['wall']:.2f} s", file=sys.stderr, flush=True)
    moto.stop()
    if args.dry_run:
        print("DRY RUN: the figures below are a boto3 stand-in's, not the exporter's.\n")
    print(table(rows))
    print("\nAWS calls by operation:\n" + call_breakdown(rows))


if __name__ == "__main__":
    main()
