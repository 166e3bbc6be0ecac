#!/usr/bin/env bash
# Builds what a CUDA machine needs to train the models at full size, into
# gpu-bundle/ (git-ignored): the release trainer binary (it links torch from
# the machine's own PyTorch 2.11 through LD_LIBRARY_PATH) and, for the speed
# comparison, the PyTorch reference models (kept outside the repository; pass
# its path as the first argument, or nothing to measure tch alone).
#
# Then run scripts/gpu/train.sh on the CUDA machine with gpu-bundle/ beside
# the repository (for the team's device tool: carry ["gpu-bundle"]). The
# binary is stripped: with its debug info it is 314 MB, over the 64 MiB the
# device tool carries with the working tree; stripped, about 41 MB.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/setup.sh"
# shellcheck source=../env.sh
source "$here/env.sh"
cd "$NEUROSCREEN_ROOT"
reference="${1:-}"
# Both packages, as scripts/benchmarks.sh builds them: one set of features,
# so neither build undoes the other's.
cargo build --release -p firmware -p trainer
target="${CARGO_TARGET_DIR:-$NEUROSCREEN_ROOT/target}"
mkdir -p gpu-bundle
strip -o gpu-bundle/neuroscreen-train "$target/release/neuroscreen-train"
if [ -z "$reference" ]; then
    echo "prepare: no reference file given; the speed comparison will run tch alone" >&2
elif [ -f "$reference" ]; then
    cp "$reference" gpu-bundle/torch_reference.py
else
    echo "prepare: $reference not found; the speed comparison will run tch alone" >&2
fi
ls -l gpu-bundle
du -sh gpu-bundle
