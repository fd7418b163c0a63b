#!/usr/bin/env bash
# Checks Cargo.lock against the RustSec advisory database, offline, with the
# [advisories] policy of deny.toml: a crate with a known vulnerability, an
# unsound crate or an unmaintained crate fails the check; a yanked crate is
# reported without failing (deny.toml says why).
#
#   scripts/check-advisories.sh              the check (make deny, .ci/run)
#   scripts/check-advisories.sh --self-test  shows that the check fails, with
#                                            a clear message, on a known
#                                            vulnerability and on a missing
#                                            snapshot (.ci/run)
#
# The machines that build and test this project cannot reach the git host the
# database lives on, so the check reads a snapshot of it: ../shared/advisory-db
# beside the repository (ADVISORY_DB to use another copy), with its commit and
# date in ../shared/advisory-db.SNAPSHOT. That folder may be read-only (CI has
# a copy without write bits), so it is copied into target/advisories/ and made
# there the one-commit git repository that cargo-deny 0.20 opens; neither the
# snapshot nor the source tree is written to. The copy's commit and HEAD carry
# the snapshot's date, so deny.toml's maximum-db-staleness is counted from the
# newest advisory the snapshot knows, not from the time of the copy.
#
# The self-test pins slab 0.4.10 in a scratch copy of the project under
# target/advisories/self-test/, so cargo downloads that crate from crates.io
# the first time.
#
# Where the database can be fetched, the same check online is:
#   cargo deny check advisories
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

ADVISORY_DB="${ADVISORY_DB:-$ROOT/../shared/advisory-db}"
ADVISORY_DB="${ADVISORY_DB%/}"
SNAPSHOT_INFO="$ADVISORY_DB.SNAPSHOT"
OUT="$ROOT/target/advisories"
# Where cargo-deny 0.20 looks for its default database
# (https://github.com/RustSec/advisory-db) under db-path: the URL's last
# segment and a hash of the URL (docs/development.md, Dependencies).
DB_NAME=advisory-db-3157b0e258782691

# The self-test's known vulnerability: slab 0.4.10, the one version affected
# by RUSTSEC-2025-0047 (out-of-bounds access in Slab::get_disjoint_mut;
# patched in 0.4.11, and 0.4.10 is yanked). slab has no dependencies, so
# pinning it in a scratch copy of Cargo.lock changes nothing else. The
# checksum is crates.io's for slab 0.4.10.
VULN_CRATE=slab
VULN_VERSION=0.4.10
VULN_CHECKSUM=04dc19736151f35336d325007ac991178d504a119863a2fcb3758cdb5e52c50d
VULN_ID=RUSTSEC-2025-0047

say() { printf 'check-advisories: %s\n' "$*"; }
# The first argument after "FAIL:", each further one on a line of its own.
fail() {
  printf 'check-advisories: FAIL: %s\n' "$1" >&2
  shift
  [ "$#" -eq 0 ] || printf '%s\n' "$@" >&2
  exit 1
}

# The snapshot and its date, or a failure that says where the snapshot comes
# from: without it no advisory check can run, and that is not a pass.
SNAPSHOT_DATE=
require_snapshot() {
  if [ ! -d "$ADVISORY_DB/crates" ]; then
    fail "no RustSec advisory database snapshot at $ADVISORY_DB" \
      "  By default the snapshot is ../shared/advisory-db beside the repository (with" \
      "  ../shared/advisory-db.SNAPSHOT: its commit and date), where this project's" \
      "  machines and CI keep one. Elsewhere, make one from a checkout of" \
      "  https://github.com/rustsec/advisory-db and set ADVISORY_DB to it, as" \
      "  docs/development.md (Dependencies) says, or run the check online:" \
      "  cargo deny check advisories" \
      "  No advisory check ran."
  fi
  [ -f "$SNAPSHOT_INFO" ] ||
    fail "$SNAPSHOT_INFO is missing: it gives the snapshot's commit and date (lines 'commit ...' and 'date ...')"
  local commit
  commit="$(sed -n 's/^commit //p' "$SNAPSHOT_INFO")"
  SNAPSHOT_DATE="$(sed -n 's/^date //p' "$SNAPSHOT_INFO")"
  if [ -z "$SNAPSHOT_DATE" ] || ! date -d "$SNAPSHOT_DATE" >/dev/null 2>&1; then
    fail "$SNAPSHOT_INFO has no readable 'date ...' line: ${SNAPSHOT_DATE:-none}"
  fi
  local age=$((($(date +%s) - $(date -d "$SNAPSHOT_DATE" +%s)) / 86400))
  say "RustSec advisory database snapshot of $SNAPSHOT_DATE ($age days old), commit ${commit:-unknown}"
  say "  from $(cd "$ADVISORY_DB" && pwd)"
}

