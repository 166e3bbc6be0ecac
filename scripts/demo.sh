#!/usr/bin/env bash
# The appliance's main job on the shipped data: the shipped models over the
# shipped sample slices (models/samples), results, masks, overlays and a
# screen snapshot per slice in out/demo/, and a table of verdicts beside the
# samples' known truth.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/setup.sh"
# shellcheck source=env.sh
source "$here/env.sh"
cd "$NEUROSCREEN_ROOT"
cargo build -q --release -p firmware
"${CARGO_TARGET_DIR:-$NEUROSCREEN_ROOT/target}/release/neuroscreen" demo --out out/demo "$@"
