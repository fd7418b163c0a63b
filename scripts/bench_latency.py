#!/usr/bin/env python3
"""The API source's unthrottled refresh when every AWS call takes 30 ms: one
account of N users (one key each) behind a fake IAM/STS endpoint on loopback
that sleeps the latency before each answer; reports the exporter's wall time
for one refresh (`report --format json`) beside a sequential peer's (a plain
boto3 audit script making the same calls one after another), the ratio
(peer / exporter) and the time the latency allows the peer (calls x latency).

    cargo build && python3 scripts/bench_latency.py --users 1000 --runs 3

The time is the latency's, not the CPU's (1,000 users are about 2,000
calls: 60 s one after another at 30 ms), so the debug binary measures it as
well as a release one; the CPU time of each child (getrusage) is reported to
show it. Several `--binary` are run alternately, one table row each, and the
peer once per round; `--runs` rounds, medians reported.

The endpoint (Python's ThreadingHTTPServer, a thread per connection, keep-
alive, no Nagle delay) answers the awsQuery calls of the API source and of
discovery: GetCallerIdentity, GetAccountSummary, ListAccountAliases,
GetAccountAuthorizationDetails (pages of up to 1,000 users, fewer if the
caller's MaxItems asks), ListAccessKeys and GetAccessKeyLastUsed, and
ListUsers (paged alike), which binaries from before issue 22 (7a810af) read
users with. The XML is shaped after moto's answers; the endpoint counts the
calls by action. The exporter runs with its defaults
(aws.max_concurrent_requests 8) and the clean AWS environment of the other
benchmarks; both times include the process's start (for the peer, Python's
and boto3's).

A benchmark, not a test: figures depend on the machine; the endpoint, the
peer and the exporter share its CPUs.
"""

import argparse
import collections
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

# The same config file and the same clean AWS environment as the other benchmarks.
from bench_refresh import exporter_env, write_config  # noqa: E402

ACCOUNT_ID = "123456789012"
CREATED = "2025-01-15T08:00:00Z"
LAST_USED = "2026-11-30T12:00:00Z"
PAGE_SIZE = 1000  # AWS's largest page of GetAccountAuthorizationDetails

IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


# --- The fake endpoint ----------------------------------------------------------


def response(action, namespace, result):
    return (
        f'<{action}Response xmlns="{namespace}"><{action}Result>{result}</{action}Result>'
        f"<ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata></{action}Response>"
    )


def user_name(u):
    return f"user-{u:05}"


def key_id(u):
    return f"AKIA{u:016d}"


