#!/usr/bin/env bash
# Runs on a CUDA machine that has PyTorch 2.11 (no Rust needed): measures the
# trainer's images/s beside PyTorch, trains the segmenter and two filters at
# full size on phantoms with the trainer from gpu-bundle/ (made by
# scripts/gpu/prepare.sh), scores each on its held-out patients, and packs
# what a size-limited transfer brings back into $OUT (default out/gpu):
#   log.txt              the whole console output
#   summary.txt          the figures to read first: images/s, each run's end
#                        and held-out scores, what was skipped and why
#   speed.json           tch vs PyTorch images/s on this GPU
#   results.tar.gz.partNN  runs/<name>/ (config, metrics, best checkpoint when
#                        under 15 MiB, eval report with plots), the
#                        experiment's results; `cat results.tar.gz.part* |
#                        tar xz` rejoins them
# At most 8 files of at most 15 MiB each: the team's device tool brings back
# 8 files of 16 MiB, 64 MiB in all, no deeper than two folders. Checkpoints
# over 15 MiB (ResNet-50: 96 MB) stay on the machine; their scores come back.
#
# Time: the whole run keeps within BUDGET_S seconds (the device tool gives a
# command 10 minutes and a session 15, start-up included). Each stage gets
# what is left; a fit cut short keeps its best checkpoint so far and is
# still scored; stages that no longer fit are skipped and said so.
#
# Export (ONNX, int8, manifest) then runs on the CPU machine, after
# regenerating the same phantoms there (neuroscreen-train phantoms --out
# data/gpu-phantoms --patients N --seed 0 --contrast mixed):
#   neuroscreen-train export --segmenter runs/resunet --filter runs/r18w16 --trained-on "<GPU>"
#
# Real data: the shipped set learnt from real scans on CPU (docs/TRAINING.md,
# "The shipped set"); this script still trains on phantoms, because our data
# folder (LGG 87 MB and Figshare 59 MB of JPEG/PNG) does not fit the device
# tool's 64 MiB carry beside the 41 MB trainer. A GPU run on the same data
# needs a compact copy made on the CPU machine first (not written yet).
#
# With the team's device tool: carry ["gpu-bundle"], command
# `bash scripts/gpu/train.sh` (OUT is the tool's $OUT there), timeout_s about
# BUDGET_S + 60.
#
# Knobs (environment): DEVICE (cuda; cpu for a dry run), BUDGET_S (420),
# PATIENTS (110), SIZE (256), SEG_EPOCHS (40), FILTER_EPOCHS (30), BATCH (16),
# WORKERS (the trainer's default: every core but one on CUDA), MASK_WEIGHT (4), SPEED (1 to measure, 0 to skip), SPEED_ARGS
# (extra `speed` options), PYTHON (python3), REFERENCE
# (gpu-bundle/torch_reference.py), EXPERIMENT (1 to run the seed's
# experiment too), EXP_EPOCHS (30), FITS (which of "resunet resnet50 r18w16"
# to train), WORK (scratch folder, /tmp/neuroscreen-gpu).
#
# One device session cannot hold everything: the defaults (speed, the three
# fits) take about 6 minutes on an H200 by estimate; the experiment (24
# runs) wants a session of its own, e.g. FITS=r18w16 SPEED=0 EXPERIMENT=1
# EXP_EPOCHS=15 BUDGET_S=500 (estimates: not yet run on a GPU).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root="$PWD"
OUT="${OUT:-out/gpu}"
WORK="${WORK:-/tmp/neuroscreen-gpu}"
bin="${BIN:-gpu-bundle/neuroscreen-train}"
python="${PYTHON:-python3}"
device="${DEVICE:-cuda}"
reference="${REFERENCE:-gpu-bundle/torch_reference.py}"
budget="${BUDGET_S:-420}"
started=$(date +%s)
mkdir -p "$OUT" "$WORK"
OUT="$(cd "$OUT" && pwd)"
[[ "$bin" = /* ]] || bin="$root/$bin"
summary="$OUT/summary.txt"
: >"$summary"
exec > >(tee -a "$OUT/log.txt") 2>&1

note() { echo "$*" | tee -a "$summary"; }
left() { echo $(( budget - ($(date +%s) - started) )); }

# Packs $WORK into at most 5 parts of 15 MiB (log, summary and speed make 8
# files), leaving out what is over 15 MiB, the `last` checkpoints and Adam's
# state (only `--resume` needs them) and the experiment's checkpoints (its scores are in
# results.jsonl and RESULTS.md). Runs on every exit, so a failed or cut-short run
# still brings back what it made.
pack() {
    local rc=$?
    set +e
    cd "$WORK"
    {
        find runs experiment -type f \( -name 'last.safetensors' -o -name 'optimiser.safetensors' -o -size +15M \) 2>/dev/null
        find experiment/runs -type f -name '*.safetensors' 2>/dev/null
    } | sort -u >big.txt
    if [ -s big.txt ]; then
        note "left on the machine (over 15 MiB, only for --resume, or one of the experiment's $(ls experiment/runs 2>/dev/null | wc -l) runs): $(grep -v '^experiment/runs/' big.txt | tr '\n' ' ')"
    fi
    tar -czf "$WORK/results.tar.gz" -X big.txt $(ls -d runs experiment 2>/dev/null) big.txt
    rm -f "$OUT"/results.tar.gz.part*
    split -b 15M -d -a 2 "$WORK/results.tar.gz" "$OUT/results.tar.gz.part"
    local parts
    parts=$(ls "$OUT"/results.tar.gz.part* | wc -l)
    if [ "$parts" -gt 5 ]; then
        note "results.tar.gz is $parts parts of 15 MiB; only the first 5 fit the transfer"
    fi
    note "== exit $rc after $(( $(date +%s) - started )) s of a ${budget} s budget; $OUT: $(ls "$OUT" | tr '\n' ' ')"
}
trap pack EXIT

torch_lib="$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
note "== $(date -u +%FT%TZ) on $(hostname); device $device; torch lib $torch_lib; budget ${budget} s"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$summary"
fi
if ! "$bin" info | tee -a "$summary"; then
    # Built on Debian 12: it needs glibc 2.35 and GCC 11's libstdc++ or newer.
    note "the trainer does not start here ($(ldd --version 2>&1 | head -n 1)); see log.txt"
    exit 1
fi

# A stage runs under `timeout` with what is left of the budget minus what
# the later stages need (`reserve`); skipped when too little is left.
stage() {
    local name="$1" reserve="$2"; shift 2
    local allowed=$(( $(left) - reserve ))
    if [ "$allowed" -lt 10 ]; then
        note "$name: skipped, $(left) s of the budget left"
        return 0
    fi
    local t0 rc=0
    t0=$(date +%s)
    timeout --signal=INT --kill-after=20 "$allowed" "$@" || rc=$?
    if [ "$rc" = 124 ] || [ "$rc" = 130 ]; then
        note "$name: stopped by the budget after $(( $(date +%s) - t0 )) s"
    elif [ "$rc" != 0 ]; then
        note "$name: failed (exit $rc) after $(( $(date +%s) - t0 )) s"
    else
        note "$name: $(( $(date +%s) - t0 )) s"
    fi
}

if [ "${SPEED:-1}" = 1 ]; then
    peer=(--python "$python" --script "$root/scripts/torch_speed.py")
    if [ -f "$reference" ]; then
        peer+=(--reference "$reference")
    else
        peer+=(--no-peer)
        note "speed: no reference models at $reference, so tch alone"
    fi
    # shellcheck disable=SC2086
    stage speed 240 "$bin" speed --device "$device" "${peer[@]}" ${SPEED_ARGS:-} \
        --json "$OUT/speed.json"
    [ -f "$OUT/speed.json" ] && "$python" -c '
import json, sys
doc = json.load(open(sys.argv[1]))
for r in doc.get("comparison", []):
    print("speed:", json.dumps(r))
for r in doc.get("adam_step", []):
    print("adam step:", json.dumps(r))
for r in doc.get("loader", []):
    print("loader:", json.dumps(r))' "$OUT/speed.json" >>"$summary" || true
fi

# A relative data path, recorded in each run's config: on the CPU machine the
# same command (same seed) regenerates the same slices at the same place for
# export's calibration and held-out checks.
cd "$WORK"
data="data/gpu-phantoms"
rm -rf "$data" runs experiment
stage phantoms 0 "$bin" phantoms --out "$data" --patients "${PATIENTS:-110}" --seed 0 --contrast mixed

fit() {
    local name="$1" reserve="$2"; shift 2
    stage "fit $name" "$reserve" "$bin" fit --data "$data" --out "runs/$name" --device "$device" \
        --batch "${BATCH:-16}" ${WORKERS:+--workers "$WORKERS"} --input-size "${SIZE:-256}" "$@"
    if [ -f "runs/$name/best.safetensors" ]; then
        tail -n 1 "runs/$name/metrics.jsonl" | sed "s/^/fit $name last epoch: /" >>"$summary"
        stage "eval $name" 0 "$bin" eval --run "runs/$name"
        grep -E -i "dice|accuracy|auc|sensitivity|specificity" "runs/$name/eval/report.md" 2>/dev/null \
            | head -n 12 | sed "s/^/eval $name: /" >>"$summary"
    fi
}
mask=(--mask-weight "${MASK_WEIGHT:-4}")
fits=" ${FITS:-resunet resnet50 r18w16} "
[[ "$fits" = *" resunet "* ]] &&
    fit resunet 150 --model resunet --loss tversky --epochs "${SEG_EPOCHS:-40}"
[[ "$fits" = *" resnet50 "* ]] &&
    fit resnet50 60 --model resnet50 --epochs "${FILTER_EPOCHS:-30}" "${mask[@]}"
[[ "$fits" = *" r18w16 "* ]] &&
    fit r18w16 20 --model resnet18 --filter-width 16 --epochs "${FILTER_EPOCHS:-30}" "${mask[@]}"

# The seed's experiment (docs/RESULTS.md): 2 architectures x 4 losses x 3
# seeds on the same phantoms, gated by the filter just trained. It resumes
# from experiment/results.jsonl, so a run cut short by the budget continues
# in the next call with the same WORK.
if [ "${EXPERIMENT:-0}" = 1 ]; then
    gate=()
    [ -f runs/r18w16/best.safetensors ] && gate=(--filter runs/r18w16)
    stage experiment 0 "$bin" experiment --data "$data" --out experiment --doc experiment/RESULTS.md \
        --input-size "${SIZE:-256}" --epochs "${EXP_EPOCHS:-30}" --patience 10 "${gate[@]}" \
        --label "GPU configuration: ${EXP_EPOCHS:-30} epochs at most"
fi
true