# Every ignored advisory in deny.toml gives its reason and a date to look at it
# again ("look again YYYY-MM-DD"); past that date the check fails until someone
# looks again and either drops the ignore or moves the date.
check_ignores() {
  python3 - "$ROOT/deny.toml" <<'EOF'
import datetime, re, sys, tomllib

with open(sys.argv[1], "rb") as f:
    ignores = tomllib.load(f).get("advisories", {}).get("ignore", [])
today = datetime.date.today()
problems = []
for entry in ignores:
    if not isinstance(entry, dict) or not entry.get("reason"):
        problems.append(f"{entry!r}: give it as {{ id = \"RUSTSEC-...\", reason = \"... look again YYYY-MM-DD\" }}")
        continue
    name = entry.get("id") or entry.get("crate") or repr(entry)
    found = re.search(r"look again (\d{4}-\d{2}-\d{2})", entry["reason"], re.IGNORECASE)
    if not found:
        problems.append(f"{name}: its reason has no 'look again YYYY-MM-DD' date")
    elif datetime.date.fromisoformat(found.group(1)) < today:
        problems.append(f"{name}: was to be looked at again by {found.group(1)}")
for problem in problems:
    print(f"check-advisories: FAIL: deny.toml [advisories] ignore: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
}

# target/advisories/db/advisory-db-…: a writable one-commit git copy of the
# snapshot dated as the snapshot, and target/advisories/deny.toml: deny.toml
# with db-path pointing there.
prepare_db() {
  local db="$OUT/db/$DB_NAME"
  rm -rf "$OUT/db"
  mkdir -p "$OUT/db"
  cp -RL "$ADVISORY_DB" "$db"
  chmod -R u+w "$db"
  rm -rf "$db/.git"
  (
    unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY
    export GIT_AUTHOR_DATE="$SNAPSHOT_DATE" GIT_COMMITTER_DATE="$SNAPSHOT_DATE"
    git_in_db() {
      git -C "$db" -c user.name=check-advisories -c user.email=check-advisories@localhost \
        -c commit.gpgsign=false -c core.hooksPath=/dev/null "$@"
    }
    git_in_db init -q
    git_in_db add -A
    git_in_db commit -qm "RustSec advisory database snapshot of $SNAPSHOT_DATE"
  ) || fail "could not make the snapshot copy in $db a git repository"
  # cargo-deny takes the newer of the HEAD commit's time and HEAD's mtime.
  touch -d "$SNAPSHOT_DATE" "$db/.git/HEAD"

  # The marker line in deny.toml's [advisories] becomes db-path, in place, so
  # that cargo-deny's diagnostics give deny.toml's own line numbers.
  local marker='# db-path: set by scripts/check-advisories.sh'
  grep -q '^[[:space:]]*db-path' "$ROOT/deny.toml" &&
    fail "deny.toml sets db-path; leave it to this script (it points cargo-deny at the copy under target/)"
  awk -v marker="$marker" -v path="$OUT/db" '
    /^\[/ { section = $0 }
    $0 == marker && section == "[advisories]" { $0 = "db-path = \"" path "\""; found = 1 }
    { print }
    END { if (!found) exit 3 }
  ' "$ROOT/deny.toml" >"$OUT/deny.toml" ||
    fail "deny.toml's [advisories] section lacks the line '$marker' that this script replaces with db-path"
}

# cargo-deny's advisories check of the package in $1 (Cargo.toml, Cargo.lock),
# its output in $2. Extra cargo metadata arguments follow.
run_deny() {
  local dir="$1" log="$2"
  shift 2
  cargo metadata --format-version 1 --manifest-path "$dir/Cargo.toml" "$@" >"$OUT/metadata.json" ||
    fail "cargo metadata failed for $dir/Cargo.toml (above)"
  cargo deny --offline --config "$OUT/deny.toml" --metadata-path "$OUT/metadata.json" \
    --manifest-path "$dir/Cargo.toml" check advisories >"$log" 2>&1
}

# The tools this script runs, and a note when cargo-deny is not the 0.20 the
# database layout (DB_NAME) was checked with.
require_tools() {
  local tool
  for tool in cargo git python3; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool is needed and not installed"
  done
  local version
  version="$(cargo deny --version 2>/dev/null)" ||
    fail "cargo-deny is not installed: cargo install --locked cargo-deny --version '~0.20'"
  case "$version" in
    "cargo-deny 0.20."*) ;;
    *) say "note: $version; this script lays out the database as cargo-deny 0.20 reads it" ;;
  esac
}

