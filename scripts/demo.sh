#!/usr/bin/env bash
# The appliance's main job on the shipped data. Until the trained models ship
# (export issue), this runs the parts that exist: the shipped sample slices
# through the appliance's intake and preprocessing, and a small phantom
# cohort from the trainer, whose montage it writes for a look.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/setup.sh"
# shellcheck source=env.sh
source "$here/env.sh"
cd "$NEUROSCREEN_ROOT"
cargo build -q --release -p firmware -p trainer
bin="${CARGO_TARGET_DIR:-$NEUROSCREEN_ROOT/target}/release"
out="$NEUROSCREEN_ROOT/out/demo"
mkdir -p "$out"
echo "== neuroscreen inspect models/samples"
"$bin/neuroscreen" inspect models/samples
echo "== neuroscreen-train phantoms (5 patients) -> $out"
"$bin/neuroscreen-train" phantoms --out "$out/phantoms" --patients 5 --seed 1
"$bin/neuroscreen-train" montage --out "$out/phantom_montage.png" --rows 4
