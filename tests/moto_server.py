#!/usr/bin/env python3
"""A real IAM API server (moto) on loopback, seeded with a realistic account.

The Rust integration tests start this script and talk to it over stdin and
stdout:

- on start it prints ONE JSON line: the endpoint, and everything it seeded
  (users, keys with their timestamps, and what each key is designed to be:
  its age bucket and whether it is high risk by the default policy);
- then it reads commands, one a line, and answers each with one JSON line:
  `stop` (the server stops listening), `start` (it listens again on the same
  port, with the same data), `delete-key USER KEY_ID`, `quit`.

Aged keys are seeded the way SPEC §4 says: by changing moto's backend objects
(create_date, last_used, status) in this same process.
"""

import datetime as dt
import json
import logging
import sys

try:
    import boto3
    from moto.core.responses import ActionResult
    from moto.iam import responses as iam_responses
    from moto.iam.models import AccessKeyLastUsed, iam_backends
    from moto.server import ThreadedMotoServer
except ImportError as e:  # pragma: no cover - the message is the point
    sys.stderr.write(
        f"moto_server.py: {e}. Install the IAM test server with: pip install \"moto[server]\"\n"
    )
    sys.exit(3)

ACCOUNT_ID = "123456789012"
ALIAS = "acme-prod"
DAY = 86400
# ListUsers pages of at most this many users. moto ignores MaxItems and
# returns every user at once; AWS pages, and so must the exporter.
PAGE_SIZE = 7


def paginated_list_users(self):
    path_prefix = self._get_param("PathPrefix")
    marker = self._get_param("Marker")
    max_items = min(int(self._get_param("MaxItems") or 100), PAGE_SIZE)
    users = sorted(self.backend.list_users(path_prefix, None, None), key=lambda u: u.name)
    start = int(marker) if marker else 0
    page = users[start : start + max_items]
    result = {"Users": page, "IsTruncated": start + max_items < len(users)}
    if result["IsTruncated"]:
        result["Marker"] = str(start + max_items)
    return ActionResult(result)


iam_responses.IamResponse.list_users = paginated_list_users

# Each scenario: (age in days, days since last use or None for never used,
# status, designed bucket, designed high risk by the default policy:
# active and older than 365d, or active, never used and older than 7d).
SCENARIOS = [
    (2, 1, "Active", "0-30d", False),
    (3, None, "Active", "0-30d", False),  # never used, inside the 7-day grace
    (10, None, "Active", "0-30d", True),  # never used past the grace period
    (29, 0, "Active", "0-30d", False),
    (31, 5, "Active", "30-90d", False),
    (60, None, "Inactive", "30-90d", False),  # inactive is never high risk
    (89, 30, "Active", "30-90d", False),
    (91, 2, "Active", "90-180d", False),
    (120, None, "Active", "90-180d", True),
    (179, 100, "Inactive", "90-180d", False),
    (181, 0, "Active", "180-365d", False),
    (250, 200, "Active", "180-365d", False),
    (364, 1, "Active", "180-365d", False),
    (366, 3, "Active", "365d+", True),
    (400, None, "Inactive", "365d+", False),
    (800, 700, "Active", "365d+", True),
    (2000, None, "Active", "365d+", True),
    (3000, 2900, "Inactive", "365d+", False),
]

SERVICES = [("s3", "eu-west-1"), ("sts", "us-east-1"), ("ec2", "ap-southeast-2"), ("iam", "N/A")]

