#!/usr/bin/env python3
"""A real AWS API server (moto) on loopback, seeded with realistic accounts,
behind a small proxy that can inject AWS faults.

The Rust integration tests start this script and talk to it over stdin and
stdout:

- on start it prints ONE JSON line: the endpoint, the proxy's endpoint, and
  everything it seeded (users, keys with their timestamps, and what each key
  is designed to be: its age bucket and whether it is high risk by the
  default policy);
- then it reads commands, one a line, and answers each with one JSON line,
  `{"ok": ...}` or `{"error": ...}`:
  `stop` (the server stops listening), `start` (it listens again on the same
  port, with the same data), `delete-key USER KEY_ID [ACCOUNT_ID]`,
  `fault deny-assume-role ACCOUNT_ID`, `fault throttle ACCOUNT_ID N`,
  `fault rate N` (IAM's own token bucket: N calls a second, 0 for none),
  `fault 500|503|malformed|hang|inprogress|limit-exceeded|throttling
  ACCOUNT_ID N|forever [OPERATION] [paged]`, `fault clear`, `stats`, `quit`; for the organization, `leave-org
  ACCOUNT_ID`, `close-account ACCOUNT_ID` and `join-org NAME` (a new member
  with one user and one key, returned like a seeded account).

Scenarios (`--scenario`):

- `realistic` (the default): one account, 123456789012, alias `acme-prod`;
  prints `{"endpoint", "port", "proxy_endpoint", "account_id", "alias",
  "users", "keys", "root_access_key_present"}`.
- `many` (`--users N`, default 300): the account 123456789012 with N users
  `user-0001` .. of one key each, for the throttling tests; prints
  `{"endpoint", "port", "proxy_endpoint", "account_id", "users", "keys"}`.
- `organization` (`--members N`, default 6): an AWS Organization whose
  management account is 123456789012 (alias `acme-management`) with N member
  accounts `member-1` .. `member-N` (no aliases: their names come from
  Organizations), each with different users and keys; prints
  `{"endpoint", "port", "proxy_endpoint", "management_account_id",
  "accounts": [{"account_id", "name", "alias", "users", "keys",
  "root_access_key_present"}, ...]}`.

Aged keys are seeded by changing moto's backend objects
(create_date, last_used, status) in this same process.

The proxy (`proxy_endpoint`) forwards every request to moto unchanged, except
where a fault rule says otherwise; see `FaultProxy`.
"""

import argparse
import datetime as dt
import http.client
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

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


def paginated_account_authorization_details(self):
    """GetAccountAuthorizationDetails by pages of PAGE_SIZE users, groups and
    policies on the last page only: moto answers in one page, AWS in pages of
    up to 1,000 items, and a user's group may come pages after the user."""
    details = self.backend.get_account_authorization_details(self._get_param("Filter", []))
    marker = self._get_param("Marker")
    max_items = min(int(self._get_param("MaxItems") or 100), PAGE_SIZE)
    users = sorted(details["users"], key=lambda u: u.name)
    start = int(marker) if marker else 0
    last = start + max_items >= len(users)
    result = {
        "UserDetailList": users[start : start + max_items],
        "GroupDetailList": list(details["groups"]) if last else [],
        "RoleDetailList": list(details["roles"]) if last else [],
        "Policies": list(details["managed_policies"]) if last else [],
        "IsTruncated": not last,
    }
    if not last:
        result["Marker"] = str(start + max_items)
    return ActionResult(result)


iam_responses.IamResponse.get_account_authorization_details = paginated_account_authorization_details

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