class Account:
    """One account of `users` users of one key each, and its answers."""

    def __init__(self, users):
        self.users = users

    def answer(self, action, params):
        """(status, XML) for one call."""
        if action == "GetCallerIdentity":
            return 200, response(
                action,
                STS_NS,
                f"<UserId>AIDABENCH</UserId><Account>{ACCOUNT_ID}</Account>"
                f"<Arn>arn:aws:iam::{ACCOUNT_ID}:user/bench</Arn>",
            )
        if action == "GetAccountSummary":
            summary = {"Users": self.users, "AccountAccessKeysPresent": 0, "AccountMFAEnabled": 1}
            entries = "".join(f"<entry><key>{k}</key><value>{v}</value></entry>" for k, v in summary.items())
            return 200, response(action, IAM_NS, f"<SummaryMap>{entries}</SummaryMap>")
        if action == "ListAccountAliases":
            return 200, response(action, IAM_NS, "<AccountAliases><member>bench</member></AccountAliases><IsTruncated>false</IsTruncated>")
        if action == "GetAccountAuthorizationDetails":
            return 200, self.authorization_details(params)
        if action == "ListUsers":
            return 200, self.list_users(params)
        if action == "ListAccessKeys":
            u = self.user_index(params.get("UserName", ""))
            if u is None:
                return self.error("NoSuchEntity", f"The user with name {params.get('UserName')} cannot be found.")
            member = (
                f"<member><UserName>{user_name(u)}</UserName><AccessKeyId>{key_id(u)}</AccessKeyId>"
                f"<Status>Active</Status><CreateDate>{CREATED}</CreateDate></member>"
            )
            return 200, response(action, IAM_NS, f"<AccessKeyMetadata>{member}</AccessKeyMetadata><IsTruncated>false</IsTruncated>")
        if action == "GetAccessKeyLastUsed":
            key = params.get("AccessKeyId", "")
            u = int(key[4:]) if key.startswith("AKIA") and key[4:].isdigit() else None
            if u is None or u >= self.users:
                return self.error("NoSuchEntity", f"The access key {key} cannot be found.")
            # Every other key never used, as moto answers one.
            used = (
                f"<LastUsedDate>{LAST_USED}</LastUsedDate><ServiceName>s3</ServiceName><Region>eu-west-1</Region>"
                if u % 2
                else "<ServiceName>N/A</ServiceName><Region>N/A</Region>"
            )
            return 200, response(action, IAM_NS, f"<UserName>{user_name(u)}</UserName><AccessKeyLastUsed>{used}</AccessKeyLastUsed>")
        return self.error("InvalidAction", f"bench_latency.py does not answer {action}", status=400)

    def page(self, params, users):
        """The users of the page the caller's Marker (an offset here) asks
        for, and the paging tail: up to 1,000, fewer if MaxItems asks."""
        start = int(params.get("Marker") or 0)
        end = min(start + min(int(params.get("MaxItems") or PAGE_SIZE), PAGE_SIZE), users)
        more = end < users
        tail = f"<IsTruncated>true</IsTruncated><Marker>{end}</Marker>" if more else "<IsTruncated>false</IsTruncated>"
        return range(start, end), more, tail

    def authorization_details(self, params):
        """Pages of users; the (empty) groups and policies on the last page."""
        filters = {v for k, v in params.items() if k.startswith("Filter.member.")}
        page, _, tail = self.page(params, self.users if not filters or "User" in filters else 0)
        members = "".join(
            f"<member><Path>/engineering/</Path><UserName>{user_name(u)}</UserName><UserId>AIDA{u:016d}</UserId>"
            f"<Arn>arn:aws:iam::{ACCOUNT_ID}:user/engineering/{user_name(u)}</Arn><CreateDate>{CREATED}</CreateDate>"
            "<UserPolicyList/><GroupList/><AttachedManagedPolicies/><Tags/></member>"
            for u in page
        )
        return response(
            "GetAccountAuthorizationDetails",
            IAM_NS,
            f"<UserDetailList>{members}</UserDetailList><GroupDetailList/><RoleDetailList/><Policies/>{tail}",
        )

    def list_users(self, params):
        """ListUsers, which the API source read users with before issue 22's
        GetAccountAuthorizationDetails (7a810af): the "before" binary calls it."""
        page, _, tail = self.page(params, self.users)
        members = "".join(
            f"<member><Path>/engineering/</Path><UserName>{user_name(u)}</UserName><UserId>AIDA{u:016d}</UserId>"
            f"<Arn>arn:aws:iam::{ACCOUNT_ID}:user/engineering/{user_name(u)}</Arn><CreateDate>{CREATED}</CreateDate></member>"
            for u in page
        )
        return response("ListUsers", IAM_NS, f"<Users>{members}</Users>{tail}")

    def user_index(self, name):
        if name.startswith("user-") and name[5:].isdigit() and int(name[5:]) < self.users:
            return int(name[5:])
        return None

    @staticmethod
    def error(code, message, status=404):
        return status, (
            f'<ErrorResponse xmlns="{IAM_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
            f"<Message>{message}</Message></Error><RequestId>bench</RequestId></ErrorResponse>"
        )


class Endpoint:
    """The account behind a ThreadingHTTPServer that sleeps `latency` seconds
    before every answer and counts calls by action."""

    def __init__(self, users, latency):
        account = Account(users)
        self.lock = threading.Lock()
        self.calls = collections.Counter()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as AWS
            # Headers and body are two writes: with Nagle's algorithm the
            # second waits for the client's delayed ACK, 40 ms a call.
            disable_nagle_algorithm = True

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                params = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
                action = params.get("Action", "?")
                with endpoint.lock:
                    endpoint.calls[action] += 1
                time.sleep(latency)
                status, text = account.answer(action, params)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def snapshot(self):
        with self.lock:
            return collections.Counter(self.calls)

    def stop(self):
        self.server.shutdown()


# --- The sequential peer --------------------------------------------------------------


def peer():
    """What a plain audit script does, one call after another; prints the
    number of keys it read. Run as a child (`--peer`), as the exporter is."""
    import boto3

    session = boto3.Session(region_name=os.environ["AWS_REGION"])  # botocore reads AWS_DEFAULT_REGION only
    sts, iam = session.client("sts"), session.client("iam")
    sts.get_caller_identity()
    iam.get_account_summary()
    iam.list_account_aliases()
    users = []
    pages = iam.get_paginator("get_account_authorization_details")
    for page in pages.paginate(Filter=["User", "Group", "LocalManagedPolicy"]):
        users.extend(u["UserName"] for u in page["UserDetailList"])
    keys = 0
    for name in users:
        for page in iam.get_paginator("list_access_keys").paginate(UserName=name):
            for key in page["AccessKeyMetadata"]:
                iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])
                keys += 1
    print(json.dumps({"keys": keys}))


