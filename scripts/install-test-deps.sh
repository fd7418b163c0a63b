#!/usr/bin/env bash
# Installs what the test suite needs and is missing: Prometheus and promtool
# (Debian package prometheus), Alertmanager (prometheus-alertmanager), headless
# Chromium and pdftoppm for the HTML report test (chromium, poppler-utils) and
# the moto IAM server (PyPI moto[server]).
# Idempotent: a machine that has both is left alone.
set -euo pipefail

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
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

promtool --version | head -1
chromium --version
python3 -c 'import moto; print("moto", moto.__version__)'
