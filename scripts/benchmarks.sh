#!/usr/bin/env bash
# Reruns every benchmark the docs quote and writes docs/BENCHMARKS.md from
# their verbatim output, with the machine, the date and the commit. The
# explanations in the document are fixed text; every figure in it is what a
# command below printed in this run.
#
# Usage: scripts/benchmarks.sh [--quick]   (--quick: fewer runs, for a smoke)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/setup.sh"
# shellcheck source=env.sh
source "$here/env.sh"
cd "$NEUROSCREEN_ROOT"
runs=30; arch_runs=10; speed=(--rounds 3 --steps 5 --warmup 1 --batch 4); soak=1000
if [ "${1:-}" = --quick ]; then
    runs=3; arch_runs=2; speed=(--rounds 1 --steps 1 --warmup 0 --batch 2); soak=50
fi
cargo build -q --release -p firmware -p trainer
target="${CARGO_TARGET_DIR:-$NEUROSCREEN_ROOT/target}/release"
# onnxruntime, the peer of every tract figure, lives in the venv.
python=.venv/bin/python3
doc=docs/BENCHMARKS.md
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT

section() { # title, explanation, command...
    local title="$1" text="$2"; shift 2
    echo "bench: $*" >&2
    {
        echo "## $title"
        echo
        echo "$text"
        echo
        echo '```'
        # The reference file lives outside the repository: show its name only.
        echo "\$ $*" | sed -e "s|$target/||" -e "s|--reference [^ ]*/|--reference |"
        "$@" 2>&1 | sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g' | grep -v '^\s*$' || echo "(exit status $?)"
        echo '```'
        echo
    } >> "$tmp"
}

{
    echo "# Benchmarks"
    echo
    echo "Written by \`scripts/benchmarks.sh\` on $(date -u +%F) at commit $(git rev-parse --short HEAD)."
    echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores,"
    echo "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sm). Shared machine: read ratios"
    echo "between peers measured in the same run, not absolute times."
    echo
} > "$tmp"

# Held-out patients for the filter on/off table: a phantom cohort with a
# seed no shipped model trained, validated or was tested on.
held_out=data/bench-phantoms
[ -d "$held_out/kaggle_3m" ] || "$target/neuroscreen-train" phantoms --out "$held_out" --patients 12 --seed 2026 --contrast mixed

section "The appliance: tract vs onnxruntime, f32 vs int8, start-up, memory, and the filter on vs off" \
"Each precision runs in its own process (its own load time and peak RSS). Model-only latency per model, then per-stage latency per slice over the shipped samples; onnxruntime (scripts/ort_bench.py) runs the same files with the same threads. Last, per precision, every slice of $held_out (phantom patients from \`neuroscreen-train phantoms --patients 12 --seed 2026 --contrast mixed\`, a seed none of the shipped models saw; LGG prevalence) is screened by the appliance's engine twice, with the filter and with every slice segmented: mean wall time per slice (pre- and post-processing included), what reached the segmenter, tumour slices and patients called tumour, false alarms on clear slices. All of it at one thread, then at two; the last table is what the second core bought (the baseline's time over the two-thread time)." \
"$target/neuroscreen" bench --runs "$runs" --threads 1,2 --slices "$held_out/kaggle_3m"

section "Where the models' time goes: tract vs onnxruntime per operator, at the shipped size and at 256 px" \
"\`neuroscreen bench --profile\` times tract's optimised plan node by node (a clock read around each node; the whole-model time beside it is measured without) and runs onnxruntime's own profiler on the same ONNX files (scripts/ort_bench.py --profile; the input's height and width set to each size), one thread each, and sums each runtime's time per operator kind. The slowest nodes name tract's kernel and shapes." \
"$target/neuroscreen" bench --profile --runs "$runs" --threads 1 --size 128 --size 256

