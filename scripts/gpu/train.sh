#!/usr/bin/env bash
# Runs on a CUDA machine that has PyTorch 2.11 (no Rust needed): trains both
# models at full size on phantoms with the trainer from gpu-bundle/ (made by
# scripts/gpu/prepare.sh) and writes everything to $OUT (default out/gpu):
#   info.txt, speed.txt/speed.json  tch vs PyTorch images/s on this GPU
#   runs/<model>/                   config, metrics.jsonl, checkpoints, eval report
#   log.txt                         the whole console output
# Files over 15 MiB (the ResNet-50 checkpoints) are split into .partNN pieces
# for tools that bring back limited file sizes; `cat f.part* > f` rejoins them.
# Export (ONNX, int8, manifest) then runs on the CPU machine, after
# regenerating the same phantoms there (neuroscreen-train phantoms --out
# data/gpu-phantoms --patients N --seed 0):
#   neuroscreen-train export --segmenter OUT/runs/resunet --filter OUT/runs/filter --trained-on "<GPU>"
#
# Knobs (environment): DEVICE (cuda; cpu for a dry run), PATIENTS (110),
# SEG_EPOCHS (150), FILTER_EPOCHS (40), FILTER_MODEL (resnet50), BATCH (16),
# WORKERS (8), SIZE (256), SPEED (1 to measure, 0 to skip), PYTHON (python3),
# EXPERIMENT (1 to run the seed's experiment too), EXP_EPOCHS (30).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT="${OUT:-out/gpu}"
bin="${BIN:-gpu-bundle/neuroscreen-train}"
python="${PYTHON:-python3}"
device="${DEVICE:-cuda}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
torch_lib="$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "== $(date -u +%FT%TZ) on $(hostname); torch lib $torch_lib"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$bin" info | tee "$OUT/info.txt"

if [ "${SPEED:-1}" = 1 ]; then
    peer=(--python "$python")
    if [ -f gpu-bundle/torch_reference.py ]; then
        peer+=(--reference gpu-bundle/torch_reference.py)
    else
        peer+=(--no-peer)
    fi
    speed_size=()
    [ "$device" = cpu ] && speed_size=(--batch 2 --steps 1 --warmup 1 --rounds 1)
    "$bin" speed --device "$device" "${peer[@]}" "${speed_size[@]}" --json "$OUT/speed.json" | tee "$OUT/speed.txt"
fi

# A relative data path, recorded in each run's config: on the CPU machine the
# same command (same seed) regenerates the same slices at the same place for
# export's calibration and held-out checks.
data="data/gpu-phantoms"
start=$(date +%s)
rm -rf "$data"
"$bin" phantoms --out "$data" --patients "${PATIENTS:-110}" --seed 0
echo "phantoms: $(( $(date +%s) - start )) s"

fit() {
    local name="$1"; shift
    local t0; t0=$(date +%s)
    "$bin" fit --data "$data" --out "$OUT/runs/$name" --device "$device" \
        --batch "${BATCH:-16}" --workers "${WORKERS:-8}" --input-size "${SIZE:-256}" "$@"
    echo "fit $name: $(( $(date +%s) - t0 )) s"
    "$bin" eval --run "$OUT/runs/$name"
}
fit resunet --model resunet --loss tversky --epochs "${SEG_EPOCHS:-150}"
fit filter --model "${FILTER_MODEL:-resnet50}" --epochs "${FILTER_EPOCHS:-40}"

# The seed's experiment (docs/RESULTS.md): 2 architectures x 4 losses x 3
# seeds on the same phantoms, gated by the filter just trained.
if [ "${EXPERIMENT:-0}" = 1 ]; then
    t0=$(date +%s)
    "$bin" experiment --data "$data" --out "$OUT/experiment" --doc "$OUT/RESULTS.md" \
        --input-size "${SIZE:-256}" --epochs "${EXP_EPOCHS:-30}" --patience 10 \
        --filter "$OUT/runs/filter" --label "GPU configuration: ${EXP_EPOCHS:-30} epochs at most"
    rm -rf "$OUT/experiment/runs"   # keep results.jsonl, not 24 checkpoints
    echo "experiment: $(( $(date +%s) - t0 )) s"
fi

# Split what a size-limited transfer would refuse.
find "$OUT" -type f -size +15M | while read -r f; do
    split -b 15M -d -a 2 "$f" "$f.part"
    rm "$f"
    echo "split $f into $(ls "$f".part* | wc -l) parts"
done
echo "== done in $(( $(date +%s) - start )) s; results in $OUT"