# What the realistic account's users may do (issue 22): user -> grants, each
# ("managed", policy name) for an AWS managed policy on the user,
# ("group", group name) for membership of a group of GROUPS, ("inline",
# document) for an inline policy, ("customer", policy name) for a policy of
# CUSTOMER_POLICIES; and what the exporter must judge (admin, quarantined).
ALL_ON_ALL = {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}
GROUPS = {
    "admins": [("managed", "AdministratorAccess")],
    "inline-admins": [
        ("inline", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["iam:*"], "Resource": "*"}]})
    ],
    "quarantined": [("managed", "AWSCompromisedKeyQuarantine")],
    "readers": [("managed", "ReadOnlyAccess")],
}
CUSTOMER_POLICIES = {
    "iam-everything": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "IAM:*"], "Resource": ["*"]}],
    },
}
PRIVILEGES = {
    "alice.nguyen": ([("managed", "AdministratorAccess")], True, False),
    "frank_backup-01": ([("group", "admins"), ("group", "readers")], True, False),
    "ivan.petrov": ([("managed", "IAMFullAccess")], True, False),
    "julia.santos": ([("inline", ALL_ON_ALL)], True, False),
    "kenji.tanaka": ([("group", "inline-admins")], True, False),
    "xavier.dupont": ([("customer", "iam-everything")], True, False),
    "uma.patel": ([("managed", "ReadOnlyAccess"), ("group", "readers")], False, False),
    # What the rule does not count: a condition, NotAction.
    "tom.hughes": (
        [("inline", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
                                                              "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]})],
        False,
        False,
    ),
    "dave,eve": (
        [("inline", {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}})],
        False,
        False,
    ),
    "rachel.idowu": ([("managed", "AWSCompromisedKeyQuarantineV3")], False, True),
    "yusuf.demir": ([("managed", "AWSCompromisedKeyQuarantineV2")], False, True),
    "zoe.adams": ([("group", "quarantined")], False, True),
}
# The default policy's admin_rotated_more_than.
ADMIN_ROTATED_MORE_THAN_DAYS = 90


def seed_privileges(iam, users, keys):
    """Creates GROUPS and CUSTOMER_POLICIES, grants PRIVILEGES, and marks the
    seeded users and keys with what the exporter must then say: each user's
    admin and quarantined, and a key's high risk by the admin and quarantine
    rules as well as by age."""
    arns = {}
    for name, document in CUSTOMER_POLICIES.items():
        arns[name] = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))["Policy"]["Arn"]

    def grant(kind, value, attach, put_inline, owner):
        if kind == "managed":
            attach(PolicyArn=f"arn:aws:iam::aws:policy/{value}")
        elif kind == "customer":
            attach(PolicyArn=arns[value])
        elif kind == "inline":
            put_inline(PolicyName=f"inline-{owner}", PolicyDocument=json.dumps(value))

    for group, grants in GROUPS.items():
        iam.create_group(GroupName=group)
        for kind, value in grants:
            grant(kind, value, lambda **kw: iam.attach_group_policy(GroupName=group, **kw),
                  lambda **kw: iam.put_group_policy(GroupName=group, **kw), group)
    by_name = {u["name"]: u for u in users}
    for user in users:
        user["admin"], user["quarantined"] = False, False
    for name, (grants, admin, quarantined) in PRIVILEGES.items():
        for kind, value in grants:
            if kind == "group":
                iam.add_user_to_group(GroupName=value, UserName=name)
            else:
                grant(kind, value, lambda **kw: iam.attach_user_policy(UserName=name, **kw),
                      lambda **kw: iam.put_user_policy(UserName=name, **kw), name)
        by_name[name]["admin"], by_name[name]["quarantined"] = admin, quarantined
    now = epoch(utc_now())
    for key in keys:
        user = by_name[key["user"]]
        active = key["status"] == "Active"
        old_for_admin = now - key["created"] > ADMIN_ROTATED_MORE_THAN_DAYS * DAY
        if active and (user["quarantined"] or (user["admin"] and old_for_admin)):
            key["high_risk"] = True


# The organization scenario. Its management account is the default account,
# the one the exporter's base credentials belong to.
MANAGEMENT_ALIAS = "acme-management"
# The role the exporter assumes in member accounts (moto needs no such role).
MEMBER_ROLE = "IAMKeyExporter"
# Users of the organization scenario: each account takes a different run of
# this pool, so accounts differ, and a name also shows up in more than one
# account, as in real organizations (the exporter must keep them apart).
ORG_USERS = [
    ("ana.silva", "/engineering/", {"owner": "ana", "team": "platform"}),
    ("svc-backup", "/", {"team": "ops"}),
    ("ben+ops", "/", {}),
    ("chen.wei", "/engineering/", {"team": "data"}),
    ("svc-ci", "/ci/", {"owner": "ci-bot", "team": "ci"}),
    ("dina@example.com", "/", {"owner": "dina"}),
    ("app-billing", "/", {"owner": "billing", "team": "payments"}),
    ("eli_ops-2", "/contractors/", {}),
    ("fatima.khan", "/", {"team": "security"}),
    ("svc-terraform", "/ci/", {"team": "platform"}),
    ("george,li", "/contractors/", {}),
    ("hana=finance", "/", {"owner": "hana", "team": "finance"}),
]


