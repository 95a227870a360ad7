#!/usr/bin/env bash
# Install Debian's headless-capable Chromium for the transparency-page tests (eval/browser.py).
# Idempotent: does nothing when `chromium` is already installed; runs `apt-get update` only when the
# package is missing, so a warm machine never touches the network. Run as root (Debian 12).
set -euo pipefail

packages=(chromium fonts-dejavu-core)

missing=()
for p in "${packages[@]}"; do
    # dpkg-query exits 0 for removed-but-configured packages too, so check the status word.
    if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != "installed" ]]; then
        missing+=("$p")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "chromium install: already installed (${packages[*]})"
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    echo "chromium install: missing ${missing[*]}; run this script as root (sudo $0)" >&2
    exit 1
fi

echo "chromium install: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
/usr/bin/chromium --version
