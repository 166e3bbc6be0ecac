# Sourced by the other scripts: where libtorch comes from and how tch finds it.
# shellcheck shell=bash
NEUROSCREEN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export NEUROSCREEN_ROOT
export PATH="$NEUROSCREEN_ROOT/.venv/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
export PYTHON_SYS_EXECUTABLE="$NEUROSCREEN_ROOT/.venv/bin/python3"
# Test binaries of crates that link the trainer (tests/) carry no RUNPATH of
# their own, so point the loader at torch's libraries too.
for torch_lib in "$NEUROSCREEN_ROOT"/.venv/lib/python3*/site-packages/torch/lib; do
    [ -d "$torch_lib" ] && export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