def utc_now():
    """Now as a naive UTC datetime in whole seconds, as moto stores times."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0, tzinfo=None)


def epoch(naive_utc):
    return int(naive_utc.replace(tzinfo=dt.timezone.utc).timestamp())


def iam_client(endpoint, credentials=None):
    """An IAM client straight to moto (not through the proxy, so that seeding
    does not show in the proxy's stats); `credentials` are AssumeRole's."""
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    if credentials:
        keys = {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        }
    return boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", **keys)


def seed_users(iam, account_id, user_specs, now):
    """Creates `user_specs` ((name, path, tags, scenario indexes)) with the IAM
    client `iam`, ages their keys in the backend of `account_id`, and returns
    (users, keys) as the JSON line describes them."""
    backend = iam_backends[account_id]["aws"]
    users, keys = [], []
    for n, (name, path, tags, scenario_ids) in enumerate(user_specs):
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
                    "created": epoch(key.create_date),
                    "last_used": None if last_used is None else epoch(last_used),
                    "service": service if last_used else "",
                    "region": (region if region != "N/A" else "") if last_used else "",
                    "bucket": bucket,
                    "high_risk": high_risk,
                }
            )
    return users, keys


def set_root_access_key_present(account_id, present):
    # moto has no root user to give a key to; GetAccountSummary reads this.
    iam_backends[account_id]["aws"].account_summary._account_access_keys_present = int(present)


def seed_realistic(endpoint):
    iam = iam_client(endpoint)
    iam.create_account_alias(AccountAlias=ALIAS)
    set_root_access_key_present(ACCOUNT_ID, True)
    users, keys = seed_users(iam, ACCOUNT_ID, USERS, utc_now())
    seed_privileges(iam, users, keys)
    return {"account_id": ACCOUNT_ID, "alias": ALIAS, "users": users, "keys": keys, "root_access_key_present": True}


def seed_many(endpoint, count):
    specs = [(f"user-{n:04}", "/", {}, [n % len(SCENARIOS)]) for n in range(1, count + 1)]
    users, keys = seed_users(iam_client(endpoint), ACCOUNT_ID, specs, utc_now())
    return {"account_id": ACCOUNT_ID, "users": users, "keys": keys}


def organization_users(index):
    """User specs of the account at `index` (0 is the management account):
    3 + index users with 0, 1 or 2 keys, aged by SCENARIOS picked so that
    every account gets a different mix."""
    specs = []
    for j in range(3 + index):
        name, path, tags = ORG_USERS[(2 * index + j) % len(ORG_USERS)]
        if j >= len(ORG_USERS):  # only with many members: keep names unique
            name = f"{name}-{j // len(ORG_USERS)}"
        key_count = (index + j) % 3
        scenario_ids = [(7 * index + 5 * j + 11 * k) % len(SCENARIOS) for k in range(key_count)]
        specs.append((name, path, tags, scenario_ids))
    return specs


def organizations_client(endpoint):
    return boto3.client(
        "organizations",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_organization(endpoint, members):
    """Creates the organization and `members` member accounts named
    member-1 .. member-N; returns [(account_id, name)] as ListAccounts gives
    them, the management account first."""
    org = organizations_client(endpoint)
    org.create_organization(FeatureSet="ALL")
    member_ids = []
    for i in range(1, members + 1):
        status = org.create_account(Email=f"member-{i}@example.com", AccountName=f"member-{i}")
        member_ids.append(status["CreateAccountStatus"]["AccountId"])
    names = {}
    for page in org.get_paginator("list_accounts").paginate():
        names.update({a["Id"]: a["Name"] for a in page["Accounts"]})
    return [(account_id, names[account_id]) for account_id in [ACCOUNT_ID, *member_ids]]


def assume_member_role(endpoint, account_id):
    sts = boto3.client(
        "sts",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    role_arn = f"arn:aws:iam::{account_id}:role/{MEMBER_ROLE}"
    return sts.assume_role(RoleArn=role_arn, RoleSessionName="moto-seed")["Credentials"]


def seed_organization(endpoint, members):
    now = utc_now()
    accounts = []
    for index, (account_id, name) in enumerate(create_organization(endpoint, members)):
        if account_id == ACCOUNT_ID:
            iam = iam_client(endpoint)
            iam.create_account_alias(AccountAlias=MANAGEMENT_ALIAS)
            alias = MANAGEMENT_ALIAS
        else:
            # Signed with the member's credentials, moto files the calls
            # under the member account.
            iam = iam_client(endpoint, assume_member_role(endpoint, account_id))
            alias = ""
        root_key = index % 2 == 0  # the management account and even members
        set_root_access_key_present(account_id, root_key)
        users, keys = seed_users(iam, account_id, organization_users(index), now)
        accounts.append(
            {
                "account_id": account_id,
                "name": name,
                "alias": alias,
                "users": users,
                "keys": keys,
                "root_access_key_present": root_key,
            }
        )
    return {"management_account_id": ACCOUNT_ID, "accounts": accounts}


# --- The fault-injecting proxy -------------------------------------------

CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/[^/]+/([^/,\s]+)/aws4_request")
ACCESS_KEY_ID = re.compile(r"<AccessKeyId>([^<]+)</AccessKeyId>")
# Headers about one connection, not the message: never relayed. The body is
# always relayed whole with a Content-Length of its own.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "content-length",
}
STS_XMLNS = "https://sts.amazonaws.com/doc/2011-06-15/"
IAM_XMLNS = "https://iam.amazonaws.com/doc/2010-05-08/"


class AwsRequest:
    """What the proxy needs to know about one AWS request."""

    def __init__(self, method, path, headers, body):
        self.method, self.path, self.headers, self.body = method, path, headers, body
        credential = CREDENTIAL.search(headers.get("Authorization", ""))
        self.access_key_id = credential.group(1) if credential else ""
        self.service = credential.group(2) if credential else ""
        # Query protocol (IAM, STS): form fields in the body, or in the URL
        # for GET; JSON protocol (Organizations): the operation in a header.
        self.params = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
        content_type = headers.get("Content-Type", "")
        if "x-www-form-urlencoded" in content_type:
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            self.params.update({k: v[0] for k, v in form.items()})
        target = headers.get("X-Amz-Target")
        self.operation = target.rsplit(".", 1)[-1] if target else self.params.get("Action", "")

    def role_account(self):
        """The account of AssumeRole's RoleArn (arn:aws:iam::ACCOUNT:role/NAME)."""
        parts = self.params.get("RoleArn", "").split(":")
        return parts[4] if len(parts) > 4 else ""


def error_response(status, xmlns, code, message):
    request_id = str(uuid.uuid4())
    body = (
        f'<ErrorResponse xmlns="{xmlns}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    return status, http.client.responses[status], headers, body


class FaultProxy:
    """A threaded HTTP proxy on loopback in front of moto.

    It relays every request (method, path, headers, body) to moto and moto's
    answer back unchanged, except when a fault rule matches:

    - deny-assume-role ACCOUNT: AssumeRole into ACCOUNT gets 403 AccessDenied;
    - throttle ACCOUNT N: the next N IAM requests signed with ACCOUNT's
      credentials get 400 Throttling;
    - rate N: IAM's per-account limit as AWS applies it, a token bucket of N
      refilled at N a second that every request draws from; a request that
      finds it empty gets 400 Throttling ("Rate exceeded");
    - KIND ACCOUNT N|forever [OPERATION] [paged]: IAM requests of ACCOUNT
      (of that operation only, and only those with a pagination Marker when
      `paged`) get, N times or until `fault clear`:
      `500` / `503` an AWS error with that status (InternalFailure /
      ServiceUnavailable), `malformed` a 200 whose XML is cut off, `hang` no
      answer at all until the rule is cleared (then the connection closes),
      `inprogress` a GenerateCredentialReport answer that says INPROGRESS,
      `limit-exceeded` 409 LimitExceeded, what GenerateCredentialReport
      answers when it is called too often; `throttling` 400 Throttling, and
      this kind alone matches STS requests too (GetCallerIdentity, with
      which discovery starts), so that discovery can be throttled.

    A credential's account: every AssumeRole that succeeds through the proxy
    maps the AccessKeyId in moto's answer to the RoleArn's account; any other
    key (the base credentials) belongs to the management account.

    While moto is stopped the proxy closes the client's connection without an
    answer: the AWS SDK then sees a network failure, as it does when it talks
    to a stopped moto directly (a 502 would read as a service error instead).
    """

    def __init__(self, upstream_port, base_account=ACCOUNT_ID):
        self.upstream_port = upstream_port
        self.base_account = base_account
        self.lock = threading.Lock()
        self.key_accounts = {}
        self.clear()
        self.rate = 0
        self.tokens = 0.0
        self.refilled = time.monotonic()
        self.counts = {"denied": 0, "throttled": 0, "faulted": 0, "forwarded": 0, "dropped": 0, "by_action": {}}
        handler = type("Handler", (ProxyHandler,), {"proxy": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self):
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def shutdown(self):
        self.server.shutdown()

    # Rules and stats, changed by stdin commands.

    def clear(self):
        with self.lock:
            self.denied_accounts = set()
            self.throttles = {}
            self.rules = []
            self.generation = getattr(self, "generation", 0) + 1

    def add_rule(self, kind, account_id, count, operation=None, paged=False):
        with self.lock:
            self.rules.append(
                {"kind": kind, "account": account_id, "left": count, "operation": operation, "paged": paged}
            )

    def hang_until_cleared(self, generation, limit=300):
        """Holds a request until `fault clear` (or `limit` seconds)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with self.lock:
                if self.generation != generation:
                    return
            time.sleep(0.05)

    def deny_assume_role(self, account_id):
        with self.lock:
            self.denied_accounts.add(account_id)

    def set_rate(self, rate):
        with self.lock:
            self.rate = rate
            self.tokens = float(rate)
            self.refilled = time.monotonic()

    def over_rate(self):
        """Takes a token from the bucket; True when there was none. Called
        with the lock held."""
        if self.rate <= 0:
            return False
        now = time.monotonic()
        self.tokens = min(float(self.rate), self.tokens + (now - self.refilled) * self.rate)
        self.refilled = now
        if self.tokens < 1.0:
            return True
        self.tokens -= 1.0
        return False

    def throttle(self, account_id, count):
        with self.lock:
            self.throttles[account_id] = count

    def stats(self):
        with self.lock:
            return json.loads(json.dumps(self.counts))  # a deep copy

    def count(self, what):
        with self.lock:
            self.counts[what] += 1

    # The request path, called by the handler threads.

    def fault_for(self, request):
        """Counts the request; returns the error response of the rule it
        matches, or None to forward it."""
        with self.lock:
            by_action = self.counts["by_action"]
            by_action[request.operation] = by_action.get(request.operation, 0) + 1
            if request.operation == "AssumeRole" and request.role_account() in self.denied_accounts:
                self.counts["denied"] += 1
                role_arn = request.params.get("RoleArn", "")
                return error_response(
                    403,
                    STS_XMLNS,
                    "AccessDenied",
                    f"User: arn:aws:iam::{self.base_account}:user/testing is not authorized "
                    f"to perform: sts:AssumeRole on resource: {role_arn}",
                )
            if self.over_rate():
                self.counts["throttled"] += 1
                return error_response(400, IAM_XMLNS, "Throttling", "Rate exceeded")
            account = self.key_accounts.get(request.access_key_id, self.base_account)
            if request.service == "iam" and self.throttles.get(account, 0) > 0:
                self.throttles[account] -= 1
                self.counts["throttled"] += 1
                return error_response(400, IAM_XMLNS, "Throttling", "Rate exceeded")
            for rule in self.rules:
                if self.matches(rule, request, account):
                    if rule["left"] > 0:
                        rule["left"] -= 1
                    self.counts["faulted"] += 1
                    return self.rule_answer(rule, request)
        return None

    @staticmethod
    def matches(rule, request, account):
        return (
            (request.service == "iam" or (rule["kind"] == "throttling" and request.service == "sts"))
            and rule["left"] != 0
            and rule["account"] in (account, "any")
            and rule["operation"] in (None, request.operation)
            and (not rule["paged"] or "Marker" in request.params)
        )

    def rule_answer(self, rule, request):
        kind = rule["kind"]
        if kind == "500":
            return error_response(500, IAM_XMLNS, "InternalFailure", "We encountered an internal error.")
        if kind == "503":
            return error_response(503, IAM_XMLNS, "ServiceUnavailable", "Service is unavailable.")
        if kind == "malformed":
            # Not XML at all; the SDK's parser is lenient with XML that is
            # merely cut off or has mismatched tags.
            return 200, "OK", [("Content-Type", "text/xml")], b"\x00 this is not XML <<"
        if kind == "inprogress":
            body = (
                f'<GenerateCredentialReportResponse xmlns="{IAM_XMLNS}"><GenerateCredentialReportResult>'
                "<State>INPROGRESS</State><Description>No report exists. Starting a new report generation.</Description>"
                "</GenerateCredentialReportResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
                "</GenerateCredentialReportResponse>"
            )
            return 200, "OK", [("Content-Type", "text/xml")], body.encode()
        if kind == "hang":
            return ("hang", self.generation)
        if kind == "limit-exceeded":
            return error_response(409, IAM_XMLNS, "LimitExceeded", "Rate limit exceeded for GenerateCredentialReport.")
        if kind == "throttling":
            xmlns = STS_XMLNS if request.service == "sts" else IAM_XMLNS
            return error_response(400, xmlns, "Throttling", "Rate exceeded")
        raise ValueError(kind)

    def forward(self, request):
        """Sends the request to moto and returns (status, reason, headers,
        body); raises OSError when moto does not answer."""
        connection = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=120)
        try:
            # The client's own Host and Accept-Encoding go through as they are.
            connection.putrequest(request.method, request.path, skip_host=True, skip_accept_encoding=True)
            for name, value in request.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    connection.putheader(name, value)
            if request.body or request.method not in ("GET", "HEAD", "DELETE"):
                connection.putheader("Content-Length", str(len(request.body)))
            connection.endheaders(request.body or None)
            response = connection.getresponse()
            body = response.read()
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            self.count("forwarded")
            return response.status, response.reason, headers, body
        finally:
            connection.close()

    def observe(self, request, status, body):
        """Learns which account the credentials from an AssumeRole are for."""
        if request.operation == "AssumeRole" and status == 200:
            match = ACCESS_KEY_ID.search(body.decode("utf-8", "replace"))
            if match:
                with self.lock:
                    self.key_accounts[match.group(1)] = request.role_account()


class ProxyHandler(BaseHTTPRequestHandler):
    proxy = None  # the FaultProxy, set on a subclass per proxy
    # HTTP/1.1 keeps the SDK's connections alive, as AWS does.
    protocol_version = "HTTP/1.1"

    def do_any(self):
        request = AwsRequest(self.command, self.path, self.headers, self.read_body())
        answer = self.proxy.fault_for(request)
        if answer is not None and answer[0] == "hang":
            self.proxy.hang_until_cleared(answer[1])
            self.close_connection = True
            return
        if answer is None:
            try:
                answer = self.proxy.forward(request)
            except OSError:
                self.proxy.count("dropped")
                self.close_connection = True  # moto is stopped: see FaultProxy
                return
            self.proxy.observe(request, answer[0], answer[3])
        self.send_answer(*answer)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_any

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    # Optional trailers, then the blank line that ends the body.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send_answer(self, status, reason, headers, body):
        # send_response_only: moto's own Date and Server headers are relayed.
        self.send_response_only(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, *args):
        pass  # stdout and stderr belong to the test protocol and test logs


# --- Commands --------------------------------------------------------------


def fault_command(proxy, words):
    if words[:1] == ["clear"]:
        proxy.clear()
        return {"ok": "cleared"}
    if len(words) == 2 and words[0] == "deny-assume-role":
        proxy.deny_assume_role(words[1])
        return {"ok": f"denying AssumeRole into {words[1]}"}
    if len(words) == 3 and words[0] == "throttle" and words[2].isdigit():
        proxy.throttle(words[1], int(words[2]))
        return {"ok": f"throttling the next {words[2]} IAM requests of {words[1]}"}
    if len(words) == 2 and words[0] == "rate" and words[1].isdigit():
        proxy.set_rate(int(words[1]))
        return {"ok": f"{words[1]} calls a second"}
    kinds = ("500", "503", "malformed", "hang", "inprogress", "limit-exceeded", "throttling")
    if len(words) >= 3 and words[0] in kinds and (words[2].isdigit() or words[2] == "forever"):
        rest = words[3:]
        paged = "paged" in rest
        operation = next((w for w in rest if w != "paged"), None)
        count = -1 if words[2] == "forever" else int(words[2])
        proxy.add_rule(words[0], words[1], count, operation, paged)
        return {"ok": f"{words[0]} for {words[1]}"}
    return {
        "error": "usage: fault deny-assume-role ACCOUNT_ID | fault throttle ACCOUNT_ID N | fault rate N | "
        "fault 500|503|malformed|hang|inprogress|limit-exceeded|throttling ACCOUNT_ID|any N|forever [OPERATION] [paged] | fault clear"
    }


def start_moto(port=0):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=["realistic", "organization", "many"], default="realistic")
    parser.add_argument("--users", type=int, default=300, help="users of one key each (many)")
    parser.add_argument("--members", type=int, default=6, help="member accounts (organization)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = start_moto()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    if args.scenario == "organization":
        seeded = seed_organization(endpoint, args.members)
    elif args.scenario == "many":
        seeded = seed_many(endpoint, args.users)
    else:
        # moto loads the AWS managed policies (AdministratorAccess, the
        # quarantine policies) only when asked, into each account's backend
        # as it is first used: seconds of CPU an account, which the
        # organization scenario's many accounts in parallel tests cannot
        # afford and only the realistic account's privileges need.
        os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        seeded = seed_realistic(endpoint)
    proxy = FaultProxy(port)
    print(json.dumps({"endpoint": endpoint, "port": port, "proxy_endpoint": proxy.endpoint, **seeded}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "stop":
            server.stop()
            answer = {"ok": "stopped"}
        elif words[0] == "start":
            server = start_moto(port)
            answer = {"ok": "started"}
        elif words[0] == "delete-key":
            account_id = words[3] if len(words) > 3 else ACCOUNT_ID
            try:
                iam_backends[account_id]["aws"].delete_access_key(words[2], words[1])
                answer = {"ok": "deleted"}
            except Exception as e:  # an unknown user or key: say so, keep serving
                answer = {"error": f"delete-key: {e}"}
        elif words[0] in ("leave-org", "close-account"):
            # An account that leaves the organization, or is closed (SUSPENDED).
            org = organizations_client(endpoint)
            if words[0] == "leave-org":
                org.remove_account_from_organization(AccountId=words[1])
            else:
                org.close_account(AccountId=words[1])
            answer = {"ok": words[1]}
        elif words[0] == "join-org":
            # A new member with one user and one key: `join-org NAME`.
            account_id = organizations_client(endpoint).create_account(
                Email=f"{words[1]}@example.com", AccountName=words[1]
            )["CreateAccountStatus"]["AccountId"]
            iam = iam_client(endpoint, assume_member_role(endpoint, account_id))
            users, keys = seed_users(iam, account_id, [("newcomer", "/", {}, [0])], utc_now())
            answer = {"ok": {"account_id": account_id, "name": words[1], "users": users, "keys": keys}}
        elif words[0] == "fault":
            answer = fault_command(proxy, words[1:])
        elif words[0] == "stats":
            answer = {"ok": proxy.stats()}
        elif words[0] == "quit":
            break
        else:
            answer = {"error": f"unknown command {words[0]!r}"}
        print(json.dumps(answer), flush=True)
    proxy.shutdown()
    server.stop()


if __name__ == "__main__":
    main()
