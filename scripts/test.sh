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
cargo build -p firmware --target aarch64-unknown-linux-gnu
export NEUROSCREEN_REQUIRE_AARCH64=1
cargo test --workspace --all-targets "$@"

# A short smoke of each fuzz target from its committed corpus (the long runs
# and their figures: README, Reliability). libFuzzer needs -Z flags only for
# sanitizers: without one (`--sanitizer none`) the stable toolchain builds it,
# RUSTC_BOOTSTRAP covering cargo-fuzz's remaining nightly checks. New inputs
# go to a temporary folder, never into the committed corpus.
fuzz_work="$(mktemp -d)"
trap 'rm -rf "$fuzz_work"' EXIT
for target in $(cargo fuzz list --fuzz-dir fuzz); do
    mkdir -p "$fuzz_work/$target"
    RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz --sanitizer none "$target" \
        "$fuzz_work/$target" "fuzz/corpus/$target" -- \
        -max_total_time="${NEUROSCREEN_FUZZ_SECONDS:-15}" -rss_limit_mb=2048 -print_final_stats=1
done