check() {
  require_snapshot
  require_tools
  mkdir -p "$OUT"
  check_ignores
  prepare_db
  local log="$OUT/check.log" status=0
  run_deny "$ROOT" "$log" || status=$?
  cat "$log"
  if grep -q 'repository is stale' "$log"; then
    fail "the RustSec snapshot of $SNAPSHOT_DATE is older than deny.toml's maximum-db-staleness." \
      "  Refresh the snapshot (and its .SNAPSHOT file) from https://github.com/rustsec/advisory-db" \
      "  (docs/development.md, Dependencies)," \
      "  or run the check online: cargo deny check advisories"
  elif [ "$status" -ne 0 ]; then
    fail "cargo deny check advisories (above) exited $status against the RustSec snapshot of $SNAPSHOT_DATE." \
      "  For a vulnerable, unsound or unmaintained crate: update it (cargo update -p CRATE) or replace it;" \
      "  if it cannot affect this exporter, ignore its advisory in deny.toml's [advisories] ignore, with" \
      "  the reason and a 'look again YYYY-MM-DD' date."
  fi
  say "ok: no crate in Cargo.lock has a vulnerability, unsound or unmaintained advisory in the RustSec snapshot of $SNAPSHOT_DATE"
}

self_test() {
  local scratch="$OUT/self-test" out status

  # 1. Without the snapshot, the check fails and says where it comes from.
  status=0
  out="$(ADVISORY_DB="$scratch/no-such-snapshot" "$ROOT/scripts/check-advisories.sh" 2>&1)" || status=$?
  [ "$status" -ne 0 ] || fail "self-test: the check passed without a snapshot:" "$out"
  grep -q 'shared/advisory-db' <<<"$out" ||
    fail "self-test: without a snapshot the check failed without saying where the snapshot comes from:" "$out"
  say "self-test ok: without a snapshot the check fails: $(head -1 <<<"$out")"

  # 2. A known vulnerability in a scratch copy of Cargo.lock fails the check.
  require_tools
  require_snapshot
  check_ignores
  prepare_db
  local project="$scratch/project"
  rm -rf "$project"
  mkdir -p "$project"
  tar -C "$ROOT" --exclude=./target --exclude=./.git --exclude=./fuzz --exclude=./bench-results -cf - . |
    tar -C "$project" -xf -
  # Its own workspace, whatever the directories above it are.
  grep -q '^\[workspace\]' "$project/Cargo.toml" || printf '\n[workspace]\n' >>"$project/Cargo.toml"
  awk -v name="$VULN_CRATE" -v version="$VULN_VERSION" -v sum="$VULN_CHECKSUM" '
    /^\[\[package\]\]/ { pinned = 0 }
    $0 == "name = \"" name "\"" { pinned = 1; found++ }
    pinned && /^version = / { $0 = "version = \"" version "\"" }
    pinned && /^checksum = / { $0 = "checksum = \"" sum "\"" }
    { print }
    END { if (found != 1) exit 3 }
  ' "$ROOT/Cargo.lock" >"$project/Cargo.lock" ||
    fail "self-test: Cargo.lock no longer has exactly one $VULN_CRATE package to pin at $VULN_VERSION;" \
      "  choose another crate of the tree with a known vulnerable version for VULN_* in this script"
  local log="$scratch/vulnerable.log"
  status=0
  run_deny "$project" "$log" --locked || status=$?
  if [ "$status" -eq 0 ] || ! grep -q "$VULN_ID" "$log"; then
    cat "$log"
    fail "self-test: with $VULN_CRATE $VULN_VERSION ($VULN_ID) in a scratch Cargo.lock the check" \
      "  exited $status and did not report $VULN_ID (output above): it would not catch a vulnerable crate"
  fi
  say "self-test ok: with $VULN_CRATE $VULN_VERSION in a scratch copy of Cargo.lock the check fails (exit $status):"
  grep -E "^(error|warning)\[|ID: |advisories (ok|FAILED)" "$log" | sed 's/^/    /'
}

case "${1:-}" in
  "") check ;;
  --self-test) self_test ;;
  *)
    echo "usage: scripts/check-advisories.sh [--self-test]" >&2
    exit 2
    ;;
esac
