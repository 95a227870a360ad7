#!/usr/bin/env bash
# Install the Slurm and MUNGE packages for the local test cluster (Debian 12, run as root).
# Idempotent: does nothing when every package is already installed; runs `apt-get update` only
# when something is missing, so a warm machine never touches the network.
set -euo pipefail

packages=(slurmctld slurmd slurm-client munge)

missing=()
for p in "${packages[@]}"; do
    # dpkg-query exits 0 for removed-but-configured packages too, so check the status word.
    if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != "installed" ]]; then
        missing+=("$p")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "slurm install: already installed (${packages[*]})"
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    echo "slurm install: missing ${missing[*]}; run this script as root (sudo $0)" >&2
    exit 1
fi

echo "slurm install: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
