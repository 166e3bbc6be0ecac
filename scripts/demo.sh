#!/usr/bin/env bash
# The appliance's main job on the shipped data: the shipped models over the
# shipped sample slices (models/samples), results, masks, overlays and a
# screen snapshot per slice in out/demo/, and a table of verdicts beside the
# samples' known truth.
#
# Only what the appliance needs is installed (scripts/setup_appliance.sh):
# no Python venv, no torch, no cargo-fuzz; the tests install those.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
"$here/setup_appliance.sh"
cd "$root"
cargo build -q --release -p firmware --bin neuroscreen
"${CARGO_TARGET_DIR:-$root/target}/release/neuroscreen" demo --out out/demo "$@"