# (name, path, tags, scenario indexes for its keys). Names use every
# character IAM allows besides letters and digits: + = , . @ _ -
USERS = [
    ("alice.nguyen", "/engineering/", {"owner": "alice", "team": "platform"}, [0]),
    ("bob+ci", "/ci/", {"owner": "bob", "team": "ci"}, [1, 3]),
    ("carol=ops", "/", {"team": "ops"}, [2]),
    ("dave,eve", "/contractors/", {}, [4]),
    ("erin@example.com", "/", {"owner": "erin", "team": "security"}, [5, 6]),
    ("frank_backup-01", "/engineering/", {"owner": "frank"}, [7]),
    ("grace.holloway", "/", {"team": "data"}, [8]),
    ("heidi-schmidt", "/engineering/", {"owner": "heidi", "team": "platform"}, [9, 10]),
    ("ivan.petrov", "/", {}, [11]),
    ("julia.santos", "/engineering/", {"team": "web"}, [12, 13]),
    ("kenji.tanaka", "/", {"owner": "kenji"}, [14]),
    ("laura.bennett", "/ci/", {"team": "ci"}, [15]),
    ("mohammed.alsayed", "/", {"owner": "mo", "team": "data"}, [16]),
    ("olivia.berg", "/contractors/", {}, [17]),
    ("svc-deploy", "/ci/", {"owner": "ci-bot", "team": "ci"}, [0, 4]),
    ("svc-reporting", "/", {"team": "data"}, [13, 15]),
    ("svc-metrics.exporter", "/", {}, [3]),
    ("svc-payments", "/", {"owner": "pay", "team": "payments"}, [10, 16]),
    ("rachel.idowu", "/engineering/", {"team": "web"}, [6]),
    ("sam+admin@example.com", "/", {"owner": "sam", "team": "security"}, [2, 11]),
    ("tom.hughes", "/", {}, []),
    ("uma.patel", "/engineering/", {"team": "platform"}, []),
    ("victor,lee", "/contractors/", {}, []),
    ("wendy=finance", "/", {"owner": "wendy", "team": "finance"}, []),
    ("xavier.dupont", "/", {}, [12]),
    ("yusuf.demir", "/", {"team": "ops"}, [8, 9]),
    ("zoe.adams", "/", {}, [7]),
    ("app-orders-api", "/", {"owner": "orders", "team": "web"}, [1]),
    ("app-search", "/", {"team": "search"}, [5]),
    ("app-mobile", "/", {}, [14, 0]),
    # Left out by the tests' config: by name (users.exclude) and by tag
    # (users.exclude_tags). Their keys are high risk so that a leak shows.
    ("excluded-temp", "/", {"team": "tmp"}, [16]),
    ("ignored-by-tag", "/", {"exporter-ignore": "true", "team": "tmp"}, [13]),
]


def seed(endpoint):
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    iam.create_account_alias(AccountAlias=ALIAS)
    backend = iam_backends[ACCOUNT_ID]["aws"]
    backend.account_summary._account_access_keys_present = 1
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0, tzinfo=None)
    users, keys = [], []
    for n, (name, path, tags, scenario_ids) in enumerate(USERS):
        kwargs = {"UserName": name, "Path": path}
        if tags:
            kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        iam.create_user(**kwargs)
        users.append({"name": name, "path": path, "tags": tags})
        for i, scenario_id in enumerate(scenario_ids):
            age, unused, status, bucket, high_risk = SCENARIOS[scenario_id]
            key_id = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
            key = next(k for k in backend.users[name].access_keys if k.access_key_id == key_id)
            # A second key is a little younger, so that positions 1 and 2 are
            # decided by creation date even when two scenarios have one age.
            key.create_date = now - dt.timedelta(days=age, seconds=i * 60 + 5)
            key.status = status
            service, region = SERVICES[(n + i) % len(SERVICES)]
            last_used = None
            if unused is not None:
                last_used = min(now - dt.timedelta(days=unused, seconds=1), now)
                last_used = max(last_used, key.create_date)
                key.last_used = AccessKeyLastUsed(last_used, service, region)
            keys.append(
                {
                    "user": name,
                    "access_key_id": key_id,
                    "status": status,
                    "created": int(key.create_date.replace(tzinfo=dt.timezone.utc).timestamp()),
                    "last_used": None
                    if last_used is None
                    else int(last_used.replace(tzinfo=dt.timezone.utc).timestamp()),
                    "service": service if last_used else "",
                    "region": (region if region != "N/A" else "") if last_used else "",
                    "bucket": bucket,
                    "high_risk": high_risk,
                }
            )
    return {"account_id": ACCOUNT_ID, "alias": ALIAS, "users": users, "keys": keys, "root_access_key_present": True}


def main():
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    seeded = seed(endpoint)
    print(json.dumps({"endpoint": endpoint, "port": port, **seeded}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "stop":
            server.stop()
            answer = {"ok": "stopped"}
        elif words[0] == "start":
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            server.start()
            answer = {"ok": "started"}
        elif words[0] == "delete-key":
            iam_backends[ACCOUNT_ID]["aws"].delete_access_key(words[2], words[1])
            answer = {"ok": "deleted"}
        elif words[0] == "quit":
            break
        else:
            answer = {"error": f"unknown command {words[0]!r}"}
        print(json.dumps(answer), flush=True)
    server.stop()


if __name__ == "__main__":
    main()