section "Which tract kernel holds the gap: each convolution alone, at one thread and at two" \
"\`neuroscreen bench --kernels\` cuts every convolution of the shipped f32 models out as a one-node ONNX file of the same shape (seeded weights; \`--write DIR\` keeps them: the reproducer for tract's authors), times each alone in tract and in onnxruntime (scripts/ort_bench.py --each-file) and names the operators tract runs for it, each timed node by node, beside what tract picks for that node inside the model. The second table sums every node per tract kernel; the last lines set the sum beside the whole model, timed in the same run." \
"$target/neuroscreen" bench --kernels --runs "$runs" --threads 1
section "The same at two threads" \
"As above, tract and onnxruntime at two threads each." \
"$target/neuroscreen" bench --kernels --runs "$runs" --threads 2

section "Does width close tract's gap? ResUNets of base width 8 to 32 in tract and onnxruntime" \
"Seeded weights exported as \`export\` writes trained ones, 128 px, one thread, each file timed in both runtimes (scripts/ort_bench.py --file)." \
"$target/neuroscreen-train" arch-bench --runs "$arch_runs" --size 128 --small-filter-sizes 128 --small-filter-widths 16 --resunet-bases 8,12,16,24,32 --ort-python "$python"

section "Each architecture against the machine's peak; does a filter pay?" \
"Seeded random weights exported as \`export\` writes trained ones (latency does not depend on the weights); FLOPs counted from the graph; tract f32 on one thread; the peak is tract's own f32 kernel on a large matrix product, measured in the same run. The filter table works out the mean time per slice at LGG prevalence from these latencies: an ideal filter passes only tumour slices, a realistic one (95 % sensitivity, 90 % specificity) a few more." \
"$target/neuroscreen-train" arch-bench --runs "$arch_runs"

# The PyTorch reference models stay outside the repository: name the file in
# NEUROSCREEN_TORCH_REFERENCE to measure against them; without it tch runs alone.
reference="${NEUROSCREEN_TORCH_REFERENCE:-}"
peer=(--no-peer)
if [ -n "$reference" ] && [ -f "$reference" ]; then
    peer=(--reference "$reference")
else
    # Said out loud: a rewrite without the peer silently lost the tch-vs-PyTorch
    # figures of the document once.
    why="NEUROSCREEN_TORCH_REFERENCE is not set"
    [ -n "$reference" ] && why="NEUROSCREEN_TORCH_REFERENCE names $reference, which is not a file"
    echo "benchmarks.sh: no PyTorch peer for the training-speed section ($why): tch runs alone" >&2
fi
section "Training speed: tch (Rust) vs PyTorch (Python) on this machine's CPU" \
"Both sides train the same architectures (the PyTorch side imports the team's reference models) on the same synthetic 256x256 batches with the same steps and one thread each (two threads per side oversubscribe this 2-core machine as soon as anything else runs, and the ratio then swings by 3x between runs), alternating rounds; each side's best round counts. The tch side trains with the trainer's fused Adam (what \`fit\` uses), PyTorch with torch.optim.Adam's default (on a CPU its per-tensor loop); the last lines time the optimiser step alone on each model's parameters with gradients held fixed, tch's per-tensor libtorch Adam against the fused one, and the last how many augmented 256x256 slices a second \`fit\`'s loader assembles with one worker and with every core, nothing consuming them (what a GPU's training rate must stay under not to wait for data). No GPU was available to this run: the CUDA figures come from scripts/gpu/train.sh on a CUDA machine." \
"$target/neuroscreen-train" speed "${speed[@]}" --threads 1 "${peer[@]}"

soak_dir="$(mktemp -d)"
section "Memory over a long run: $soak slices through the service" \
"\`neuroscreen soak\` starts \`neuroscreen run\` on a fresh box and renames sample slices into its watched inbox, 24 in flight, as a scanner would; every window it samples the service's resident memory (RSS, and its high-water mark HWM: the peak), open file descriptors and threads from /proc, and the latency percentiles (the record's own decode-to-mask time; e2e: rename into the inbox to the result line). docs/RELIABILITY.md has a 10,000-slice run." \
"$target/neuroscreen" soak --dir "$soak_dir/box" --slices "$soak" --window $((soak / 5)) --threads 1 --precision f32
rm -rf "$soak_dir"

mv "$tmp" "$doc"
trap - EXIT
echo "-> $doc"
