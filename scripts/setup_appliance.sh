#!/usr/bin/env bash
# What the appliance alone needs on a fresh Debian 12 with Rust: libclang
# (bindgen generates the V4L2 bindings at build time). No Python, no torch,
# no cargo-fuzz: those are the trainer's and the tests' (scripts/setup.sh,
# which passes its own apt packages as arguments to install them here too).
# Idempotent: when everything is there it checks and exits at once.
set -euo pipefail
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup first" >&2; exit 1; }
apt_packages=(libclang-dev "$@")
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing apt packages: ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
