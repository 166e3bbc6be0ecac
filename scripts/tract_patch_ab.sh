#!/usr/bin/env bash
# Measures a patch to tract-core without carrying it in the build: copies the
# tract-core release the workspace pins out of cargo's registry into a scratch
# folder, applies PATCH there, builds `neuroscreen` against it into its own
# target folder, then checks that the patched kernel gives the same results
# and times it against tract's own, in the same binary.
#
# A patch under scripts/tract-patches/ puts its change behind an environment
# variable (VAR=1 on, unset off), so one binary runs both sides:
#   - the same results: `neuroscreen scan` over the shipped samples both ways,
#     every record and every mask and overlay compared;
#   - the speed: `neuroscreen bench --kernels --no-ort` alternated off / on,
#     ROUNDS times each, on an otherwise idle machine.
#
# Usage: scripts/tract_patch_ab.sh PATCH VAR [ROUNDS]
#   e.g. scripts/tract_patch_ab.sh scripts/tract-patches/lazy-im2col-contiguous-panels.patch \
#            NEUROSCREEN_LAZY_CONTIGUOUS 2
# Takes ~15 minutes the first time (tract and everything above it rebuilt).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"
cd "$NEUROSCREEN_ROOT"
patch_file="$(realpath "${1:?usage: tract_patch_ab.sh PATCH VAR [ROUNDS]}")"
var="${2:?usage: tract_patch_ab.sh PATCH VAR [ROUNDS]}"
rounds="${3:-2}"
version="$(cargo metadata --format-version 1 --locked |
    python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="tract-core"))')"
cargo fetch --locked -q
registry="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/tract-core-"$version" | head -1)"
[ -d "$registry" ] || { echo "tract-core $version is not in cargo's registry" >&2; exit 2; }
scratch="${TRACT_PATCH_DIR:-$NEUROSCREEN_ROOT/target/tract-patch}"
rm -rf "$scratch/tract-core"
mkdir -p "$scratch"
cp -r "$registry" "$scratch/tract-core"
patch -s -d "$scratch/tract-core" -p1 < "$patch_file"
echo "tract-core $version patched with $(basename "$patch_file") in $scratch/tract-core" >&2
# A [patch] given on the command line rewrites Cargo.lock to the scratch
# copy: the repository's lock file is put back whatever happens.
cp Cargo.lock "$scratch/Cargo.lock.orig"
trap 'cp "$scratch/Cargo.lock.orig" Cargo.lock' EXIT
CARGO_TARGET_DIR="$scratch/target" cargo build -q --release -p firmware --bin neuroscreen \
    --config "patch.crates-io.tract-core.path=\"$scratch/tract-core\""
cp "$scratch/Cargo.lock.orig" Cargo.lock
bin="$scratch/target/release/neuroscreen"

# The lock file is back already; from here on only the results go.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
side() { # off | on: the patch's switch for what runs next
    if [ "$1" = on ]; then export "$var=1"; else unset "$var"; fi
}
for s in off on; do
    side "$s"
    "$bin" scan --out "$work/$s" models/samples > /dev/null 2>&1
done
side off
# Times, sequence stamps and the results folder differ from run to run;
# everything else must not.
strip() { python3 -c '
import json, sys
for line in open(sys.argv[1] + "/results.jsonl"):
    r = json.loads(line.replace(sys.argv[1], "RESULTS"))
    for k in ("latency_ms", "finished_at", "running_s", "seq"):
        r.pop(k, None)
    print(json.dumps(r, sort_keys=True))' "$1"; }
if ! diff <(strip "$work/off") <(strip "$work/on") > /dev/null; then
    echo "the patched kernel changed the results on the samples" >&2
    exit 1
fi
for f in "$work"/off/*.png; do
    cmp -s "$f" "$work/on/$(basename "$f")" || { echo "$(basename "$f") differs" >&2; exit 1; }
done
echo "same results both ways: $(wc -l < "$work/off/results.jsonl") samples, every record, mask and overlay"

for round in $(seq "$rounds"); do
    for s in off on; do
        side "$s"
        echo "== $var $s, round $round"
        "$bin" bench --kernels --runs 30 --threads 1 --no-ort 2>/dev/null |
            grep -E "^(model|segmenter|filter)|whole model"
    done
done
