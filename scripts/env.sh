# Sourced by the other scripts: where libtorch comes from and how tch finds it.
# shellcheck shell=bash
NEUROSCREEN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export NEUROSCREEN_ROOT
export PATH="$NEUROSCREEN_ROOT/.venv/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export PYTHON_SYS_EXECUTABLE="$NEUROSCREEN_ROOT/.venv/bin/python3"
