#!/usr/bin/env bash
# Installs what the test suite needs and is missing: Prometheus and promtool
# (Debian package prometheus), Alertmanager (prometheus-alertmanager), headless
# Chromium and pdftoppm for the HTML report test (chromium, poppler-utils), the
# moto IAM server (PyPI moto[server]), Node.js (Debian nodejs, npm) and, for
# the dashboard's type check (scripts/typecheck-dashboard.mjs), Grafana's
# schema package and TypeScript from the npm registry, pinned, into
# target/test-deps/grafana-schema (GRAFANA_SCHEMA_DIR): never into a
# node_modules of the source tree.
# Idempotent: a machine that has them all is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

NPM_PACKAGES=("@grafana/schema@11.6.16" "typescript@5.9.3")
GRAFANA_SCHEMA_DIR="${GRAFANA_SCHEMA_DIR:-target/test-deps/grafana-schema}"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! python3 -c 'import moto.server, boto3' >/dev/null 2>&1; then
    echo "installing moto[server] from PyPI"
    python3 -m pip install --quiet "moto[server]==5.2.1"
fi

stamp="$GRAFANA_SCHEMA_DIR/.packages"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${NPM_PACKAGES[*]}" ]; then
    echo "installing ${NPM_PACKAGES[*]} from npm into $GRAFANA_SCHEMA_DIR"
    rm -rf "$GRAFANA_SCHEMA_DIR"
    mkdir -p "$GRAFANA_SCHEMA_DIR"
    echo '{"private": true}' >"$GRAFANA_SCHEMA_DIR/package.json"
    npm install --prefix "$GRAFANA_SCHEMA_DIR" --save-exact --no-audit --no-fund --loglevel=error "${NPM_PACKAGES[@]}"
    echo "${NPM_PACKAGES[*]}" >"$stamp"
fi

promtool --version | head -1
chromium --version
python3 -c 'import moto; print("moto", moto.__version__)'
node --version