# --- Measuring ------------------------------------------------------------------------


def timed(command, env):
    """Runs `command`; returns (exit code, stdout, stderr, wall seconds, CPU
    seconds of the child: user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done.returncode, done.stdout, done.stderr, wall, cpu


def measure(endpoint, command, env, count_keys, label):
    before = endpoint.snapshot()
    code, stdout, stderr, wall, cpu = timed(command, env)
    calls = endpoint.snapshot() - before
    try:
        keys = count_keys(json.loads(stdout)) if code == 0 else None
    except (ValueError, KeyError, TypeError):
        keys = None
    if keys is None:
        raise SystemExit(f"{label}: exit {code}, no keys read\n{stderr[-4000:]}")
    return {"wall": wall, "cpu": cpu, "calls": calls, "keys": keys}


def main():
    if sys.argv[1:2] == ["--peer"]:
        return peer()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", nargs="+", default=[str(REPO / "target/debug/aws-iam-key-exporter")])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=1, help="rounds; medians are reported")
    args = parser.parse_args()
    for binary in args.binary:
        if not os.path.exists(binary):
            sys.exit(f"{binary} not found: run cargo build first")

    endpoint = Endpoint(args.users, args.latency_ms / 1000)
    env = exporter_env(endpoint.url)
    exporter_runs = {binary: [] for binary in args.binary}
    peer_runs = []
    with tempfile.TemporaryDirectory() as directory:
        config = write_config(directory, "api", organization=False)
        for n in range(args.runs):
            for binary in args.binary:
                command = [binary, "--config.file", str(config), "--log.level", "warn", "report", "--format", "json"]
                run = measure(endpoint, command, env, lambda r: len(r["details"]), binary)
                if run["keys"] != args.users:
                    raise SystemExit(f"{binary}: {run['keys']} keys reported, not {args.users}")
                exporter_runs[binary].append(run)
                print(f"run {n + 1} {binary}: {run['wall']:.2f} s, CPU {run['cpu']:.2f} s, "
                      f"{sum(run['calls'].values())} calls, load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
            run = measure(endpoint, [sys.executable, __file__, "--peer"], env, lambda r: r["keys"], "peer")
            if run["keys"] != args.users:
                raise SystemExit(f"peer: {run['keys']} keys read, not {args.users}")
            peer_runs.append(run)
            print(f"run {n + 1} peer: {run['wall']:.2f} s, CPU {run['cpu']:.2f} s, "
                  f"{sum(run['calls'].values())} calls, load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    endpoint.stop()

    median = lambda runs, field: statistics.median(r[field] for r in runs)
    peer_wall, peer_cpu = median(peer_runs, "wall"), median(peer_runs, "cpu")
    peer_calls = sum(peer_runs[0]["calls"].values())
    allowed = peer_calls * args.latency_ms / 1000
    print(f"\n{args.users:,} users, one key each, {args.latency_ms:g} ms a call, median of {args.runs} run(s)\n")
    print("| binary | calls | exporter | exporter CPU | peer | peer CPU | latency allows the peer | ratio (peer / exporter) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for binary, runs in exporter_runs.items():
        wall = median(runs, "wall")
        print(
            f"| {binary} | {sum(runs[0]['calls'].values()):,} | {wall:.2f} s | {median(runs, 'cpu'):.2f} s | "
            f"{peer_wall:.2f} s | {peer_cpu:.2f} s | {allowed:.2f} s | {peer_wall / wall:.1f}x |"
        )
    print("\nCalls by action:")
    for binary, runs in exporter_runs.items():
        print(f"- {binary}: " + ", ".join(f"{a} {n:,}" for a, n in sorted(runs[0]["calls"].items())))
    print("- peer: " + ", ".join(f"{a} {n:,}" for a, n in sorted(peer_runs[0]["calls"].items())))
    print("\nEvery run (wall s / CPU s):")
    for binary, runs in exporter_runs.items():
        print(f"- {binary}: " + ", ".join(f"{r['wall']:.2f} / {r['cpu']:.2f}" for r in runs))
    print("- peer: " + ", ".join(f"{r['wall']:.2f} / {r['cpu']:.2f}" for r in peer_runs))


if __name__ == "__main__":
    main()
