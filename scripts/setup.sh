#!/usr/bin/env bash
# Installs what neuroscreen's build and tests need on a fresh Debian 12
# machine. Idempotent: when everything is there it checks and exits in a
# second or two.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

# The cross gcc, its sysroot and qemu-user build and run the board's
# (aarch64) binary here.
apt_packages=(libclang-dev pkg-config binutils python3-venv
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
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

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup first" >&2; exit 1; }
board_target=aarch64-unknown-linux-gnu
if ! rustup target list --installed 2>/dev/null | grep -qx "$board_target"; then
    echo "setup: adding the Rust target $board_target"
    rustup target add "$board_target"
fi

venv="$root/.venv"
stamp="$venv/.neuroscreen-requirements"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python3" ]; then
    echo "setup: creating $venv"
    python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing Python requirements (torch is a ~4 GB CUDA wheel; several minutes)"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
    echo "$want" > "$stamp"
fi

# cargo-fuzz runs the fuzz targets' smoke in scripts/test.sh (on the stable
# toolchain; see there). Pinned; installed once.
cargo_fuzz_version=0.13.1
if ! cargo fuzz --version 2>/dev/null | grep -qx "cargo-fuzz $cargo_fuzz_version"; then
    echo "setup: installing cargo-fuzz $cargo_fuzz_version"
    cargo install --locked cargo-fuzz --version "$cargo_fuzz_version"
fi
