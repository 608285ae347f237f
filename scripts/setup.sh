#!/usr/bin/env bash
# Installs what building and testing need on Debian 12 (run as root, or with sudo available):
# the C libraries the package links, pkg-config, and Python's jsonschema for the schema checks.
# Idempotent: installs only what is missing, and refreshes the apt lists only when it must install.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need=()
for pkg in libopenblas-dev librdkafka-dev pkg-config; do
  # Installed, not merely known (a removed package keeps a "deinstall … config-files" entry).
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
done
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-pip)
apt_install() {
  echo "setup: installing $*" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
if [ ${#need[@]} -gt 0 ]; then apt_install "${need[@]}"; fi

# jsonschema for whichever python3 is first on PATH (pip for a pyenv/venv Python; Debian's
# package for the system one, whose pip refuses to install outside a venv).
if ! python3 -c "import jsonschema" 2>/dev/null; then
  python3 -m pip install --quiet jsonschema 2>/dev/null || apt_install python3-jsonschema
fi

if ! command -v swift >/dev/null 2>&1 && [ ! -x /opt/swift/usr/bin/swift ]; then
  echo "setup: Swift 6 not found (on PATH or in /opt/swift/usr/bin): install it from swift.org first" >&2
  exit 1
fi
