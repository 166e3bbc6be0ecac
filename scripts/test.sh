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
cargo test --workspace --all-targets "$@"
