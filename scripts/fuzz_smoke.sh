#!/usr/bin/env bash
# A short run of every fuzz target from its committed corpus (fuzz/corpus/);
# any crash, panic, timeout or out-of-memory fails it, and libFuzzer leaves
# the input in fuzz/artifacts/<target>/. scripts/test.sh runs it unless
# NEUROSCREEN_FUZZ_SMOKE=0; NEUROSCREEN_FUZZ_SECONDS sets the time per target.
#
# Built as the appliance is built: release, without debug assertions (`-O`),
# so the fuzzers see the code the board runs (fuzz/known-crashes/README.md
# says why that matters for the JPEG 2000 decoder). Coverage instrumentation
# but no sanitizer: `--sanitizer none` passes no -Z flag, so the stable
# toolchain builds it and CI needs no nightly. docs/RELIABILITY.md has
# the cold build time.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
seconds="${NEUROSCREEN_FUZZ_SECONDS:-15}"

# An explicit target dir: a CARGO_TARGET_DIR meant for the main workspace
# would otherwise get these differently-flagged builds of the same crates.
build=(--fuzz-dir fuzz --target-dir fuzz/target -O --sanitizer none)
# No debug info (cargo-fuzz asks for line tables; RUSTFLAGS come after and
# win): each target links all of tract and was 260 MB with it, and CI ran
# out of disk building them. A crash still names the functions on its stack.
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-Cdebuginfo=0"
start=$SECONDS
cargo fuzz build "${build[@]}"
echo "fuzz smoke: built in $((SECONDS - start)) s"

# libFuzzer adds what it finds to the first corpus folder: a scratch one,
# so the committed seeds stay as they are.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for target in $(cargo fuzz list --fuzz-dir fuzz); do
    mkdir -p "$work/$target"
    echo "fuzz smoke: $target for $seconds s"
    if ! cargo fuzz run "${build[@]}" "$target" "$work/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
        -print_final_stats=1; then
        failed+=("$target")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz smoke: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz smoke: every target ran $seconds s without a crash"
